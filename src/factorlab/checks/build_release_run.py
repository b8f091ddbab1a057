"""Factor V, build, release, run: a build plus a config makes a numbered, immutable release, and only
releases run.

The checks drive the learner's release.py through the runner (`python release.py …` in a copy of the
folder, or in a container) against a deploy root in the shared folder, and read what it made there. To
serve a release they do what `release.py run` does, but with the runner owning the process: the release's
code on PYTHONPATH, its release.env as the config, and a data folder of its own as the working directory.
A static check backs them up: deploy.sh goes through the three stages and edits nothing in place.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from ..process import free_port
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .config import read_env_file
from .deploy_root import RELEASE_ID, TOOL, DeployRoot, release_of
from .text import ended, tail

DEPLOY_SCRIPT = "deploy.sh"
STAGES = {stage: re.compile(rf"\b{re.escape(TOOL)}\b.*\s{stage}\b") for stage in ("build", "release", "run")}
EDITS_IN_PLACE = re.compile(r"\b(sed\b[^|;&]*\s(-[a-zA-Z]*i\b|--in-place)|perl\b[^|;&]*\s-[a-zA-Z]*i)")
RUNS_THE_CHECKOUT = re.compile(r"\bpython[0-9.]*\s+(\S+/)?shortly\.py\b|\bflask\b.*\s--app\s+shortly\b.*\srun\b")
LISTED = re.compile(r"v\d+( \(current\))?")
RUN_REFUSAL_TIMEOUT = 8.0  # `run` of a modified release must refuse at once; one that serves is stopped then


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under folder: its sha256, or "folder"."""
    seen = {}
    for here, dirs, files in os.walk(folder):
        for name in dirs:
            seen[(Path(here) / name).relative_to(folder).as_posix()] = "folder"
        for name in files:
            path = Path(here) / name
            seen[path.relative_to(folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest() \
                if path.is_file() else "other"
    return seen


def _writable(folder: Path) -> list[str]:
    found = [p for p in [folder, *sorted(folder.rglob("*"))] if not p.is_symlink() and p.stat().st_mode & 0o222]
    return [p.relative_to(folder.parent.parent).as_posix() for p in found]


@check("build_release_run.immutable", factor=5, title="A changed release is caught and not run",
       hint="When you make a release, write a MANIFEST with the sha256 of each of its files. `verify` compares the "
            "release with it and names what differs; `run` verifies first and refuses. chmod alone is not enough: "
            "root ignores it.", timeout=90)
def immutable(ctx: CheckContext) -> str:
    """An untouched release verifies (exit 0). After a file in it is edited in place (whatever its permissions,
    as root would), `release.py verify` exits non-zero naming the file and `release.py run` refuses it."""
    with DeployRoot(ctx) as deploy:
        release = deploy.release(deploy.build(), "config")
        code, output = deploy.tool("verify", release)
        if code != 0:
            raise CheckFailed(f"Seen: `python {TOOL} verify {release}` on an untouched release {ended(code)}"
                              f"{tail(output)}\nExpected: exit 0: the release is exactly as it was made.")
        target = deploy.folder(release) / "shortly.py"
        if not target.is_file():
            raise CheckFailed(f"Seen: release {release} has no shortly.py.\n"
                              "Expected: the build's files in the release.")
        deploy.tamper(target, "\n# hot-fix, edited on the box\n")
        code, output = deploy.tool("verify", release)
        if code == 0 or code is None:
            raise CheckFailed(f"Seen: after shortly.py was edited inside release {release}, `python {TOOL} verify "
                              f"{release}` {'still exited 0' if code == 0 else ended(code)}.\nExpected: a non-zero "
                              "exit naming shortly.py. Read-only files do not stop root: compare each file with the "
                              "checksum the release recorded when it was made.")
        if "shortly.py" not in output:
            raise CheckFailed(f"Seen: `python {TOOL} verify {release}` exited with code {code} but did not name the "
                              f"edited file{tail(output)}\nExpected: it names shortly.py, so the operator knows "
                              "what changed.")
        code, output = deploy.tool("run", release, env={"PORT": str(free_port())}, timeout=RUN_REFUSAL_TIMEOUT)
        if code is None or code == 0:
            raise CheckFailed(f"Seen: `python {TOOL} run {release}` " +
                              (f"started the edited release (still running after {RUN_REFUSAL_TIMEOUT:g} s)"
                               if code is None else "exited with code 0") +
                              ".\nExpected: run verifies the release first and refuses one that changed, with a "
                              "non-zero exit.")
    return "an untouched release verifies; an edited one is named by `verify` and refused by `run`"


@check("build_release_run.ordered_ids", factor=5, title="Releases get unique ids, in order",
       hint="Number releases v1, v2, …: one more than the highest that exists. Write the config and "
            "SHORTLY_RELEASE=<id> into each release's release.env, and let `list` print the ids oldest first, "
            "marking the current one with ` (current)`.", timeout=90)
def ordered_ids(ctx: CheckContext) -> str:
    """The same code built twice gives one build id; three releases of it, each with its own config, get three
    ids in increasing order, each release.env holds its config and its id, and `list` prints them oldest first
    with the last marked current."""
    with DeployRoot(ctx) as deploy:
        build = deploy.build()
        again = deploy.build()
        if again != build:
            raise CheckFailed(f"Seen: the same code built twice gave two build ids, {build!r} and {again!r}.\n"
                              "Expected: the id derived from the content (e.g. a sha256 of the files): the same code, "
                              "the same build.")
        releases = [deploy.release(build, f"config{n}", SHORTLY_ADMIN_TOKEN=f"release-check-{n}") for n in (1, 2, 3)]
        numbers = [int(RELEASE_ID.fullmatch(r)[1]) for r in releases]
        if not numbers[0] < numbers[1] < numbers[2]:
            raise CheckFailed(f"Seen: three releases, one after another, got the ids {', '.join(releases)}.\n"
                              "Expected: a new, higher id for each release (v1, v2, v3), never one used before.")
        for n, release in enumerate(releases, 1):
            values = read_env_file(deploy.folder(release) / "release.env")
            if values.get("SHORTLY_RELEASE") != release or values.get("SHORTLY_ADMIN_TOKEN") != f"release-check-{n}":
                raise CheckFailed(f"Seen: releases/{release}/release.env holds SHORTLY_RELEASE="
                                  f"{values.get('SHORTLY_RELEASE')!r} and " +
                                  ("not" if "SHORTLY_ADMIN_TOKEN" not in values else "another value of") +
                                  f" the SHORTLY_ADMIN_TOKEN of its config file.\nExpected: the config it was made "
                                  f"with, plus SHORTLY_RELEASE={release}: a release is a build plus a config.")
        code, output = deploy.tool("list")
        listed = [line.strip() for line in output.splitlines() if LISTED.fullmatch(line.strip())]
        expected = [*releases[:2], f"{releases[2]} (current)"]
        if code != 0 or listed != expected:
            raise CheckFailed(f"Seen: `python {TOOL} list` {ended(code)}" + (tail(output) or ", printing nothing") +
                              "\nExpected: one id per line, oldest first, the current one marked: " +
                              " / ".join(expected) + ".")
    return f"three releases of one build got {', '.join(releases)}, listed oldest first, the last current"


@check("build_release_run.rollback", factor=5, title="Rollback runs the previous release",
       hint="`rollback` points the current symlink at the release before the current one (make a new link and "
            "os.replace it over the old), prints that release's id, and exits 1 when there is none.", timeout=90)
def rollback(ctx: CheckContext) -> str:
    """Two releases of one build with different configs: the release `current` points at answers the second's id
    at /api/release; after `release.py rollback`, current points at the first, which answers its own id; and a
    rollback from the first release fails. (The releases serve from writable copies: where the app writes its
    files is build_release_run.read_only_code's business.)"""
    with DeployRoot(ctx) as deploy:
        build = deploy.build()
        first = deploy.release(build, "before", SHORTLY_ADMIN_TOKEN="release-check-before")
        second = deploy.release(build, "after", SHORTLY_ADMIN_TOKEN="release-check-after")
        deploy.expect_current(second, f"after releasing {second}")
        if (seen := deploy.reported(second)) != second:
            raise CheckFailed(f"Seen: serving the current release, {second}, GET /api/release answered {seen!r}.\n"
                              f"Expected: {second!r}, the SHORTLY_RELEASE of its release.env.")
        back = deploy.expect("rollback", shown="rollback", what=f"making {first} current and printing its id last")
        deploy.expect_current(first, f"after `python {TOOL} rollback` from {second}")
        if back != first:
            raise CheckFailed(f"Seen: `python {TOOL} rollback` printed {back!r} last.\n"
                              f"Expected: {first!r}, the release now current.")
        if (seen := deploy.reported(first)) != first:
            raise CheckFailed(f"Seen: after the rollback, the current release answered {seen!r} at /api/release.\n"
                              f"Expected: {first!r}: the earlier release runs again, with its own config.")
        code, output = deploy.tool("rollback")
        if code == 0 or code is None or deploy.current() != first:
            raise CheckFailed(f"Seen: `python {TOOL} rollback` from the first release {ended(code)}"
                              + (f", leaving current at {deploy.current()}" if deploy.current() != first else "")
                              + f".\nExpected: a non-zero exit with a message: there is nothing before {first}.")
    return f"rollback made {first} current again, and it runs; there is nothing to roll back to before {first}"


def _writes_into_code(names: list[str], release: str) -> str:
    """The same words whether the write succeeded (as root) or a read-only folder stopped it (as a user)."""
    shown = ", ".join(names[:1]) + (" and more" if len(names) > 1 else "")
    return (f"Seen: the app writes {shown} into its code folder (release {release}).\nExpected: nothing written "
            "next to the code: log, pid and database files belong in the working directory or a path from config.")


@check("build_release_run.read_only_code", factor=5, title="The app runs from a read-only code folder",
       hint="Make every file and folder of a release read-only (chmod a-w), and have the app write its log and "
            "pid files to the working directory (or a path from config), never next to its own code (`__file__`).",
       timeout=90)
def read_only_code(ctx: CheckContext) -> str:
    """A new release's files and folders are read-only, and the app served from it (with a working directory
    of its own, as `release.py run` does) creates and follows a link and reports its release id without
    writing anything into its code folder."""
    with DeployRoot(ctx) as deploy:
        release = deploy.release(deploy.build(), "config")
        folder = deploy.folder(release)
        writable = _writable(folder)
        if writable:
            raise CheckFailed(f"Seen: {writable[0]} is writable ({len(writable)} writable file(s) and folder(s) "
                              f"in release {release}).\nExpected: every file and folder of a release made "
                              "read-only (chmod a-w) by `release`.")
        before = _snapshot(folder)
        try:
            app = deploy.serve(release)
        except CheckFailed as exc:
            denied = re.search(rf"Permission denied: '<root>/releases/{release}/([^']+)'", str(exc))
            if denied:  # as a user the read-only folder stops the write; as root it succeeds: one message for both
                raise CheckFailed(_writes_into_code([denied[1]], release)) from None
            raise CheckFailed(f"{str(exc).split(chr(10) + 'Expected:')[0]}\nExpected: the app starts from a "
                              "read-only release, writing its log and pid files to the working directory or a "
                              "path from config, never next to its code.") from None
        with TestPage() as page:
            created = app.post("/api/links", json={"url": page.url("/read-only")})
            code = created.json().get("code") if created.status_code == 201 else None
            followed = app.get(f"/{code}").status_code if code else None
        answer = app.get("/api/release")
        app.stop()
        after = _snapshot(folder)
        written = sorted(name for name in after.keys() | before.keys() if after.get(name) != before.get(name))
        if written:
            raise CheckFailed(_writes_into_code(written, release))
        if code is None or followed != 302:
            raise CheckFailed(f"Seen: served from release {release}, POST /api/links answered {created.status_code}"
                              + (f" and the new link answered {followed}" if code else "")
                              + f".{app.last_words()}\nExpected: 201, then 302 to the target.")
        if (seen := release_of(answer, release)) != release:
            raise CheckFailed(f"Seen: served from release {release}, GET /api/release answered {seen!r}.\n"
                              f"Expected: {release!r}, the SHORTLY_RELEASE of its release.env.")
    return f"release {release} is read-only, and the app serves from it without writing into it"


def _script_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a shell script that are not comments, numbered."""
    found = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        code = re.sub(r"(^|\s)#.*$", "", line).strip()
        if code:
            found.append((number, code))
    return found


@check("build_release_run.deploy_script", factor=5, title="deploy.sh builds, releases and runs",
       hint=f"Let {DEPLOY_SCRIPT} run `{TOOL} build`, then `{TOOL} release BUILD --config .env`, then `{TOOL} run`: "
            "no `sed -i` on the box and no app started from the checkout; a change arrives as a new build or a new "
            "config, so as a new release.")
def deploy_script(ctx: CheckContext) -> str:
    """deploy.sh calls release.py's build, release and run, edits no file in place and does not start the app
    from the checkout."""
    path = ctx.path / DEPLOY_SCRIPT
    expected = (f"Expected: {DEPLOY_SCRIPT} builds (`{TOOL} build`), releases (`{TOOL} release`) and runs "
                f"(`{TOOL} run`) the release; nothing on the box is edited in place.")
    if not path.is_file():
        raise CheckFailed(f"Seen: no {DEPLOY_SCRIPT} in the app's folder.\n{expected}")
    lines = _script_lines(path)
    for number, code in lines:
        if EDITS_IN_PLACE.search(code):
            raise CheckFailed(f"Seen: {DEPLOY_SCRIPT}:{number} edits a file in place: `{code[:80]}`.\n{expected}")
        if RUNS_THE_CHECKOUT.search(code):
            raise CheckFailed(f"Seen: {DEPLOY_SCRIPT}:{number} starts the app from the checkout: `{code[:80]}`.\n"
                              f"{expected}")
    missing = [stage for stage, pattern in STAGES.items() if not any(pattern.search(code) for _, code in lines)]
    if missing:
        raise CheckFailed(f"Seen: {DEPLOY_SCRIPT} never runs " + " or ".join(f"`{TOOL} {m}`" for m in missing) +
                          f".\n{expected}")
    return f"{DEPLOY_SCRIPT} builds, releases and runs with {TOOL}, and edits nothing in place"
