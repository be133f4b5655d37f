# run_code's program, run by the sandbox as a tool function: it runs the
# model's code as a notebook cell runs it, and answers what Letta's run_code
# answers (E2B's execution): the value of a last expression in "results",
# what the code printed in "logs", and an "error" with its name, value and
# traceback if it raised. Printing more than max_output_chars characters
# to a stream raises an error in the code, so that its output stays bounded.
#
# JavaScript and TypeScript run in node (run_code.js, given as
# node_program), started here so that it is in the same sandbox and under
# the same limits; node runs --jitless, as its JIT's address-space
# reservations exceed the sandbox's memory limit. Its answer is read from a
# pipe, at most max_answer_bytes of it.
def run_code(code, max_output_chars, language="python", node_program=None, max_answer_bytes=None):
    if language != "python":
        return run_node(code, language, max_output_chars, node_program, max_answer_bytes)
    import ast
    import contextlib
    import io
    import json
    import traceback

    class Capped(io.TextIOBase):
        def __init__(self, name):
            self.name, self.parts, self.size = name, [], 0

        def writable(self):
            return True

        def write(self, s):
            if self.size + len(s) > max_output_chars:
                raise OverflowError("the code printed more than %d characters to %s and was stopped" % (max_output_chars, self.name))
            self.parts.append(s)
            self.size += len(s)
            return len(s)

        def lines(self):
            return "".join(self.parts).splitlines(keepends=True)

    out, err = Capped("stdout"), Capped("stderr")
    results, error = [], None
    scope = {"__name__": "__main__"}
    try:
        tree = ast.parse(code, "<code>")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            exec(compile(tree, "<code>", "exec"), scope)
            if last is not None:
                value = eval(compile(last, "<code>", "eval"), scope)
                if value is not None:
                    results.append(repr(value))
    except BaseException as e:  # the code's own failure, reported to the model
        error = {"name": type(e).__name__, "value": str(e), "traceback": traceback.format_exc()}
    answer = {"results": results, "logs": {"stdout": out.lines(), "stderr": err.lines()}}
    if error is not None:
        answer["error"] = error
    return json.dumps(answer, ensure_ascii=False)


def run_node(code, language, max_output_chars, node_program, max_answer_bytes):
    import json
    import os
    import subprocess

    read_end, write_end = os.pipe()
    job = json.dumps({"code": code, "language": language, "max_output_chars": max_output_chars, "answer_fd": write_end})
    try:
        node = subprocess.Popen(
            ["node", "--jitless", "--no-expose-wasm", "--v8-pool-size=1", "-e", node_program],
            stdin=subprocess.PIPE, pass_fds=(write_end,))
    except FileNotFoundError:
        raise RuntimeError("run_code cannot run %s on this server: node is not installed" % language) from None
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as answer_pipe:
        node.stdin.write(job.encode())
        node.stdin.close()
        answer = answer_pipe.read(max_answer_bytes + 1)
    if len(answer) > max_answer_bytes:
        node.kill()
        node.wait()
        raise RuntimeError("the code's answer is over %d bytes" % max_answer_bytes)
    status = node.wait()
    if not answer:
        raise RuntimeError("node exited with status %d without an answer" % status)
    body = json.loads(answer)
    if "unsupported" in body:
        raise RuntimeError(body["unsupported"])
    return json.dumps(body, ensure_ascii=False)


# run_code_with_tools answers as Letta's does: the first result (or, when
# the code raised, Letta's error text, the traceback then going to
# stderr), with the status and the logs.
def run_code_with_tools(code, max_output_chars):
    import json

    execution = json.loads(run_code(code, max_output_chars))
    error = execution.get("error")
    stderr = list(execution["logs"]["stderr"])
    if execution["results"]:
        func_return = execution["results"][0]
    elif error is not None:
        func_return = ("Error executing function run_code_with_tools: %s: %s" % (error["name"], error["value"]))[:1000]
        stderr.append(error["traceback"])
    else:
        func_return = None
    return json.dumps({"status": "error" if error is not None else "success", "func_return": func_return,
                       "stdout": execution["logs"]["stdout"], "stderr": stderr}, ensure_ascii=False)
