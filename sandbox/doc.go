// Package sandbox runs custom tools: Python functions that users send as
// source, each call in a process of its own, isolated with bubblewrap.
//
// Guarantees, for every call (Run):
//   - It runs in a separate process tree: its own user, pid, ipc, uts and
//     cgroup namespaces, and no network namespace of the host's (no
//     interface but a downed loopback) unless Config.Network.
//   - It sees the system read-only (/usr and the library links, a few files
//     of /etc), a private writable tmpfs /tmp of Limits.TmpBytes, and
//     nothing else of the host: not the data directory, not the server's
//     environment. Its environment is Job.Env plus PATH, HOME and LANG.
//   - It is bounded: CPU time, address space, file size (setrlimit in the
//     child, soft and hard, before the tool's code runs), processes (under a
//     root server each running call has a user id of its own, so
//     RLIMIT_NPROC counts that call alone), wall-clock time (then its process
//     group is killed, and with it bubblewrap's pid namespace), and bytes of
//     stdout, stderr and result (more kills it).
//   - Whatever the tool does, Run returns an Outcome the model can read: a
//     result, or "Error: ..." saying what went wrong (an exception, a limit,
//     a crash), and the call's processes are gone.
//
// Derive reads a tool's JSON schema from its source as Letta 0.16.8 does
// (derive.py): Python's ast parses the source (nothing of it runs), the last
// function ast.walk meets is the tool, its Google-style docstring gives the
// description and the arguments' descriptions, and its type hints give the
// types: str, int, float, bool, list and List[...] (items by the inner
// type; bare list means strings), dict (an object), Optional[...] (the inner
// type, not required), Literal[...] (a string enum). An argument with a
// default is not required. self and agent_state are left out. Letta's own
// generator turns Literal values into their source text (["('a', 'b')"]);
// Kelpie gives the values (["a", "b"]), as Letta evidently intends.
// Pydantic models as argument types are not supported. Like Letta, Kelpie
// adds no request_heartbeat argument to a custom tool's schema.
//
// Bubblewrap works here as root and as an unprivileged user id (it creates
// a user namespace either way); under a root server the calls run as user
// ids of their own (from Config.UIDBase, by default a range per server
// process), because root is exempt from RLIMIT_NPROC, and so that when a
// call ends every process of its user can be killed, even one that left
// its process group.
// Without bubblewrap New returns ErrNoBubblewrap and a Sandbox that still
// derives schemas but refuses every call, unless Config.Unsafe (then calls
// run with the limits but without isolation).
package sandbox
