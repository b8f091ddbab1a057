"""Factor II, dependencies: explicitly declare and isolate dependencies.

The evidence: the manifest read as pip reads it (`factorlab.manifest`), the code read as code (every
import, however spelled, in every file; every way to start a program), and the app run in an
environment built from the manifest alone, with no system tools, over every route it has.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from functools import lru_cache
from pathlib import Path

from .. import manifest
from ..http import Client
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import create_link, follow, shorten
from .attached import serve
from .runbook import runbook_truth
from .source import Module, python_files, rel
from .text import listing

MANIFEST = manifest.MANIFEST
# Import names whose distribution is named differently, for when the checker's own environment does not
# have the package installed to ask.
KNOWN = {
    "bs4": {"beautifulsoup4"}, "dotenv": {"python-dotenv"}, "jwt": {"pyjwt"}, "pil": {"pillow"},
    "psycopg2": {"psycopg2", "psycopg2-binary"}, "psycopg": {"psycopg", "psycopg-binary"},
    "yaml": {"pyyaml"}, "sklearn": {"scikit-learn"}, "dateutil": {"python-dateutil"},
}
# Ways to start another program, and ways to load a library the manifest cannot declare.
PROGRAM_STARTERS = ("subprocess.", "os.system", "os.popen", "os.spawn", "os.exec", "os.posix_spawn", "os.startfile",
                    "pty.spawn", "asyncio.create_subprocess_", "commands.", "platform.popen", "sh.")
HARMLESS = {"subprocess.PIPE", "subprocess.DEVNULL", "subprocess.STDOUT", "subprocess.SubprocessError",
            "subprocess.CalledProcessError", "subprocess.TimeoutExpired", "os.sep", "os.extsep"}
SYSTEM_LIBRARIES = ("ctypes.CDLL", "ctypes.cdll", "ctypes.util.find_library", "ctypes.PyDLL", "ctypes.WinDLL")
EXPECTED_PINS = "Expected: every requirement pinned to one version (name==version), so every deploy gets the same code."


def read_manifest(root: Path) -> manifest.Manifest:
    """The folder's manifest; CheckFailed when there is none or pip could not read it."""
    try:
        declared = manifest.read(root)
    except manifest.ManifestMissing:
        raise CheckFailed(f"Seen: no {MANIFEST} in the app's folder.\n"
                          "Expected: a manifest that declares every package the app imports, pinned with ==.") from None
    if declared.problems:
        raise CheckFailed(f"Seen: {listing(declared.problems, 2)}.\nExpected: a {MANIFEST} that pip can read.")
    return declared


@check("dependencies.manifest_pinned", factor=2, title="requirements.txt pins every dependency",
       hint="Pin each requirement as name==version (pip freeze shows the versions you have); a range (>=, ~=, "
            "==2.*) or an editable checkout lets two deploys install different code.")
def manifest_pinned(ctx: CheckContext) -> str:
    """A requirements.txt exists and, with the files it includes, pins every requirement to one exact version
    (==, ===, a commit of a VCS URL, a versioned file, or a constraint that pins it)."""
    declared = read_manifest(ctx.path)
    if not declared.requirements:
        raise CheckFailed(f"Seen: an empty {MANIFEST}.\nExpected: the packages the app needs, pinned with ==.")
    loose = [f"{r.text} ({r.where})" for r in declared.unpinned()]
    if loose:
        raise CheckFailed(f"Seen: {listing(loose, 3)}: not pinned to one version.\n{EXPECTED_PINS}")
    return f"{len(declared.requirements)} requirement(s), each pinned to one version"


@lru_cache(maxsize=1)
def _installed_map() -> dict[str, set[str]]:
    mapping: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        mapping.setdefault(module.lower(), set()).update(manifest.normalize(d) for d in dists)
    return mapping


def distributions_for(module: str) -> set[str]:
    """The distribution names that can provide a top-level import name."""
    key = module.lower()
    return KNOWN.get(key, set()) | _installed_map().get(key, set()) | {manifest.normalize(module)}


def _local_names(root: Path) -> set[str]:
    """Top-level names the app's own files provide: its modules, and its packages (folders of Python files)."""
    names = set()
    for path in python_files(root):
        parts = path.relative_to(root).parts
        names.add(Path(parts[0]).stem if len(parts) == 1 else parts[0])
    return names


def imported_names(module: Module) -> list[tuple[str, int]]:
    """(top-level name, line) of everything a module imports: import statements anywhere (in functions, in
    try blocks), and importlib.import_module / __import__ of a name the code spells out, in the call or in a
    constant (NAME = "orjson", a loop over literal names, a constant of the app's own modules)."""
    found = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.Call) and module.qualified(node.func) in ("importlib.import_module", "__import__",
                                                                            "builtins.__import__") and node.args:
            for name in module.constant_values(node.args[0]):  # "orjson", FAST_JSON = "orjson", f"{BASE}.ext"
                if name and not name.startswith("."):
                    found.append((name.split(".")[0], node.lineno))
    return found


def third_party_imports(root: Path) -> dict[str, str]:
    """Imported top-level names that are neither the standard library nor the app's own, with where they are."""
    local = _local_names(root)
    found: dict[str, str] = {}
    for path in python_files(root):
        module = Module.read(path, root)
        for name, line in imported_names(module) if module else ():
            if name not in sys.stdlib_module_names and name not in local and name != "__future__":
                found.setdefault(name, f"{rel(path, root)}:{line}")
    return found


@check("dependencies.imports_declared", factor=2, title="Every import is declared in requirements.txt",
       hint="Each third-party import needs its package in requirements.txt, even one that only some code path "
            "uses, one imported by name at run time, or an optional one tried in a try block.")
def imports_declared(ctx: CheckContext) -> str:
    """Every third-party module that any file of the app imports, however it imports it, is provided by a
    requirement of the manifest (or of a file it includes)."""
    declared = read_manifest(ctx.path).names
    imports = third_party_imports(ctx.path)
    missing = [f"{module} (imported at {where})" for module, where in sorted(imports.items())
               if not distributions_for(module) & declared]
    if missing:
        raise CheckFailed(f"Seen: {listing(missing, 3)}, not declared in {MANIFEST}.\n"
                          "Expected: every package the code imports is declared, so a fresh deploy installs it.")
    return f"every third-party import is declared: {', '.join(sorted(imports)) or 'none'}"


def _runs_python_itself(node: ast.AST, module: Module) -> bool:
    """Is this call's program the running interpreter (sys.executable), which needs no declaring?"""
    if not isinstance(node, ast.Call):
        return False
    args = [*node.args, *(k.value for k in node.keywords if k.arg in ("args", "path", "file", "executable"))]
    first = args[0] if args else None
    if isinstance(first, (ast.List, ast.Tuple)) and first.elts:
        first = first.elts[0]
    return first is not None and module.qualified(first) == "sys.executable"


def system_tools(root: Path) -> list[str]:
    """Where the code starts another program (other than Python itself) or loads a system library, however the
    function got there: imported, renamed, brought by `from subprocess import *`, or re-exported by one of the
    app's own modules."""
    found = []
    for path in python_files(root):
        module = Module.read(path, root)  # names imported from the app's own modules resolved through them
        if module is None:
            continue
        seen = set()
        for node, name in module.references():
            starts = name.startswith(PROGRAM_STARTERS) and name not in HARMLESS
            if not (starts or name.startswith(SYSTEM_LIBRARIES)) or getattr(node, "lineno", 0) in seen:
                continue
            parent_call = next((c for c in ast.walk(module.tree) if isinstance(c, ast.Call) and c.func is node), node)
            if _runs_python_itself(parent_call, module):
                continue
            seen.add(getattr(node, "lineno", 0))
            spelled = ast.unparse(node.func if isinstance(node, ast.Call) else node)
            spelled = f" (as {spelled})" if not name.endswith(spelled) else ""
            found.append(f"{name}{spelled} at {rel(path, root)}:{getattr(node, 'lineno', '?')}")
    return found


@check("dependencies.no_system_tools", factor=2, title="No reliance on system tools",
       hint="A command-line tool such as curl cannot be declared in requirements.txt: do the work with a Python "
            "package you declare (requests, or the standard library's urllib).")
def no_system_tools(ctx: CheckContext) -> str:
    """No file of the app starts another program (subprocess, os.system, os.popen, os.exec*, spawn, however
    imported or renamed) or loads a system library, except the running Python interpreter itself."""
    calls = system_tools(ctx.path)
    if calls:
        raise CheckFailed(f"Seen: the app relies on programs of the machine: {listing(calls, 3)}.\n"
                          "Expected: no implicit system tools; do the work with a declared Python package.")
    return "the app starts no other program and loads no system library"


# Ways the code adds a folder to where Python finds packages.
PATH_CALLS = {"sys.path.insert", "sys.path.append", "sys.path.extend", "site.addsitedir"}
PATH_JOINS = {"os.path.join", "posixpath.join", "pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "str",
              "os.path.expanduser", "os.path.abspath", "os.path.realpath", "os.fspath"}


def _path_texts(module: Module, node: ast.AST) -> list[str]:
    """The folders an expression can name when they do not depend on input: texts, constants, lists of them, and
    os.path.join / Path / str of those."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [text for element in node.elts for text in _path_texts(module, element)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):  # Path("/usr") / "lib"
        return [f"{a}/{b}" for a in _path_texts(module, node.left) for b in _path_texts(module, node.right)]
    if isinstance(node, ast.Call) and module.qualified(node.func) in PATH_JOINS and node.args:
        parts = [_path_texts(module, arg) for arg in node.args]
        if all(parts):
            joined = [""]
            for choices in parts:
                joined = [f"{a}/{b}" if a else b for a in joined for b in choices][:20]
            return joined
        return []
    return module.constant_values(node)


def outside_paths(root: Path) -> list[str]:
    """Where the code puts a folder outside the app on sys.path (sys.path.insert, append, extend, assignment,
    site.addsitedir): an absolute path, or another Python's site-packages or dist-packages, whose packages the app
    would then import without declaring them. A folder of the app itself (a relative path, one built from
    __file__) is the app's own code."""
    found = []
    for path in python_files(root):
        module = Module.read(path, root)
        for node in ast.walk(module.tree) if module else ():
            values: list[ast.AST] = []
            if isinstance(node, ast.Call) and module.qualified(node.func) in PATH_CALLS and node.args:
                values = [node.args[-1]]
            elif isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(module.qualified(t.value if isinstance(t, ast.Subscript) else t) == "sys.path" for t in targets):
                    values = [node.value]
            for value in values:
                for text in _path_texts(module, value):
                    if text.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", text) \
                            or re.search(r"(site|dist)-packages", text):
                        found.append(f"{rel(path, root)}:{node.lineno} puts {text} on sys.path")
    return found


def _route(app, client, method: str, path: str, what: str, expected: tuple[int, ...], **kwargs):
    answer = client.request(app, method, path, **kwargs)
    if answer.status_code not in expected:
        raise CheckFailed(f"Seen: in the clean environment, {method} {path} ({what}) answered {answer.status_code}."
                          f"{app.last_words()}\nExpected: {' or '.join(map(str, expected))}: every route works with "
                          f"only what {MANIFEST} installs.")
    return answer


@check("dependencies.clean_environment", factor=2, title="A clean environment built from the manifest runs the app",
       hint="Build a fresh venv with only `pip install -r requirements.txt` and start the app there: what breaks "
            "is undeclared. Never put the host's packages on sys.path (sys.path.insert, site.addsitedir).", timeout=300)
def clean_environment(ctx: CheckContext) -> str:
    """Built from requirements.txt alone (a fresh venv, or an image), with no system tools, the app serves every
    route: the home page, a link made through the API and through the form (with its preview title), its
    stats page, its redirect, its JSON, the recent links and the admin purge. And the code puts no folder outside
    the app on sys.path, which would let the host's packages in wherever it has them."""
    read_manifest(ctx.path)
    outside = outside_paths(ctx.path)
    if outside:
        raise CheckFailed(f"Seen: {listing(outside, 2)}: a folder outside the app's environment, so the app imports "
                          "whatever the host has installed there.\nExpected: every package comes from the "
                          f"environment built from {MANIFEST} alone; nothing from the host is put on sys.path.")
    app = serve(ctx, clean=True)
    with TestPage() as page, Client() as client:
        _route(app, client, "GET", "/", "the home page", (200,))
        link = create_link(app, page.url("/clean-env"), client=client, where="the clean environment")
        code = shorten(app, page.url("/clean-form"), client=client, where="the clean environment")
        stats = _route(app, client, "GET", f"/stats/{code}", "the new link's stats", (200,))
        follow(app, link["code"], client=client, where="the clean environment")
        _route(app, client, "GET", f"/api/links/{link['code']}", "the link as JSON", (200,))
        _route(app, client, "GET", "/api/recent", "the recent links", (200,))
        _route(app, client, "GET", "/admin/purge?token=not-the-token", "the admin purge", (403, 404))
    if link.get("title") != page.title or page.title not in stats.text:
        where = "made through the API" if link.get("title") != page.title else "made through the form"
        raise CheckFailed(f"Seen: in a clean environment (only the manifest installed, no system tools on PATH) "
                          f"the preview title of a link {where} was not fetched.\nExpected: {page.title!r}, fetched "
                          "with a declared library rather than a program the host happens to have.")
    return (f"{'an image' if ctx.runner.name == 'docker' else 'a fresh venv'} built from {MANIFEST} alone serves "
            "every route, and fetches previews without system tools")


@check("dependencies.runbook", factor=2, title="The runbook asks for no system tool or system package",
       hint="Now that previews use a Python library, a box needs only Python: drop curl from OPS.md's setup (with "
            "whichever package manager), and install the app's packages from requirements.txt into a virtualenv, "
            "not from the OS (python3-flask).")
def runbook(ctx: CheckContext) -> str:
    """OPS.md no longer tells the operator to install a system tool the app used to shell out to (with apt, yum,
    dnf, apk, brew or another package manager), or the app's packages from the OS's packages; it may still tell
    that they are gone."""
    return runbook_truth(ctx, "02_dependencies", variables=False)
