// Preloaded into the letta CLI (NODE_OPTIONS=--import) by cli_test.go: it
// blocks and records every attempt to reach a host other than loopback, so
// the end-to-end test neither depends on nor leaks to the network. Each
// attempt is appended to $KELPIE_NETGUARD_LOG as one line.
import net from "node:net";
import dns from "node:dns";
import { appendFileSync } from "node:fs";

const logFile = process.env.KELPIE_NETGUARD_LOG;

function record(what) {
  if (!logFile) return;
  try {
    appendFileSync(logFile, `${process.pid} ${what}\n`);
  } catch {}
}

function isLoopback(host) {
  if (host === undefined || host === null || host === "") return true; // Node's default is localhost
  const h = String(host).replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || h.startsWith("127.") || h === "::ffff:127.0.0.1" || h.endsWith(".localhost");
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  // connect(options[, cb]), connect(port[, host][, cb]), connect(path[, cb]),
  // or Node's internal normalized form: connect([options, cb]).
  let opts = Array.isArray(args[0]) ? args[0][0] : args[0];
  let host, port, path;
  if (opts && typeof opts === "object") {
    ({ host, port, path } = opts);
  } else if (typeof opts === "string" && !/^\d+$/.test(opts)) {
    path = opts;
  } else {
    port = opts;
    host = typeof args[1] === "string" ? args[1] : undefined;
  }
  if (path === undefined && !isLoopback(host)) {
    record(`connect ${host}:${port}`);
    const err = Object.assign(new Error(`netguard: connection to ${host}:${port} blocked (e2e tests use loopback only)`), {
      code: "ECONNREFUSED",
    });
    process.nextTick(() => this.destroy(err));
    return this;
  }
  return connect.apply(this, args);
};

function blocked(hostname) {
  return Object.assign(new Error(`netguard: lookup of ${hostname} blocked (e2e tests use loopback only)`), {
    code: "ENOTFOUND",
    hostname,
  });
}
const lookup = dns.lookup;
dns.lookup = function (hostname, ...rest) {
  if (isLoopback(hostname)) return lookup.call(this, hostname, ...rest);
  record(`dns ${hostname}`);
  const cb = rest.at(-1);
  if (typeof cb === "function") process.nextTick(() => cb(blocked(hostname)));
};
const lookupP = dns.promises.lookup;
dns.promises.lookup = async function (hostname, ...rest) {
  if (isLoopback(hostname)) return lookupP.call(this, hostname, ...rest);
  record(`dns ${hostname}`);
  throw blocked(hostname);
};
