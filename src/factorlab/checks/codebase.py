"""Factor I, codebase: one codebase tracked in revision control, many deploys.

The evidence: git itself (what it holds, what it would take, which branches it has), every file of the
folder whatever its name or extension (a copy of the app for one environment is found by its name and by
its content), and the running app (it does what production's copy did).
"""

from __future__ import annotations

import ast
import difflib
import re
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from .. import files
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import create_link, shorten
from .attached import serve
from .source import app_files, app_module_file, parse, python_files, rel, strings
from .text import listing

# Words that name a deploy or mark a copy, as they appear in file and folder names.
ENV_WORDS = {"prod", "production", "staging", "stage", "stg", "dev", "development", "local", "live", "qa", "uat",
             "preprod", "old", "backup", "bak", "copy", "new", "orig", "tmp"}
NAME_PARTS = re.compile(r"[A-Za-z0-9]+")
SIMILARITY = 0.6  # of the lines of two files: above this, one is a copy of the other
MIN_LINES = 30
# Where a doc line says a copy is gone, it may name it.
PAST = re.compile(r"(?i)\b(gone|removed|deleted|folded|merged|no longer|used to|was|were|retired|replaced)\b")
# What a run of the app writes, and local config: none of it belongs in the repository.
LOCAL_FILES = ["shortly.db", "shortly.log", "shortly.log.1", "shortly.pid", ".env", "__pycache__/shortly.cpython-311.pyc"]
GIT_USER = ["-c", "user.name=factorlab", "-c", "user.email=factorlab@factorlab.invalid"]


def _git(path: Path, *args: str, git_dir: str | None = None) -> subprocess.CompletedProcess:
    where = [f"--git-dir={git_dir}", f"--work-tree={path}"] if git_dir else []
    try:
        return subprocess.run(["git", "-c", "core.excludesFile=/dev/null", *where, "-C", str(path), *args],
                              capture_output=True, text=True, timeout=20)
    except FileNotFoundError:
        raise RuntimeError("git is not installed on this machine") from None


@check("codebase.git_repository", factor=1, title="The code lives in a git repository with history",
       hint="Run `git init`, `git add -A` and `git commit -m 'One codebase'` in the app's folder.")
def git_repository(ctx: CheckContext) -> str:
    """The app's folder is in a git work tree that does not ignore it, has commits, and tracks every Python file
    of the app (the app module first)."""
    inside = _git(ctx.path, "rev-parse", "--is-inside-work-tree").returncode == 0
    if inside and _git(ctx.path, "check-ignore", "-q", ".").returncode == 0:
        raise CheckFailed("Seen: the folder sits inside another repository that ignores it, so nothing tracks it.\n"
                          "Expected: a git repository of the app's own (git init, then a first commit).")
    if not inside:
        raise CheckFailed("Seen: the folder is not inside a git repository.\n"
                          "Expected: the code under version control (git init, then a first commit).")
    if _git(ctx.path, "rev-parse", "--verify", "HEAD").returncode != 0:
        raise CheckFailed("Seen: a git repository with no commits yet.\n"
                          "Expected: at least one commit, so every deploy can name the revision it runs.")
    module = app_module_file(ctx)
    tracked = set(_git(ctx.path, "ls-files", "-z").stdout.split("\0"))
    if module not in tracked:
        ignored = _git(ctx.path, "check-ignore", "-q", module).returncode == 0
        raise CheckFailed(f"Seen: git does not track {module}" + (", and .gitignore keeps it out" if ignored else "")
                          + f".\nExpected: the app's code committed (git add {module}).")
    code = sorted(p.relative_to(ctx.path).as_posix() for p in files.walk(ctx.path, (".py",)))
    untracked = [name for name in code if name not in tracked]
    if untracked:
        raise CheckFailed(f"Seen: git does not track {listing(untracked)}.\nExpected: every file of the app's code "
                          "in the repository, so that a deploy of a commit has all of it.")
    return f"a git repository with history that tracks the app's {len(code)} Python file(s)"


@check("codebase.code_only", factor=1, title="The repository holds code, not what a run writes",
       hint="List what the app writes while it runs (shortly.db, shortly.log*, shortly.pid), Python's __pycache__/ "
            "and the local .env in .gitignore, and `git rm --cached` any of them already committed.")
def code_only(ctx: CheckContext) -> str:
    """Nothing a run writes (database, log, pid file, bytecode) and no local .env is committed; and after a run
    left them in the folder, `git add -A` in it would take none of them: the folder's own .gitignore keeps
    them out (as it must wherever the code is cloned)."""
    committed = [name for name in _git(ctx.path, "ls-files", "-z").stdout.split("\0") if name and _local(name)]
    if committed:
        raise CheckFailed(f"Seen: the repository holds {listing(committed)}, written by a run or local config.\n"
                          "Expected: only code: `git rm --cached` them and list them in .gitignore.")
    taken = _would_take(ctx.path)
    if taken:
        raise CheckFailed(f"Seen: after a run, `git add -A` would commit {listing(taken)}: the folder's .gitignore "
                          "does not keep them out.\nExpected: .gitignore lists what the app writes while it runs and "
                          "the local .env, so no deploy's data or secrets reach the repository.")
    return "git keeps the database, log, pid file, bytecode and .env out of the repository"


def _local(name: str) -> bool:
    path = Path(name)
    return (path.name == ".env" or path.suffix in (".db", ".pid", ".pyc", ".sqlite", ".sqlite3")
            or path.name.startswith("shortly.log") or "__pycache__" in path.parts)


def _would_take(folder: Path) -> list[str]:
    """In a copy of folder that a run has written into, what `git add -A` as its own repository would take."""
    with tempfile.TemporaryDirectory(prefix="factorlab-git-") as scratch:
        copy = files.copy_app(folder, Path(scratch) / "app")
        for name in LOCAL_FILES:
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            (copy / name).write_text("written by a run\n")
        git_dir = str(Path(scratch) / "repo.git")
        subprocess.run(["git", "init", "-q", "--bare", git_dir], check=True, capture_output=True, timeout=20)
        listed = _git(copy, "ls-files", "-z", "--others", "--exclude-standard", git_dir=git_dir).stdout.split("\0")
        return sorted(name for name in listed if name in LOCAL_FILES)


def _words(name: str) -> list[str]:
    return [w.lower() for w in NAME_PARTS.findall(name)]


def _variant_of(path: str, app_names: set[str]) -> str | None:
    """The app file that path names with a deploy's word added (shortly_prod.py, prod/shortly.py,
    shortly.py.prod, shortly-live.txt), or None."""
    parts = Path(path).parts
    words = [w for part in parts for w in _words(part)]
    if not set(words) & ENV_WORDS:
        return None
    rest = [w for w in words if w not in ENV_WORDS and w not in ("py", "txt", "sh", "orig", "md")]
    for name in app_names:
        stem = _words(Path(name).stem)
        if rest == stem and Path(path).as_posix() != name:
            return name
    return None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _copies(ctx: CheckContext) -> list[str]:
    """Files of the folder that are another file of the app for one environment: by name (any file on the box,
    ignored by git or not), or by content (any file of the codebase)."""
    texts = {rel(path, ctx.path): text for path, text in _all_text(ctx.path)}
    code = {name for name in texts if name.endswith(".py")}
    app_names = {Path(name).name for name in code} | code
    found = []
    for name in sorted(texts):
        twin = _variant_of(name, app_names)
        if twin and (twin in texts or Path(twin).name in {Path(n).name for n in code if n != name}):
            found.append(f"{name}, a copy of {twin} named for one environment")
    named = {entry.split(",")[0] for entry in found}
    committed = {rel(path, ctx.path) for path in app_files(ctx.path)}
    sized = {name: _lines(text) for name, text in texts.items()
             if name in committed and len(_lines(text)) >= MIN_LINES}
    for a in sorted(n for n in sized if n in code):
        for b in sorted(sized):
            if b == a or b in named or (b in code and b < a):
                continue
            ratio = difflib.SequenceMatcher(None, sized[a], sized[b], autojunk=False).ratio()
            if ratio >= SIMILARITY:
                found.append(f"{b}, {ratio:.0%} the same as {a}")
                named.add(b)
    return found


def _all_text(folder: Path) -> list[tuple[Path, str]]:
    """Every text file of the folder, ignored or not (a copy kept out of git still runs on the box)."""
    found = []
    for path in files.walk(folder):
        text = files.text_of(path)
        if text is not None:
            found.append((path, text))
    return found


def _mentions_of_copies(ctx: CheckContext, copies_gone: set[str]) -> list[str]:
    """Lines of the app's scripts and docs that name a per-environment copy of the app as something to run or
    edit (a doc line may say it is gone)."""
    found = []
    pattern = re.compile(r"[\w./-]+\.py\b")
    for path in app_files(ctx.path):
        name = rel(path, ctx.path)
        if path.suffix == ".py":  # code: the strings it runs with, not its comments
            tree = parse(path)
            lines = [(getattr(node, "lineno", 0), value) for value, node in strings(tree)] if tree else []
        else:
            lines = list(enumerate((files.text_of(path) or "").splitlines(), 1))
        doc = path.suffix.lower() in (".md", ".txt", ".rst", ".py")
        for number, line in lines:
            for mentioned in pattern.findall(line):
                base = Path(mentioned).name
                if base in copies_gone and not (doc and PAST.search(line)):
                    found.append(f"{name}:{number} names {base}")
    return found


def _env_branches(ctx: CheckContext) -> list[str]:
    """Branches named for a deploy that hold commits of the app's code that HEAD does not have."""
    listed = _git(ctx.path, "for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/remotes")
    found = []
    for branch in listed.stdout.split():
        if not set(_words(branch.split("/")[-1])) & ENV_WORDS:
            continue
        ahead = _git(ctx.path, "log", "--format=%h", f"HEAD..{branch}", "--", ".").stdout.split()
        if ahead:
            found.append(f"the branch {branch}, {len(ahead)} commit(s) of code that HEAD does not have")
    return found


@check("codebase.single_codebase", factor=1, title="No per-environment copies of the app",
       hint="Fold what differs into the one codebase and delete the copy: deploys differ by config, not by code. "
            "Then make the deploy script and the runbook name the one codebase.")
def single_codebase(ctx: CheckContext) -> str:
    """No file of the folder, whatever its name, folder or extension, is another file of the app for one
    environment (named for it, or mostly the same lines); no branch named for a deploy carries code of its own;
    and no script or runbook still runs or edits a per-environment copy."""
    expected = "Expected: one codebase; deploys differ only in config."
    copies = _copies(ctx)
    if copies:
        raise CheckFailed(f"Seen: {listing(copies, 3)}.\n{expected}")
    branches = _env_branches(ctx)
    if branches:
        raise CheckFailed(f"Seen: {listing(branches, 2)}.\n{expected} A branch per deploy is a copy of the code "
                          "by other means: every deploy runs a commit of the same history.")
    code = {Path(p).name for p in python_files(ctx.path)}
    gone = _copy_names(ctx, code)
    mentions = _mentions_of_copies(ctx, gone)
    if mentions:
        raise CheckFailed(f"Seen: {listing(mentions, 3)}, a per-environment copy of the app that is not in the "
                          f"codebase.\n{expected} Every script and the runbook run the one codebase.")
    return f"one codebase: {len(code)} Python file(s), no copy of one for an environment, no branch per deploy"


def _copy_names(ctx: CheckContext, code: set[str]) -> set[str]:
    """Names a per-environment copy of an app file would have (shortly_prod.py, shortly-production.py, …):
    those the catalogue's legacy app used, and the app file's name with each deploy word."""
    names = set()
    if ctx.catalogue:
        names |= {p.name for p in ctx.catalogue.legacy.glob("*.py") if _variant_of(p.name, code | {"shortly.py"})}
    for name in code:
        stem = Path(name).stem
        for word in ("prod", "production", "staging", "live", "dev"):
            names |= {f"{stem}{sep}{word}.py" for sep in ("_", "-", ".")}
    return names - code


# -- what production's copy had ------------------------------------------------------------------------------

PASTED = [("  {url} \n", "spaces and a newline around it"), ("HTTP://{rest}", "an upper-case scheme"),
          ("\t Http://{rest}  ", "a tab and a mixed-case scheme")]


def _production_base(ctx: CheckContext) -> str | None:
    """The short-URL base that production's copy (the legacy shortly_prod.py) used, read from its code."""
    if not ctx.catalogue:
        return None
    for path in ctx.catalogue.legacy.glob("*.py"):
        tree = parse(path) if _variant_of(path.name, {"shortly.py"}) else None
        for node in tree.body if tree else ():
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "SHORT_URL_BASE" for t in node.targets) \
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
    return None


@check("codebase.prod_fix_kept", factor=1, title="What production's copy had is in the one codebase",
       hint="The prod copy accepted pasted links with spaces around them or an upper-case scheme, through the API "
            "and the form alike, and built short URLs on the production domain: carry both into shortly.py.")
def prod_fix_kept(ctx: CheckContext) -> str:
    """The one codebase does what production's copy did: it accepts a pasted, untidy link (spaces, an upper-case
    scheme) through the API and through the form alike, and it builds short URLs on production's domain, by
    following the address it was reached at or from production's setting in the code."""
    with TestPage() as page:
        app = serve(ctx)
        target = page.url("/pasted")
        for form, what in PASTED:
            pasted = form.format(url=target, rest=target.removeprefix("http://"))
            made = app.post("/api/links", json={"url": pasted})
            stored = made.json().get("url") if made.status_code == 201 else None
            if stored != target:
                seen = f"got {made.status_code}" if stored is None else \
                    f"was stored as {stored.replace(page.url(), '<page>/')!r}"
                raise CheckFailed(f"Seen: a pasted link with {what} {seen} at POST /api/links.\nExpected: 201 and "
                                  "the tidy URL, as the production copy did: its hot-fix belongs in the one codebase.")
        code = shorten(app, "  " + target.replace("http://", "HTTP://", 1) + " ", where="the form")
        shown = app.get(f"/api/links/{code}")
        if shown.status_code != 200 or shown.json().get("url") != target:
            raise CheckFailed("Seen: a pasted link sent through the form (POST /shorten) was not stored tidy.\n"
                              "Expected: the form and the API accept the same links: one fix, in the code both use.")
        host = "shortly.example.invalid"
        short_url = create_link(app, target, client=None).get("short_url", "")
        followed = app.post("/api/links", json={"url": target}, headers={"Host": host})
        follows = followed.status_code == 201 and urlsplit(followed.json().get("short_url", "")).hostname == host
    base = _production_base(ctx)
    if follows:
        return "pasted, untidy links are tidied by the API and the form alike, and short URLs follow the address used"
    if base and any(base.rstrip("/") in value for path in python_files(ctx.path)
                    for value, _ in (strings(parse(path)) if parse(path) else ())):
        return f"pasted, untidy links are tidied by the API and the form alike, and production's base {base} is in the code"
    raise CheckFailed(f"Seen: short URLs start {short_url.rsplit('/', 1)[0] + '/'!r} whatever address the app is "
                      f"reached at, and production's base{' ' + base if base else ''} is nowhere in the code.\n"
                      "Expected: the setting production's copy had, carried into the one codebase (or short URLs "
                      "built from the address the app was reached at).")
