# run_code's program, run by the sandbox as a tool function: it runs the
# model's code as a notebook cell runs it, and answers what Letta's run_code
# answers (E2B's execution): the value of a last expression in "results",
# what the code printed in "logs", and an "error" with its name, value and
# traceback if it raised. Printing more than max_output_chars characters
# to a stream raises an error in the code, so that its output stays bounded.
def run_code(code, max_output_chars):
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
