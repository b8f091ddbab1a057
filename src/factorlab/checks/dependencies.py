"""Factor II, dependencies: explicitly declare and isolate dependencies."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from functools import lru_cache
from pathlib import Path

from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import REQUIRED_APP_ENV
from .source import parse, python_files

MANIFEST = "requirements.txt"
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(?P<spec>[^;#]*)")
# Import names whose distribution is named differently, for when the checker's own
# environment does not have the package installed to ask.
KNOWN = {
    "bs4": {"beautifulsoup4"}, "dotenv": {"python-dotenv"}, "jwt": {"pyjwt"}, "pil": {"pillow"},
    "psycopg2": {"psycopg2", "psycopg2-binary"}, "psycopg": {"psycopg", "psycopg-binary"},
    "yaml": {"pyyaml"}, "sklearn": {"scikit-learn"}, "dateutil": {"python-dateutil"},
}
SHELL_CALLS = {("subprocess", name) for name in ("run", "call", "check_call", "check_output", "Popen", "getoutput",
                                                 "getstatusoutput")} | {("os", "system"), ("os", "popen")}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_manifest(root: Path) -> dict[str, str]:
    """Map each requirement's normalized name to its version spec; CheckFailed when there is no manifest."""
    path = root / MANIFEST
    if not path.is_file():
        raise CheckFailed(f"Seen: no {MANIFEST} in the app's folder.\n"
                          "Expected: a manifest that declares every package the app imports, pinned with ==.")
    found = {}
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        match = REQUIREMENT.match(line)
        if line.startswith("-") or not match:
            raise CheckFailed(f"Seen: the line {line!r} in {MANIFEST}.\nExpected: one `name==version` per line.")
        found[normalize(match["name"])] = match["spec"].strip()
    return found


@check("dependencies.manifest_pinned", factor=2, title="requirements.txt pins every dependency",
       hint="Pin each line as name==version (pip freeze shows the versions you have).")
def manifest_pinned(ctx: CheckContext) -> str:
    """A requirements.txt exists and pins each requirement to one exact version."""
    manifest = read_manifest(ctx.path)
    if not manifest:
        raise CheckFailed(f"Seen: an empty {MANIFEST}.\nExpected: the packages the app needs, pinned with ==.")
    loose = [f"{name}{spec}" if spec else name for name, spec in manifest.items()
             if not re.fullmatch(r"==\s*[A-Za-z0-9.+!*-]+", spec) or "*" in spec]
    if loose:
        raise CheckFailed(f"Seen: {', '.join(loose)} not pinned in {MANIFEST}.\n"
                          "Expected: every requirement pinned to one version with ==, so every deploy gets the same code.")
    return f"{len(manifest)} requirement(s), all pinned with =="


@lru_cache(maxsize=1)
def _installed_map() -> dict[str, set[str]]:
    mapping: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        mapping.setdefault(module.lower(), set()).update(normalize(d) for d in dists)
    return mapping


def distributions_for(module: str) -> set[str]:
    """The distribution names that can provide a top-level import name."""
    key = module.lower()
    return KNOWN.get(key, set()) | _installed_map().get(key, set()) | {normalize(module)}


def third_party_imports(root: Path) -> dict[str, str]:
    """Top-level imported names that are neither stdlib nor the app's own modules, with where they appear."""
    local = {p.stem for p in root.iterdir() if p.suffix == ".py"} | {p.name for p in root.iterdir() if p.is_dir()}
    found: dict[str, str] = {}
    for file in python_files(root):
        tree = parse(file)
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local and top != "__future__":
                    found.setdefault(top, f"{file.relative_to(root).as_posix()}:{node.lineno}")
    return found


@check("dependencies.imports_declared", factor=2, title="Every import is declared in requirements.txt",
       hint="Each third-party import needs its package in requirements.txt, even one that only some code paths use.")
def imports_declared(ctx: CheckContext) -> str:
    """Every third-party module the code imports is provided by a declared requirement."""
    declared = set(read_manifest(ctx.path))
    imports = third_party_imports(ctx.path)
    missing = [f"{module} (imported at {where})" for module, where in sorted(imports.items())
               if not distributions_for(module) & declared]
    if missing:
        raise CheckFailed(f"Seen: {', '.join(missing)} but not declared in {MANIFEST}.\n"
                          "Expected: every package the code imports is declared, so a fresh deploy can install it.")
    return f"every third-party import is declared: {', '.join(sorted(imports)) or 'none'}"


def _shell_outs(root: Path) -> list[str]:
    found = []
    for file in python_files(root):
        tree = parse(file)
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and (node.func.value.id, node.func.attr) in SHELL_CALLS:
                program = _program_name(node)
                found.append(f"{node.func.value.id}.{node.func.attr}({program}) at "
                             f"{file.relative_to(root).as_posix()}:{node.lineno}")
    return found


def _program_name(call: ast.Call) -> str:
    first = call.args[0] if call.args else None
    if isinstance(first, (ast.List, ast.Tuple)) and first.elts and isinstance(first.elts[0], ast.Constant):
        return repr(first.elts[0].value)
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return repr(first.value.split()[0] if first.value.split() else first.value)
    return "…"


@check("dependencies.no_system_tools", factor=2, title="No reliance on system tools",
       hint="A command-line tool such as curl cannot be declared in requirements.txt: use a Python library instead.")
def no_system_tools(ctx: CheckContext) -> str:
    """The app does not shell out to programs that the manifest cannot declare."""
    calls = _shell_outs(ctx.path)
    if calls:
        raise CheckFailed(f"Seen: the app runs system commands: {'; '.join(calls)}.\n"
                          "Expected: no implicit system tools; do the work with a declared Python package.")
    return "the app runs no system commands"


@check("dependencies.clean_environment", factor=2, title="A clean environment built from the manifest runs the app",
       hint="Build a fresh venv with only `pip install -r requirements.txt` and start the app there: what breaks is undeclared.",
       timeout=300)
def clean_environment(ctx: CheckContext) -> str:
    """Built from requirements.txt alone (a fresh venv, or an image), with no system tools, the app serves pages
    and previews."""
    read_manifest(ctx.path)
    app = ctx.runner.start(REQUIRED_APP_ENV, clean=True)
    home = app.get("/")
    if home.status_code != 200:
        raise CheckFailed(f"Seen: GET / answered {home.status_code} in the clean environment.{app.last_words()}\n"
                          "Expected: 200.")
    with TestPage() as page:
        created = app.post("/api/links", json={"url": page.url("/clean-env")})
        title = created.json().get("title") if created.status_code == 201 else None
    if created.status_code != 201:
        raise CheckFailed(f"Seen: POST /api/links answered {created.status_code} in the clean environment."
                          f"{app.last_words()}\nExpected: 201 and the new link.")
    if title != page.title:
        raise CheckFailed(f"Seen: in a clean environment (only the manifest installed, no system tools on PATH) "
                          f"the link preview title was {title!r}.\nExpected: {page.title!r}, fetched with a declared "
                          "library rather than a program the host happens to have.")
    return (f"{'an image' if ctx.runner.name == 'docker' else 'a fresh venv'} built from requirements.txt alone "
            "starts the app, which fetches previews without system tools")
