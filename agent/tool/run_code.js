// run_code's JavaScript and TypeScript runner: run_code.py starts it with
// node, in the same sandboxed process tree. It runs the model's code as a
// notebook cell runs it (vm: the completion value of the last statement is
// the result; a promise is awaited) and answers, on the file descriptor
// the job names, what run_code.py answers for Python: results, logs
// (what console and process.stdout/stderr got, each capped at
// max_output_chars: more throws in the code) and the error, if any, with
// its name, message and stack. It answers when nothing is left to run.
//
// Input on stdin: {"code", "language" ("js" or "ts"), "max_output_chars",
// "answer_fd"}. TypeScript is stripped of its types by node's own
// module.stripTypeScriptTypes; a node without it answers
// {"unsupported": why}.
"use strict";
const fs = require("fs");
const util = require("util");
const vm = require("vm");
const { Console } = require("console");

const job = JSON.parse(fs.readFileSync(0, "utf8"));
const max = job.max_output_chars;

function capped(name) {
  const c = {
    parts: [],
    size: 0,
    write(chunk) {
      const s = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
      if (c.size + s.length > max) {
        throw new RangeError(`the code printed more than ${max} characters to ${name} and was stopped`);
      }
      c.parts.push(s);
      c.size += s.length;
      return true;
    },
    lines() {
      return c.parts.join("").match(/[^\n]*\n|[^\n]+$/g) || [];
    },
  };
  return c;
}

const out = capped("stdout");
const err = capped("stderr");
const results = [];
let error = null;
let answered = false;

function fail(e) {
  if (error !== null) {
    return;
  }
  if (e instanceof Error) {
    error = { name: e.name, value: e.message, traceback: String(e.stack) };
  } else {
    error = { name: "Error", value: String(e), traceback: "" };
  }
}

function answer(body) {
  if (answered) {
    return;
  }
  answered = true;
  fs.writeSync(job.answer_fd, JSON.stringify(body));
  fs.closeSync(job.answer_fd);
}

function show(value) {
  if (value !== undefined) {
    results.push(util.inspect(value));
  }
}

function source() {
  if (job.language !== "ts") {
    return job.code;
  }
  const mod = require("module");
  if (typeof mod.stripTypeScriptTypes !== "function") {
    answer({ unsupported: `this server's node (${process.version}) cannot run TypeScript: it needs node 22.13 or later, whose module.stripTypeScriptTypes strips the types` });
    process.exit(0);
  }
  return mod.stripTypeScriptTypes(job.code);
}

globalThis.console = new Console({ stdout: out, stderr: err, ignoreErrors: false });
process.stdout.write = (chunk) => out.write(chunk);
process.stderr.write = (chunk) => err.write(chunk);
globalThis.require = require;
process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);
process.on("beforeExit", () => {
  const body = { results, logs: { stdout: out.lines(), stderr: err.lines() } };
  if (error !== null) {
    body.error = error;
  }
  answer(body);
});

try {
  const value = vm.runInThisContext(source(), { filename: "<code>" });
  if (value !== null && typeof value === "object" && typeof value.then === "function") {
    value.then(show, fail);
  } else {
    show(value);
  }
} catch (e) {
  fail(e);
}
