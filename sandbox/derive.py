# Derives the JSON schema of a Letta tool from its Python source, without
# running it: the source is parsed with ast, as Letta 0.16.8 parses it
# (letta/functions/functions.py and schema_generator.py), and the docstring
# is read as docstring_parser reads a Google-style one.
#
# Reads the source on stdin; writes {"schema": {...}} or {"error": "..."}
# on stdout. Kelpie's own code: the rules it follows are listed in
# sandbox/doc.go.
import ast
import inspect
import json
import re
import sys

RESERVED = ("self", "agent_state")

# Section titles of a Google-style docstring, and how their entries read.
TITLES = ["Args", "Arguments", "Parameters", "Params", "Raises", "Exceptions", "Except",
          "Attributes", "Example", "Examples", "Returns", "Yields"]
PARAM_TITLES = ("Args", "Arguments", "Parameters", "Params")
MULTIPLE = ("Args", "Arguments", "Parameters", "Params", "Raises", "Exceptions", "Except", "Attributes")
TITLE_RE = re.compile("^(" + "|".join(TITLES) + "):[ \t\r\f\v]*$", re.M)
TYPED_ARG_RE = re.compile(r"\s*(.+?)\s*\(\s*(.*[^\s]+)\s*\)")


class Bad(Exception):
    """The source cannot be a Letta tool; the message says why."""


class Doc:
    def __init__(self):
        self.short = None
        self.long = None
        self.params = {}  # name -> description
        self.metas = 0


def split_description(doc, chunk):
    first, _, rest = chunk.partition("\n")
    doc.short = first or None
    if "\n" in chunk:
        doc.long = rest.strip() or None


def parse_google(text):
    """Google style, as docstring_parser's GoogleParser reads it."""
    doc = Doc()
    text = inspect.cleandoc(text)
    m = TITLE_RE.search(text)
    split_description(doc, text[:m.start()] if m else text)
    meta = text[m.start():] if m else ""
    sections = list(TITLE_RE.finditer(meta))
    for i, s in enumerate(sections):
        title = s.group(1)
        end = sections[i + 1].start() if i + 1 < len(sections) else len(meta)
        chunk = meta[s.end():end].strip("\n")
        if not chunk:
            continue
        indent = re.match(r"^\s*", chunk).group()
        if title not in MULTIPLE:
            doc.metas += 1  # Returns, Yields, Examples: one entry each
            continue
        starts = list(re.finditer("^" + re.escape(indent) + r"(?=\S)", chunk, re.M))
        if not starts:
            raise ValueError("no entries under " + title)
        for j, st in enumerate(starts):
            stop = starts[j + 1].start() if j + 1 < len(starts) else len(chunk)
            part = chunk[st.end():stop].strip("\n")
            doc.metas += 1
            if ":" not in part:
                raise ValueError("expected a colon in " + repr(part))
            before, desc = part.split(":", 1)
            if desc:
                desc = desc[1:] if desc[0] == " " else desc
                if "\n" in desc:
                    line, rest = desc.split("\n", 1)
                    desc = line + "\n" + inspect.cleandoc(rest)
                desc = desc.strip("\n")
            if title in PARAM_TITLES:
                typed = TYPED_ARG_RE.match(before)
                name = typed.group(1) if typed else before
                doc.params.setdefault(name, desc)
    return doc


def parse_rest(text):
    """The description as docstring_parser's reST parser reads it: it
    wins over Google style when neither finds a section."""
    doc = Doc()
    text = inspect.cleandoc(text)
    m = re.search("^:", text, re.M)
    split_description(doc, text[:m.start()] if m else text)
    return doc


def parse_docstring(text):
    rest = parse_rest(text)
    try:
        google = parse_google(text)
    except ValueError:
        return rest
    return google if google.metas > 0 else rest


def examples_of(text):
    """The Examples: section, which Letta appends to the description."""
    if "Examples:" not in text:
        return None
    out, inside = [], False
    for line in text.strip().splitlines():
        s = line.strip()
        if not inside and s.startswith("Examples:"):
            inside = True
            out.append(line)
            continue
        if inside:
            if s and not line.startswith(" ") and s.endswith(":"):
                break
            out.append(line)
    return "\n".join(out).strip() or None


SIMPLE = {"str": "string", "int": "integer", "bool": "boolean", "float": "number"}


def type_schema(node, where):
    """The JSON schema of a type annotation; (schema, optional)."""
    if isinstance(node, ast.Name):
        name = node.id
        if name in SIMPLE:
            return {"type": SIMPLE[name]}, False
        if name in ("list", "List"):
            return {"type": "array", "items": {"type": "string"}}, False
        if name in ("dict", "Dict"):
            return {"type": "object"}, False
        raise Bad("Python type %s has no corresponding JSON schema type (%s)" % (name, where))
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "typing":
        return type_schema(ast.Name(id=node.attr), where)
    if isinstance(node, ast.Subscript):
        head = node.value
        if isinstance(head, ast.Attribute) and isinstance(head.value, ast.Name) and head.value.id == "typing":
            head = ast.Name(id=head.attr)
        name = head.id if isinstance(head, ast.Name) else ast.unparse(head)
        inner = node.slice
        if name == "Optional":
            s, _ = type_schema(inner, where)
            return s, True
        if name in ("list", "List"):
            s, _ = type_schema(inner, where)
            return {"type": "array", "items": s}, False
        if name == "Literal":
            values = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            try:
                enum = [ast.literal_eval(v) for v in values]
            except ValueError:
                raise Bad("Literal values must be constants (%s)" % where)
            return {"type": "string", "enum": enum}, False
        if name in ("dict", "Dict"):
            raise Bad("Dictionary types %s with nested type arguments are not supported (%s)" % (ast.unparse(node), where))
        raise Bad("Python type %s has no corresponding JSON schema type (%s)" % (ast.unparse(node), where))
    raise Bad("Python type %s has no corresponding JSON schema type (%s)" % (ast.unparse(node), where))


def derive(source):
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise Bad("Failed to parse source code: %s" % e)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    if not functions:
        raise Bad("No functions found in source code")
    fn = functions[-1]  # Letta takes the last one ast.walk meets
    docstring = ast.get_docstring(fn, clean=False)
    if not docstring:
        raise Bad("Function %s missing docstring" % fn.name)
    doc = parse_docstring(docstring)
    if doc.short and doc.long:
        description = doc.short + "\n\n" + doc.long
    else:
        description = doc.short or doc.long or "No description available"
    examples = examples_of(docstring)
    if examples and "Examples:" not in description:
        description += "\n\n" + examples
    props, required = {}, []
    args = fn.args.args
    first_default = len(args) - len(fn.args.defaults)
    for i, arg in enumerate(args):
        if arg.arg in RESERVED:
            continue
        if arg.annotation is None:
            raise Bad("Parameter '%s' in function '%s' lacks a type annotation" % (arg.arg, fn.name))
        desc = doc.params.get(arg.arg)
        if not desc:
            raise Bad("Parameter '%s' in function '%s' lacks a description in the docstring" % (arg.arg, fn.name))
        s, optional = type_schema(arg.annotation, "parameter '%s' of '%s'" % (arg.arg, fn.name))
        s["description"] = desc
        props[arg.arg] = s
        has_default = False
        if i >= first_default:
            try:
                ast.literal_eval(fn.args.defaults[i - first_default])
                has_default = True
            except (ValueError, TypeError, SyntaxError):
                pass  # Letta treats a default it cannot evaluate as none
        if not has_default and not optional:
            required.append(arg.arg)
    return {"name": fn.name, "description": description,
            "parameters": {"type": "object", "properties": props, "required": required}}


def main():
    source = sys.stdin.read()
    try:
        out = {"schema": derive(source)}
    except Bad as e:
        out = {"error": str(e)}
    except (RecursionError, MemoryError, ValueError) as e:
        out = {"error": "the source could not be parsed: %s" % type(e).__name__}
    sys.stdout.write(json.dumps(out))


main()
