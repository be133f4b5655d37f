# Runs one call of a Letta tool: Kelpie's trusted prologue, run first in
# the sandboxed process. It lowers the process's limits (soft and hard, so
# the tool cannot raise them back), defines the tool from its source, calls
# it with the call's arguments, and writes the outcome as JSON to fd 3; what
# the tool prints goes to stdout and stderr as usual.
#
# Input on stdin: {"source", "name", "args", "limits": {"cpu_seconds",
# "memory_bytes", "processes", "file_bytes"}}.
# Output on fd 3: {"ok": true, "result": "..."} or {"ok": false, "error": "..."}.
import json
import os
import resource
import sys
import traceback

MAIN = os.getpid()
job = json.loads(sys.stdin.read())
sys.stdin = open(os.devnull)
out = os.fdopen(3, "w")
limits = job["limits"]
for which, value in ((resource.RLIMIT_CPU, limits["cpu_seconds"]),
                     (resource.RLIMIT_AS, limits["memory_bytes"]),
                     (resource.RLIMIT_NPROC, limits["processes"]),
                     (resource.RLIMIT_FSIZE, limits["file_bytes"]),
                     (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(which, (value, value))


def render(value):
    """The result as Letta renders a tool's return value."""
    if isinstance(value, str):
        return value
    if value is None:
        return "None"
    if isinstance(value, dict):
        try:
            return json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def finish(outcome):
    if os.getpid() != MAIN:
        os._exit(1)  # a process the tool forked: only the call answers
    out.write(json.dumps(outcome))
    out.flush()


try:
    scope = {"__name__": "__letta_tool__"}
    exec(compile(job["source"], "<tool>", "exec"), scope)
    fn = scope.get(job["name"])
    if not callable(fn):
        finish({"ok": False, "error": "the tool's source defines no function named %s" % job["name"]})
    else:
        finish({"ok": True, "result": render(fn(**job["args"]))})
except MemoryError:
    finish({"ok": False, "error": "MemoryError: the tool ran out of memory"})
except BaseException as e:  # the tool's own failure, reported to the model
    tb = traceback.format_exception(type(e), e, e.__traceback__)
    sys.stderr.write("".join(tb))
    finish({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
