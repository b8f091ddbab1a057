"""Finding secrets in a codebase: in its code, read as code, and in every other file, read as text.

A secret is a value given to something named like a secret (a key, a token, a password), a default the code
falls back on for one, a value the code compares a token with, credentials in a URL, or one of the values
the legacy app is known to have leaked (once committed, a secret is burned). Placeholders are not secrets.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path
from typing import Iterator

from .. import files
from . import CheckContext
from .source import Module, _parse_text, constant_text, parse, rel, strings, target_names, text_files

SECRET_WORDS = (r"(secret|token|passw(or)?d|passwd|\bpwd\b|api_?key|private_?key|access_?key|auth_?key|credential|"
                r"signing_?key)")
SECRET_NAME = re.compile(SECRET_WORDS, re.I)
# A placeholder says what to put there (change-me, replace-with-…, <your token>, fill-me-in, generate-one):
# an instruction, not a value.
PLACEHOLDER = re.compile(r"(?i)change-?me|example|placeholder|your[-_ ]|<[^>]*>|^<|\$\{?\w|x{4,}|\.\.\.|^\*+$|dummy|"
                         r"redacted|not[-_ ]a[-_ ]secret|^none$|^null$|^todo$|^tbd$|^fixme$|"
                         r"replace|fill[-_ ]?(it|me|this)?[-_ ]?in|(^|[-_ ])set[-_ ]?(me|this|it)\b|"
                         r"^(generate|random|insert|enter|paste|put|add|choose|pick)([-_ ]|$)|[-_ ]here$")
# Values that name something rather than hide it: a variable, a header, a scheme.
# (a lower-case snake_case word that names a secret, such as admin_token or api_key, is a field's name too).
NAMES_A_THING = re.compile(rf"^[A-Z][A-Z0-9_]*$|^(Authorization|Bearer|Basic|Token|token|password|secret|X-[\w-]+)$|"
                           rf"^(?=[a-z_]*{SECRET_WORDS})[a-z]+(_[a-z]+)+$")
DEFAULTING = {"get", "getenv", "setdefault", "pop"}
TEXT_PATTERNS = [
    (re.compile(rf"(?i)[\"']?(?P<name>\w*{SECRET_WORDS}\w*)[\"']?\s*[:=]\s*[\"']?(?P<value>[^\"'\s#,}}]+)"),
     "a secret value"),
    (re.compile(r"(?i)[?&](?P<name>token|key|secret|password|api_key)=(?P<value>[^&\s\"'`]+)"), "a secret in a URL"),
    (re.compile(r"[a-z][a-z0-9+]*://(?P<name>[^/\s:@\"']+):(?P<value>[^@\s/\"']+)@"), "a password in a connection URL"),
]


def is_secret_value(value: str | None) -> bool:
    value = (value or "").strip()
    return len(value) >= 4 and not PLACEHOLDER.search(value) and not NAMES_A_THING.match(value)


def burned(ctx: CheckContext) -> dict[str, str]:
    """The secret values the legacy app holds (value → its name): once committed, a secret is known to all."""
    found: dict[str, str] = {}
    if not ctx.catalogue:
        return found
    for path in sorted(ctx.catalogue.legacy.glob("*.py")):
        tree = parse(path)
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Assign):
                value = constant_text(node.value)
                names = [n for t in node.targets for n in target_names(t)]
                if value and is_secret_value(value) and any(SECRET_NAME.search(n) for n in names):
                    found[value] = names[0]
    return found


def _mentions_secret(node: ast.AST) -> str | None:
    """The secret-like name an expression involves (a variable, an attribute, a key it reads), or None."""
    for sub in ast.walk(node):
        name = sub.id if isinstance(sub, ast.Name) else sub.attr if isinstance(sub, ast.Attribute) else \
            constant_text(sub) if isinstance(sub, ast.Constant) else None
        if name and len(name) <= 40 and SECRET_NAME.search(name):
            return name
    return None


CONTAINERS = {"tuple", "list", "set", "frozenset", "dict", "sorted", "filter", "reversed"}


def held_values(node: ast.AST) -> Iterator[ast.AST]:
    """The expressions whose value an expression may take or hold: itself, either side of `or` and of `x if c
    else y`, the elements of a tuple, list or set (also through tuple(…), list(…), a comprehension), and the
    values of a dict. Not the arguments of other calls (os.environ.get("KEY") reads KEY, it holds no KEY)."""
    yield node
    if isinstance(node, ast.BoolOp):
        children = node.values
    elif isinstance(node, ast.IfExp):
        children = [node.body, node.orelse]
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        children = node.elts
    elif isinstance(node, ast.Starred):
        children = [node.value]
    elif isinstance(node, ast.Dict):
        children = node.values
    elif isinstance(node, (ast.GeneratorExp, ast.ListComp, ast.SetComp)):
        children = [node.elt, *(g.iter for g in node.generators)]
    elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in CONTAINERS:
        children = node.args
    else:
        children = []
    for child in children:
        yield from held_values(child)


def code_findings(path: Path, root: Path) -> list[str]:
    """Secrets in a Python file, read as code (its comments and docstrings read as text, or as code where a
    comment is code put out of the way)."""
    module = Module.read(path)
    if module is None:
        return []
    where = rel(path, root)
    return tree_findings(module, where) + prose_findings(module, path.read_text(errors="replace"), where)


def tree_findings(module: Module, where: str, line_of=lambda n: n) -> list[str]:
    """Secrets in a parsed module (line_of maps its line numbers to the file's)."""
    found = []

    def add(what: str, name: str, node: ast.AST) -> None:
        line = getattr(node, "lineno", None)
        found.append(f"{what} ({name}) at {where}:{line_of(line) if line else '?'}")

    for node in ast.walk(module.tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n for t in targets for n in target_names(t) if SECRET_NAME.search(n)]
            if names and any(is_secret_value(constant_text(v)) for v in held_values(node.value)):
                add("a secret written in the code", names[0], node)
        elif isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in DEFAULTING and len(node.args) >= 2 and SECRET_NAME.search(constant_text(node.args[0]) or "") \
                    and is_secret_value(constant_text(node.args[1])):
                add("a built-in default for a secret", constant_text(node.args[0]), node)
            for keyword in node.keywords:
                if keyword.arg and SECRET_NAME.search(keyword.arg) and any(
                        is_secret_value(constant_text(v)) for v in held_values(keyword.value)):
                    add("a secret written in the code", keyword.arg, node)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                name = constant_text(key) if key is not None else None
                if name and SECRET_NAME.search(name) and any(is_secret_value(constant_text(v)) for v in held_values(value)):
                    add("a secret written in the code", name, node)
        elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            name = _mentions_secret(node.values[0])
            if name and any(is_secret_value(constant_text(v)) for v in node.values[1:]):
                add("a built-in default for a secret", name, node)
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            values = [e for s in sides for e in (s.elts if isinstance(s, (ast.Tuple, ast.List, ast.Set)) else [s])]
            name = next((n for s in sides if constant_text(s) is None and not isinstance(s, (ast.Tuple, ast.List, ast.Set))
                         for n in [_mentions_secret(s)] if n), None)
            if name and any(is_secret_value(constant_text(v)) for v in values):
                add("a secret compared in the code", name, node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.args[len(node.args.args) - len(node.args.defaults):]
            for arg, default in [*zip(args, node.args.defaults), *zip(node.args.kwonlyargs, node.args.kw_defaults)]:
                if default is not None and SECRET_NAME.search(arg.arg) and is_secret_value(constant_text(default)):
                    add("a built-in default for a secret", arg.arg, node)
    return found


def _comments(text: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment of Python source, without its #."""
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                yield token.start[0], token.string.lstrip("#").strip()
    except (tokenize.TokenError, SyntaxError):
        return


def prose_findings(module: Module, text: str, where: str) -> list[str]:
    """Secrets in a module's comments and docstrings: a comment that is code put out of the way (`# TOKEN =
    "…"`) read as code, any other comment and every docstring read as text."""
    found = []
    for line, comment in _comments(text):
        tree = _parse_text(comment, where) if comment else None
        if tree is not None and any(isinstance(n, (ast.Assign, ast.AnnAssign, ast.Call, ast.Compare, ast.Dict))
                                    for n in ast.walk(tree)):
            found += tree_findings(Module(module.path, tree), where, lambda _, line=line: line)
        else:
            found += text_findings(comment, where, first_line=line)
    for node in ast.walk(module.tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            found += text_findings(body[0].value.value, where, first_line=body[0].lineno)
    return found


def text_findings(text: str, where: str, first_line: int = 1) -> list[str]:
    """Secrets in a file read as text (config files, docs, scripts): KEY=value, key: value, URLs."""
    found = []
    for number, line in enumerate(text.splitlines(), first_line):
        for pattern, what in TEXT_PATTERNS:
            for match in pattern.finditer(line):
                if is_secret_value(match["value"]):
                    found.append(f"{what} ({match['name']}) at {where}:{number}")
                    break
    return found


def secret_findings(ctx: CheckContext) -> list[str]:
    """Every secret of the codebase, and a local .env that the repository holds or would take."""
    known = burned(ctx)
    found = []
    for path, text in text_files(ctx.path):
        where = rel(path, ctx.path)
        for value, name in known.items():
            if value in text:
                line = text.count("\n", 0, text.index(value)) + 1
                found.append(f"the legacy app's leaked {name} at {where}:{line}")
        if path.suffix == ".py":
            found += code_findings(path, ctx.path)
            tree = parse(path)
            for value, node in strings(tree) if tree else ():
                for pattern, what in TEXT_PATTERNS[1:]:  # credentials in a URL the code spells out
                    match = pattern.search(value or "")
                    if match and is_secret_value(match["value"]):
                        found.append(f"{what} ({match['name']}) at {where}:{getattr(node, 'lineno', '?')}")
        else:
            found += text_findings(text, where)
    local = [rel(p, ctx.path) for p in files.committed(ctx.path) if p.name == ".env"]
    if local:
        found.append(f"{local[0]}, a local config file the repository holds or would take (.gitignore must list it)")
    return list(dict.fromkeys(found))
