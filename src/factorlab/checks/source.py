"""Reading the learner's code as code: which files count, their syntax trees, and what names mean.

Static checks never import or run the learner's code. They read the files a deploy would get (what the
repository holds or would take: `files.committed`) and parse the Python ones. A `Module` resolves the
names in a file through its imports, so `sp.check_output`, `from subprocess import run as go; go(...)`
and `subprocess.run` are all `subprocess.…` to a check, whatever the spelling.
"""

from __future__ import annotations

import ast
import builtins
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from .. import files

# CPython 3.11's ast.parse is not safe to call from several threads at once (checks run side by side):
# it can fail with "SystemError: AST constructor recursion depth mismatch".
_PARSING = threading.Lock()


def app_files(root: Path) -> list[Path]:
    """The app's files: what its repository holds or would take (tool folders and ignored files left out)."""
    return files.committed(root)


def python_files(root: Path) -> list[Path]:
    return [path for path in app_files(root) if path.suffix == ".py"]


def text_files(root: Path) -> list[tuple[Path, str]]:
    """(path, text) of every app file that is text."""
    found = []
    for path in app_files(root):
        text = files.text_of(path)
        if text is not None:
            found.append((path, text))
    return found


def app_module_file(ctx) -> str:
    """The file name of the app module named in the catalogue (shortly:app → shortly.py)."""
    return ctx.catalogue.app_file if ctx.catalogue else "shortly.py"


def rel(path: Path, root: Path) -> str:
    return Path(path).relative_to(root).as_posix()


@lru_cache(maxsize=256)
def _parse_text(text: str, name: str) -> ast.Module | None:
    try:
        with _PARSING:
            return ast.parse(text, filename=name)
    except (SyntaxError, ValueError):
        return None


def parse(path: Path) -> ast.Module | None:
    """Parse a Python file; None when it has a syntax error (a check that runs the app reports that)."""
    return _parse_text(Path(path).read_text(errors="replace"), str(path))


class Module:
    """A parsed Python file whose names resolve through its imports to qualified names."""

    def __init__(self, path: Path, tree: ast.Module):
        self.path = Path(path)
        self.tree = tree
        self.aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.aliases[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    @classmethod
    def read(cls, path: Path) -> "Module | None":
        tree = parse(path)
        return cls(path, tree) if tree is not None else None

    def qualified(self, node: ast.AST) -> str | None:
        """The dotted name an expression stands for (os.environ.get, subprocess.run), or None."""
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            return node.id if hasattr(builtins, node.id) else None
        if isinstance(node, ast.Attribute):
            base = self.qualified(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call) and self.qualified(node.func) in ("getattr", "builtins.getattr") \
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            base = self.qualified(node.args[0])
            return f"{base}.{node.args[1].value}" if base else None
        if isinstance(node, ast.Call) and self.qualified(node.func) in ("__import__", "importlib.import_module") \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            return node.args[0].value
        return None

    def calls(self) -> Iterator[tuple[ast.Call, str]]:
        """Every call whose function has a qualified name: (node, name)."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                name = self.qualified(node.func)
                if name:
                    yield node, name

    def references(self) -> Iterator[tuple[ast.AST, str]]:
        """Every name or attribute with a qualified name, called or not: (node, name)."""
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.Name, ast.Attribute, ast.Call)):
                name = self.qualified(node)
                if name:
                    yield node, name


def constant_text(node: ast.AST) -> str | None:
    """The text of a string expression that does not depend on anything: "a", "a" + "b", f"ab", b"a"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        return node.value if isinstance(node.value, str) else node.value.decode(errors="replace")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = constant_text(node.left), constant_text(node.right)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in node.values):
        return "".join(str(v.value) for v in node.values)
    return None


def strings(tree: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """Every string the code spells out, with its node: constants, constant concatenations, and the literal
    parts of f-strings (docstrings included)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            yield constant_text(node), node
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            joined = constant_text(node)
            if joined is not None:
                yield joined, node


def string_values(path: Path) -> list[str]:
    """The strings a Python file spells out ([] when it does not parse)."""
    tree = parse(path)
    return [value for value, _ in strings(tree)] if tree else []


def target_names(node: ast.AST) -> list[str]:
    """The names an assignment target binds or sets: x, self.x (as x), x["k"] (as k)."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.Subscript):
        key = constant_text(node.slice)
        return [key] if key else []
    if isinstance(node, (ast.Tuple, ast.List)):
        return [name for element in node.elts for name in target_names(element)]
    return []


# -- what the code reads from the environment --------------------------------------------------------------

# Variables a platform or Python itself sets: reading them is not config an operator documents.
PROCESS_VARIABLES = {"PATH", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONHASHSEED", "HOME",
                     "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "PWD", "SHELL", "TMPDIR", "TMP", "TEMP",
                     "TZ", "HOSTNAME", "VIRTUAL_ENV"}
ENVIRON = ("os.environ", "os.getenv", "os.environb", "os.getenvb", "os.putenv")
CONFIG_PREFIX = "from_prefixed_env"


def _key(node: ast.AST) -> str | None:
    text = constant_text(node)
    return text if text and text.replace("_", "").isalnum() else None


def environ_aliases(module: Module) -> dict[str, str]:
    """Names the code binds to the environment or to a way of reading it, and what they stand for:
    `env = os.environ` (os.environ), `get = os.environ.get` (os.environ.get), and a parameter that defaults
    to one (`def load(environ=os.environ)`). Not a copy (`dict(os.environ)`): a script builds one to change it
    for a program it starts."""
    aliases: dict[str, str] = {}

    def meaning(node: ast.AST | None) -> str | None:
        if node is None:
            return None
        if isinstance(node, ast.Name) and node.id in aliases:
            return aliases[node.id]
        if isinstance(node, ast.Attribute) and meaning(node.value):
            return f"{meaning(node.value)}.{node.attr}"
        name = module.qualified(node)
        return name if name and name.startswith(ENVIRON) else None

    while True:
        before = dict(aliases)
        for node in ast.walk(module.tree):
            pairs = []
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                pairs = [(t.id, node.value) for t in targets if isinstance(t, ast.Name)]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                positional = [*node.args.posonlyargs, *node.args.args]
                pairs = [*zip([a.arg for a in positional[len(positional) - len(node.args.defaults):]],
                              node.args.defaults),
                         *((a.arg, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d is not None)]
            for name, value in pairs:
                found = meaning(value)
                if found and name not in aliases:
                    aliases[name] = found
        if aliases == before:
            return aliases


def environment_reads(root: Path) -> dict[str, str]:
    """Every environment variable the app's code reads, with where: os.environ[...], .get, getenv, `in`, also
    through a name bound to them (`env = os.environ; env.get(...)`), and, where the app loads config with
    from_prefixed_env("P"), each key it reads from app.config (P_KEY); plus every name with that prefix the
    code spells out (in a message, say)."""
    found: dict[str, str] = {}
    for path in [p for p in app_files(root) if p.suffix == ".py"]:
        module = Module.read(path)
        if module is None:
            continue
        where = rel(path, root)
        aliases = environ_aliases(module)

        def qualified(node: ast.AST) -> str:
            if isinstance(node, ast.Name) and node.id in aliases:
                return aliases[node.id]
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                return f"{aliases[node.value.id]}.{node.attr}"
            return module.qualified(node) or ""

        loads = [node for node in ast.walk(module.tree) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Attribute) and node.func.attr == CONFIG_PREFIX]
        prefixes = [p for p in ([constant_text(n.args[0]) if n.args else "FLASK" for n in loads]
                                + [constant_text(k.value) for n in loads for k in n.keywords if k.arg == "prefix"]) if p]
        for node in ast.walk(module.tree):
            names = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                owner = qualified(node.func.value)
                called = qualified(node.func)
                if owner in ENVIRON and node.func.attr in ("get", "setdefault", "pop") or called in ENVIRON:
                    names.append(_key(node.args[0]))
                elif node.func.attr == "get" and _is_config(node.func.value) and prefixes:
                    names += [f"{p}_{_key(node.args[0])}" for p in prefixes if _key(node.args[0])]
            elif isinstance(node, ast.Call) and node.args and (qualified(node.func) in ENVIRON or qualified(
                    node.func) in {f"{e}.{m}" for e in ENVIRON for m in ("get", "setdefault", "pop")}):
                names.append(_key(node.args[0]))
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
                if qualified(node.value) in ENVIRON:
                    names.append(_key(node.slice))
                elif _is_config(node.value) and prefixes and _key(node.slice):
                    names += [f"{p}_{_key(node.slice)}" for p in prefixes]
            elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) \
                    and any(qualified(c) in ENVIRON for c in node.comparators):
                names.append(_key(node.left))
            for name in names:
                if name and name not in PROCESS_VARIABLES:
                    found.setdefault(name, f"{where}:{node.lineno}")
        for value, node in strings(module.tree):
            for prefix in prefixes:
                for name in re.findall(rf"\b{re.escape(prefix)}_[A-Z0-9_]*[A-Z0-9]\b", value or ""):
                    found.setdefault(name, f"{where}:{getattr(node, 'lineno', '?')}")
    return found


def _is_config(node: ast.AST) -> bool:
    """app.config, current_app.config, self.config, config: a Flask config object, by its name."""
    return (isinstance(node, ast.Attribute) and node.attr == "config") or (isinstance(node, ast.Name) and node.id == "config")


def env_file_names(text: str) -> set[str]:
    """The variable names a .env-style file lists: NAME=value, export NAME=value, and # NAME=value (an optional
    one, documented but commented out)."""
    return set(re.findall(r"^\s*(?:#\s*)?(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", text, re.M))
