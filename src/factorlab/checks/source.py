"""Reading the learner's code as code: which files count, their syntax trees, and what names mean.

Static checks never import or run the learner's code. They read the files a deploy would get (what the
repository holds or would take: `files.committed`) and parse the Python ones. A `Module` resolves the
names in a file through its imports, so `sp.check_output`, `from subprocess import run as go; go(...)`
and `subprocess.run` are all `subprocess.…` to a check, whatever the spelling.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import re
import sys
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
    """A parsed Python file whose names resolve through its imports to qualified names.

    `from X import *` binds every public name of X (of a standard-library module, or of the app's own). With root
    (the app's folder), a name imported from one of the app's own modules resolves to what it is there: with
    `from compat import run` and compat's `from subprocess import run`, run is subprocess.run."""

    def __init__(self, path: Path, tree: ast.Module, root: Path | None = None, _seen: frozenset = frozenset()):
        self.path = Path(path)
        self.tree = tree
        self.root = Path(root) if root is not None else None
        self.aliases: dict[str, str] = {}
        self.stars: list[str] = []  # modules imported with *, in order
        self._seen = _seen | {self.path.resolve()}
        self._modules: dict[str, Module | None] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.aliases[top] = top
            elif isinstance(node, ast.ImportFrom):
                module = self._absolute(node)
                for alias in node.names if module else ():
                    if alias.name == "*":
                        self.stars.append(module)
                    else:
                        self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
        self.bound = _bound_names(tree) - set(self.aliases)

    def _absolute(self, node: ast.ImportFrom) -> str | None:
        """The module an ImportFrom names, relative imports resolved against the app's folder (None if unknown)."""
        if node.level == 0:
            return node.module
        if self.root is None:
            return None
        try:
            package = list(self.path.parent.resolve().relative_to(self.root.resolve()).parts)
        except ValueError:
            return None
        if node.level - 1 > len(package):
            return None
        base = package[:len(package) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else [])) or None

    @classmethod
    def read(cls, path: Path, root: Path | None = None) -> "Module | None":
        tree = parse(path)
        return cls(path, tree, root) if tree is not None else None

    def local_module(self, name: str) -> "Module | None":
        """One of the app's own modules by its dotted name (pkg.helpers), read once; None when not the app's."""
        if self.root is None:
            return None
        if name not in self._modules:
            base = self.root.joinpath(*name.split("."))
            found = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
            self._modules[name] = None
            if found is not None and found.resolve() not in self._seen:
                tree = parse(found)
                self._modules[name] = Module(found, tree, self.root, self._seen) if tree is not None else None
        return self._modules[name]

    def exported(self, name: str) -> str | None:
        """What a name imported from this module stands for: an import of its own, resolved; a name it defines
        (this module's); a name one of its star imports brings; None when it has no such name."""
        if name in self.aliases:
            return self._through_app(self.aliases[name])
        if name in self.bound:
            return None
        return self._starred(name)

    def _starred(self, name: str) -> str | None:
        unknown = None  # a package's module, whose names the checks cannot list: it brings what nothing else does
        for module in reversed(self.stars):
            local = self.local_module(module)
            if local is not None:
                found = local.exported(name)
                if found or name in local.bound:
                    return found
            elif name in public_names(module):
                return f"{module}.{name}"
            elif module.split(".")[0] not in sys.stdlib_module_names and unknown is None:
                unknown = module
        return f"{unknown}.{name}" if unknown and not hasattr(builtins, name) else None

    def _through_app(self, dotted: str) -> str:
        """A qualified name with the app's own modules seen through: compat.run → subprocess.run."""
        if self.root is None:
            return dotted
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            local = self.local_module(".".join(parts[:cut]))
            if local is not None:
                inner = local.exported(parts[cut])
                return ".".join([inner, *parts[cut + 1:]]) if inner else dotted
        return dotted

    def qualified(self, node: ast.AST) -> str | None:
        """The dotted name an expression stands for (os.environ.get, subprocess.run), or None."""
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self._through_app(self.aliases[node.id])
            if node.id not in self.bound and self.stars:
                starred = self._starred(node.id)
                if starred:
                    return starred
            return node.id if hasattr(builtins, node.id) else None
        if isinstance(node, ast.Attribute):
            base = self.qualified(node.value)
            return self._through_app(f"{base}.{node.attr}") if base else None
        if isinstance(node, ast.Call) and self.qualified(node.func) in ("getattr", "builtins.getattr") \
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            base = self.qualified(node.args[0])
            return self._through_app(f"{base}.{node.args[1].value}") if base else None
        if isinstance(node, ast.Call) and self.qualified(node.func) in ("__import__", "importlib.import_module") \
                and node.args:
            values = self.constant_values(node.args[0])
            return values[0] if len(values) == 1 else None
        return None

    def constant_values(self, node: ast.AST, _depth: int = 0) -> list[str]:
        """The texts a string expression can have when they do not depend on input: a literal, a constant name
        (every binding of it in the module a text: NAME = "orjson", or a for loop over literal texts), one
        imported from the app's own modules, and + or f-strings of those. [] when unknown."""
        text = constant_text(node)
        if text is not None:
            return [text]
        if _depth > 5:
            return []
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                module, _, name = self.aliases[node.id].rpartition(".")
                local = self.local_module(module) if module else None
                return local.constant_values(ast.Name(id=name, ctx=ast.Load()), _depth + 1) if local else []
            values = []
            for value in _bindings(self.tree, node.id):
                found = self.constant_values(value, _depth + 1) if value is not None else []
                if not found:
                    return []
                values += found
            return list(dict.fromkeys(values))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.constant_values(node.left, _depth + 1), self.constant_values(node.right, _depth + 1)
            return [a + b for a in left for b in right][:50]
        if isinstance(node, ast.JoinedStr):
            values = [""]
            for part in node.values:
                found = self.constant_values(part.value if isinstance(part, ast.FormattedValue) else part, _depth + 1)
                values = [a + str(b) for a in values for b in found][:50]
            return values
        return []

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


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name a module binds itself, anywhere: assigned, a parameter, a def or class, a loop or with target,
    an except clause, a global (a star import does not bind these)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            found.add(node.id)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            found.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            found.update(node.names)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            found.add(node.name)
    return found


def _bindings(tree: ast.AST, name: str) -> list[ast.AST | None]:
    """The values a name is given anywhere in a module: each assignment's value, each element of a literal that a
    for loop runs over; None for a binding whose value is not known (a parameter, an unpacking, a with target),
    and [None] for a name the module never binds."""
    found: list[ast.AST | None] = []

    def binds(target: ast.AST | None) -> bool:
        return target is not None and any(isinstance(sub, ast.Name) and sub.id == name for sub in ast.walk(target))

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name:
                    found.append(node.value)
                elif binds(target):
                    found.append(None)
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and isinstance(node.target, ast.Name) \
                and node.target.id == name:
            found.append(node.value)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and binds(node.target):
            literal = isinstance(node.target, ast.Name) and isinstance(node.iter, (ast.List, ast.Tuple, ast.Set))
            found += list(node.iter.elts) if literal else [None]
        elif isinstance(node, (ast.With, ast.AsyncWith)) and any(binds(i.optional_vars) for i in node.items):
            found.append(None)
        elif isinstance(node, ast.AugAssign) and binds(node.target):
            found.append(None)
        elif (isinstance(node, ast.arg) and node.arg == name) or (isinstance(node, ast.ExceptHandler)
                                                                   and node.name == name):
            found.append(None)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            found.append(None)
    return found or [None]


# Standard-library modules that do something when imported: never imported to list their names.
_UNSAFE = {"antigravity", "this", "__main__", "__hello__", "__phello__", "idlelib", "turtledemo", "tkinter", "turtle"}


@lru_cache(maxsize=None)
def public_names(module: str) -> frozenset[str]:
    """The names `from module import *` binds, for a standard-library module (its __all__, or its public names);
    empty for any other module: the checks never import the learner's code or its packages."""
    if module.split(".")[0] not in sys.stdlib_module_names or module.split(".")[0] in _UNSAFE:
        return frozenset()
    try:
        imported = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a module this platform lacks
        return frozenset()
    names = getattr(imported, "__all__", None)
    return frozenset(names if names is not None else (n for n in dir(imported) if not n.startswith("_")))


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


def env_values(text: str) -> dict[str, str]:
    """NAME=value of a .env-style file (export NAME=value too; quotes taken off; comments and blank lines
    ignored)."""
    values = {}
    for line in text.splitlines():
        found = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$", line)
        if found:
            value = found[2]
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            elif " #" in value:
                value = value.split(" #", 1)[0].rstrip()
            values[found[1]] = value
    return values
