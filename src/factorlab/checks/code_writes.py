"""Where the app's code writes files at a path made from its own location, read as code (never run).

A release's folder is read-only, so the app must write nothing next to its code. A run shows the writes of
the paths it takes; a path that only some runs take (a `--daemon` start, an error branch) is found here: a
location made from `__file__` (os.path.dirname(__file__), Path(__file__).parent, Flask's app.root_path, …)
followed through assignments, attributes, config keys, function arguments and return values into a call
that writes a file (open for writing, Path.write_text, a logging FileHandler, an SQLite database, a copy).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from .source import Module, constant_text, python_files, rel

# Names and attributes that stand for where the code itself is.
LOCATION_NAMES = {"__file__", "__path__"}
LOCATION_ATTRIBUTES = {"__file__", "__path__", "root_path", "instance_path"}  # x.__file__, Flask's app.root_path
LOCATION_CALLS = {"importlib.resources.files", "importlib.resources.path", "importlib.resources.as_file",
                  "importlib_resources.files", "pkg_resources.resource_filename"}
PATH_CLASSES = {"Path", "PurePath", "PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath"}
# What is no longer a place once taken from a path: its name, a yes/no answer, a size, a relative path.
NOT_A_PLACE_ATTRIBUTES = {"name", "stem", "suffix", "suffixes", "parts"}
QUESTIONS = {"exists", "isfile", "isdir", "islink", "ismount", "is_file", "is_dir", "is_symlink", "getsize",
             "getmtime", "getctime", "stat", "lstat", "access", "samefile", "startswith", "endswith", "relative_to",
             "relpath", "basename", "read_text", "read_bytes", "len", "bool", "isinstance", "hash", "print"}

OPENERS = {"open", "builtins.open", "io.open", "codecs.open"}  # the mode is the second argument
# A call that makes, changes or removes a file at one of its arguments: (position, keyword).
FILE_WRITERS = {
    "logging.FileHandler": (0, "filename"), "logging.handlers.RotatingFileHandler": (0, "filename"),
    "logging.handlers.TimedRotatingFileHandler": (0, "filename"), "logging.handlers.WatchedFileHandler": (0, "filename"),
    "logging.basicConfig": (None, "filename"), "sqlite3.connect": (0, "database"), "sqlalchemy.create_engine": (0, "url"),
    "shelve.open": (0, "filename"), "dbm.open": (0, "file"), "shutil.copy": (1, "dst"), "shutil.copy2": (1, "dst"),
    "shutil.copyfile": (1, "dst"), "shutil.copytree": (1, "dst"), "shutil.move": (1, "dst"), "os.rename": (1, "dst"),
    "os.replace": (1, "dst"), "os.link": (1, "dst"), "os.symlink": (1, "dst"), "os.mkdir": (0, "path"),
    "os.makedirs": (0, "name"), "os.remove": (0, "path"), "os.unlink": (0, "path"), "os.rmdir": (0, "path"),
    "shutil.rmtree": (0, "path"), "os.mkfifo": (0, "path"), "tempfile.mkstemp": (None, "dir"),
    "tempfile.mkdtemp": (None, "dir"), "tempfile.NamedTemporaryFile": (None, "dir"),
    "tempfile.TemporaryFile": (None, "dir"), "tempfile.TemporaryDirectory": (None, "dir"),
    "tempfile.SpooledTemporaryFile": (None, "dir"),
}
WHOLE_CONFIG = {"logging.config.dictConfig"}  # a file named anywhere in its argument is a log file
PATH_WRITES = {"write_text", "write_bytes", "touch", "mkdir", "symlink_to", "hardlink_to", "unlink", "rmdir",
               "rename", "replace"}  # methods of a pathlib.Path that change the file system at the path
WRITE_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC"}
TOOL_MODULE = "release"  # release.py, the deploy tool: it writes builds and releases, which is its job


@dataclass(frozen=True)
class Write:
    """A call that writes a file at a path made from the code's own location."""

    file: str
    line: int
    code: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} `{self.code}`"


def _writes_mode(node: ast.AST | None) -> bool:
    mode = constant_text(node) if node is not None else None
    return mode is not None and any(c in mode for c in "wax+")


def _argument(call: ast.Call, position: int | None, keyword: str) -> ast.AST | None:
    found = next((k.value for k in call.keywords if k.arg == keyword), None)
    if found is None and position is not None and len(call.args) > position \
            and not any(isinstance(a, ast.Starred) for a in call.args[:position + 1]):
        found = call.args[position]
    return found


def _own_nodes(scope: ast.AST):
    """The nodes of a module or function body, without the bodies of the functions defined in it."""
    body = scope.body if isinstance(scope, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef)) else []
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            stack.extend(reversed([*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]))
            continue
        stack.extend(reversed([c for c in ast.iter_child_nodes(node) if c is not None]))


class _Flow:
    """Which names, attributes, config keys and functions hold the code's location in one module."""

    def __init__(self, module: Module):
        self.module = module
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self.methods: set[ast.AST] = set()
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                self.methods |= {f for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions.append(node)
        self.scopes: list[ast.AST] = [module.tree, *self.functions]
        self.nodes = {id(s): list(_own_nodes(s)) for s in self.scopes}
        self.locals: dict[int, set[str]] = {id(module.tree): set()}
        for function in self.functions:
            declared = {n for node in self.nodes[id(function)] if isinstance(node, (ast.Global, ast.Nonlocal))
                        for n in node.names}
            assigned = {node.id for node in self.nodes[id(function)]
                        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del))}
            self.locals[id(function)] = (assigned | set(self._parameters(function))) - declared
        self.held: dict[int, set[str]] = {id(s): set() for s in self.scopes}  # names holding the location
        self.keys: set[str] = set()  # attributes and config keys holding it (self.log_dir, config["LOG_FILE"])
        self.returning: set[str] = set()  # functions that return it
        for _ in range(12):  # to a fixed point: every pass can only add
            if not self._spread():
                break

    @staticmethod
    def _parameters(function) -> list[str]:
        args = function.args
        return [a.arg for a in [*args.posonlyargs, *args.args, *([args.vararg] if args.vararg else []),
                                *args.kwonlyargs, *([args.kwarg] if args.kwarg else [])]]

    def _scope_of(self, name: str, scope: ast.AST) -> int:
        return id(scope) if name in self.locals.get(id(scope), set()) else id(self.module.tree)

    def place(self, node: ast.AST | None, scope: ast.AST) -> bool:
        """Does the expression stand for the code's location, or a path under it?"""
        if node is None:
            return False
        if isinstance(node, ast.Name):
            return node.id in LOCATION_NAMES or node.id in self.held[self._scope_of(node.id, scope)]
        if isinstance(node, ast.Attribute):
            if node.attr in LOCATION_ATTRIBUTES or node.attr in self.keys:
                return True
            return node.attr not in NOT_A_PLACE_ATTRIBUTES and self.place(node.value, scope)
        if isinstance(node, ast.Subscript):
            key = constant_text(node.slice)
            return (key is not None and key in self.keys) or self.place(node.value, scope)
        if isinstance(node, ast.Call):
            return self._call_place(node, scope)
        if isinstance(node, ast.BinOp):
            return self.place(node.left, scope) or self.place(node.right, scope)
        if isinstance(node, ast.IfExp):
            return self.place(node.body, scope) or self.place(node.orelse, scope)
        if isinstance(node, (ast.BoolOp, ast.JoinedStr)):
            return any(self.place(v, scope) for v in node.values)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(self.place(e, scope) for e in node.elts)
        if isinstance(node, ast.Dict):
            return any(self.place(v, scope) for v in node.values)
        if isinstance(node, (ast.FormattedValue, ast.Starred, ast.NamedExpr, ast.Await)):
            return self.place(node.value, scope)
        return False

    def _call_place(self, node: ast.Call, scope: ast.AST) -> bool:
        qualified = self.module.qualified(node.func) or ""
        if qualified in LOCATION_CALLS:
            return True
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in QUESTIONS or qualified.rsplit(".", 1)[-1] in QUESTIONS:
            return False
        if name in ("get", "pop", "setdefault") and node.args and constant_text(node.args[0]) in self.keys:
            return True
        if name in self.returning:
            return True
        if isinstance(func, ast.Attribute) and self.place(func.value, scope):
            return True  # a method of the path: joinpath, resolve, with_name, format, …
        if name[:1].isupper() and name not in PATH_CLASSES:
            return False  # a class made with the path is an object (Flask(root_path=…)), not a path
        return any(self.place(a, scope) for a in node.args) or any(self.place(k.value, scope) for k in node.keywords)

    def _hold(self, target: ast.AST, scope: ast.AST) -> bool:
        """Record that target now holds the location; True when that is new."""
        if isinstance(target, ast.Name):
            held = self.held[self._scope_of(target.id, scope)]
            new = target.id not in held
            held.add(target.id)
            return new
        key = target.attr if isinstance(target, ast.Attribute) else \
            constant_text(target.slice) if isinstance(target, ast.Subscript) else None
        if key:
            new = key not in self.keys
            self.keys.add(key)
            return new
        if isinstance(target, (ast.Tuple, ast.List)):
            return any([self._hold(e, scope) for e in target.elts])
        if isinstance(target, ast.Starred):
            return self._hold(target.value, scope)
        return False

    def _spread(self) -> bool:
        changed = False
        for scope in self.scopes:
            for node in self.nodes[id(scope)]:
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, (ast.Tuple, ast.List)) and isinstance(node.value, (ast.Tuple, ast.List)) \
                                and len(target.elts) == len(node.value.elts):
                            pairs = zip(target.elts, node.value.elts)
                        else:
                            pairs = [(target, node.value)]
                        for one, value in pairs:
                            if self.place(value, scope):
                                changed |= self._hold(one, scope)
                elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
                    if node.value is not None and self.place(node.value, scope):
                        changed |= self._hold(node.target, scope)
                elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                    if self.place(node.iter, scope):
                        changed |= self._hold(node.target, scope)
                elif isinstance(node, ast.withitem):
                    if node.optional_vars is not None and self.place(node.context_expr, scope):
                        changed |= self._hold(node.optional_vars, scope)
                elif isinstance(node, ast.Return) and scope is not self.module.tree:
                    if self.place(node.value, scope) and scope.name not in self.returning:
                        self.returning.add(scope.name)
                        changed = True
                elif isinstance(node, ast.Call):
                    changed |= self._pass_on(node, scope)
        return changed

    def _pass_on(self, call: ast.Call, scope: ast.AST) -> bool:
        """A location passed to a function of the module: its parameter holds it; a config key set to it holds it."""
        changed = False
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("update", "setdefault", "from_mapping", "__setitem__"):
            for keyword in call.keywords:
                if keyword.arg and self.place(keyword.value, scope) and keyword.arg not in self.keys:
                    self.keys.add(keyword.arg)
                    changed = True
            if name in ("setdefault", "__setitem__") and len(call.args) == 2 and self.place(call.args[1], scope):
                key = constant_text(call.args[0])
                if key and key not in self.keys:
                    self.keys.add(key)
                    changed = True
        for function in (f for f in self.functions if f.name == name):
            parameters = [a.arg for a in [*function.args.posonlyargs, *function.args.args]]
            if function in self.methods and isinstance(func, ast.Attribute) and parameters[:1] in (["self"], ["cls"]):
                parameters = parameters[1:]
            given = [(p, a) for p, a in zip(parameters, call.args) if not isinstance(a, ast.Starred)]
            given += [(k.arg, k.value) for k in call.keywords if k.arg]
            for parameter, value in given:
                if self.place(value, scope) and parameter not in self.held[id(function)]:
                    self.held[id(function)].add(parameter)
                    changed = True
        return changed

    def writes(self) -> list[ast.Call]:
        """The calls that write a file at the location."""
        found = []
        for scope in self.scopes:
            for node in self.nodes[id(scope)]:
                if isinstance(node, ast.Call) and self._writes_here(node, scope):
                    found.append(node)
        return sorted(found, key=lambda n: (n.lineno, n.col_offset))

    def _writes_here(self, call: ast.Call, scope: ast.AST) -> bool:
        qualified = self.module.qualified(call.func) or ""
        func = call.func
        if qualified in OPENERS:
            return _writes_mode(_argument(call, 1, "mode")) and self.place(_argument(call, 0, "file"), scope)
        if qualified == "os.open":
            flags = _argument(call, 1, "flags")
            names = {n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", "") for n in ast.walk(flags)} \
                if flags is not None else set()
            return bool(names & WRITE_FLAGS) and self.place(_argument(call, 0, "path"), scope)
        if qualified in FILE_WRITERS:
            position, keyword = FILE_WRITERS[qualified]
            return self.place(_argument(call, position, keyword), scope)
        if qualified in WHOLE_CONFIG:
            return any(self.place(a, scope) for a in call.args)
        if isinstance(func, ast.Attribute) and self.place(func.value, scope):
            if func.attr in PATH_WRITES:
                return True
            if func.attr == "open":
                return _writes_mode(_argument(call, 0, "mode"))
        if isinstance(func, ast.Attribute) and func.attr == "open_instance_resource":
            return _writes_mode(_argument(call, 1, "mode"))
        return False


# -- which files -------------------------------------------------------------------------------------------

def _module_name(path: Path, root: Path) -> str:
    parts = list(Path(rel(path, root)).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(module: Module, name: str) -> set[str]:
    """The modules a module imports, absolute names (relative imports resolved against its package)."""
    package = name if module.path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[:len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join([*parts, *([node.module] if node.module else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" if base else alias.name for alias in node.names}
    return found


def _closure(start: str, imports: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in imports:
            continue
        seen.add(name)
        for other in imports[name]:
            todo += [n for n in imports if other == n or other.startswith(n + ".")]
    return seen


def _is_test(name: str) -> bool:
    parts = name.split(".")
    return any(p in ("test", "tests") for p in parts[:-1]) or parts[-1].startswith("test_") or \
        parts[-1].endswith("_test") or parts[-1] == "conftest"


def _modules(root: Path) -> dict[str, Module]:
    """The app's Python modules by dotted name (a/b.py is a.b, a/__init__.py is a)."""
    modules = {}
    for path in python_files(root):
        module = Module.read(path)
        if module is not None:
            modules[_module_name(path, root)] = module
    return modules


def app_modules(root: Path, app_module: str = "shortly") -> set[str]:
    """The app's module and every module of the folder that imports it (wsgi.py: from shortly import app), by
    top-level name: what starts the app when run or imported."""
    modules = _modules(root)
    imports = {name: _imported(module, name) for name, module in modules.items()}
    found = {name.split(".")[0] for name in modules if app_module in {n.split(".")[0] for n in _closure(name, imports)}}
    return (found | {app_module}) - {TOOL_MODULE}


def writes_next_to_code(root: Path, app_module: str = "shortly") -> list[Write]:
    """Every call in the app's code that writes a file at a path made from the code's own location. The
    release tool (and what only it imports) is left out: writing builds and releases is its job; so are tests."""
    modules = _modules(root)
    imports = {name: _imported(module, name) for name, module in modules.items()}
    tool_only = _closure(TOOL_MODULE, imports) - _closure(app_module, imports)
    found = []
    for name, module in sorted(modules.items()):
        if name in tool_only or _is_test(name):
            continue
        try:
            calls = _Flow(module).writes()
        except RecursionError:  # an expression nested deeper than Python recurses: no path to follow there
            continue
        for call in calls:
            code = ast.unparse(call)
            found.append(Write(rel(module.path, root), call.lineno, code if len(code) <= 90 else code[:87] + "..."))
    return found
