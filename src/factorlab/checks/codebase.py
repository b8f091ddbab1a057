"""Factor I, codebase: one codebase tracked in revision control, many deploys."""

from __future__ import annotations

import difflib
import re
import subprocess
from pathlib import Path

from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import REQUIRED_APP_ENV
from .source import app_module_file, python_files

ENV_SUFFIX = re.compile(r"^(?P<base>.+?)[_.-](prod|production|staging|stage|dev|development|local|live|qa|old|backup|bak|copy|new|v\d+)$", re.I)
SIMILARITY = 0.8


def _git(path: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        raise RuntimeError("git is not installed on this machine") from None


@check("codebase.git_repository", factor=1, title="The code lives in a git repository with history",
       hint="Run `git init`, `git add -A` and `git commit -m 'One codebase'` in the app's folder.")
def git_repository(ctx: CheckContext) -> str:
    """The app's folder is inside a git work tree that has commits and tracks the app module."""
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
    if _git(ctx.path, "ls-files", "--error-unmatch", module).returncode != 0:
        raise CheckFailed(f"Seen: git does not track {module}.\nExpected: the app's code committed (git add {module}).")
    return f"a git repository with history that tracks {module}"


def _similar(a: Path, b: Path) -> float:
    lines_a = [line.strip() for line in a.read_text(errors="replace").splitlines() if line.strip()]
    lines_b = [line.strip() for line in b.read_text(errors="replace").splitlines() if line.strip()]
    return difflib.SequenceMatcher(None, lines_a, lines_b, autojunk=False).ratio()


@check("codebase.single_codebase", factor=1, title="No per-environment copies of the app",
       hint="Fold what differs into the one codebase and delete the copy: deploys differ by config, not by code.")
def single_codebase(ctx: CheckContext) -> str:
    """No Python file is a per-environment variant or a near-copy of another."""
    files = python_files(ctx.path)
    names = {f.relative_to(ctx.path).as_posix(): f for f in files}
    for rel, file in names.items():
        match = ENV_SUFFIX.match(file.stem)
        twin = file.with_name(f"{match['base']}.py") if match else None
        if twin and twin.exists():
            raise CheckFailed(f"Seen: {rel} next to {twin.relative_to(ctx.path).as_posix()}, a copy of the app "
                              "for one environment.\nExpected: one codebase; deploys differ only in config.")
    sized = [f for f in files if len(f.read_text(errors="replace").splitlines()) >= 30]
    for i, a in enumerate(sized):
        for b in sized[i + 1:]:
            ratio = _similar(a, b)
            if ratio >= SIMILARITY:
                raise CheckFailed(f"Seen: {b.relative_to(ctx.path).as_posix()} is {ratio:.0%} the same as "
                                  f"{a.relative_to(ctx.path).as_posix()}.\nExpected: one copy of the code, "
                                  "with the differences moved into config.")
    return f"one codebase: {len(files)} Python file(s), none a copy of another"


@check("codebase.prod_fix_kept", factor=1, title="The fix production had is in the one codebase",
       hint="The prod copy accepted pasted links with spaces around them or an upper-case scheme: port that fix.")
def prod_fix_kept(ctx: CheckContext) -> str:
    """The single codebase does what the per-environment copy did: it accepts a pasted, untidy link."""
    with TestPage() as page:
        app = ctx.runner.start(REQUIRED_APP_ENV)
        pasted = "  " + page.url("/pasted").replace("http://", "HTTP://") + " \n"
        created = app.post("/api/links", json={"url": pasted})
    if created.status_code != 201:
        raise CheckFailed(f"Seen: a pasted link with spaces and an upper-case scheme got {created.status_code}.\n"
                          "Expected: 201, as the production copy did: its hot-fix belongs in the one codebase.")
    stored = created.json().get("url", "")
    if stored != page.url("/pasted"):
        raise CheckFailed(f"Seen: the link was stored as {stored.replace(page.url(), '<page>/')!r}.\n"
                          "Expected: the tidy URL, without spaces and with a lower-case scheme.")
    return "a pasted, untidy link is tidied and accepted, as production's copy did"
