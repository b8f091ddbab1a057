"""Factor V, build, release, run: a build plus a config makes a uniquely named, immutable release, and only
releases run.

The checks drive the learner's release.py through the runner (`python release.py …` in a copy of the
folder, or in a container) against a deploy root in the shared folder, read what it made, change releases
the way a hurried operator would (every kind of file, without changing sizes or times), and serve releases
with `release.py run` itself. The deploy script is read as the commands it runs (`checks.shell`).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..http import Client
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import create_link, follow, shorten
from .deploy_root import TOKEN, TOOL, DeployRoot, content, release_of, writable_parts
from .runbook import runbook_truth
from .shell import Command, commands
from .text import ended, listing, tail

DEPLOY_SCRIPT = "deploy.sh"
RUN_REFUSAL_TIMEOUT = 8.0  # `run` of a changed release must refuse at once; one that serves is stopped then
ADMIN = "factorlab-release-admin"
CHECKOUT_FILES = re.compile(r"(^|/)(\.env[\w.]*|[\w.-]+\.(py|txt|cfg|ini|toml|json|ya?ml|md|sh))$")
SERVERS = {"gunicorn", "waitress-serve", "uwsgi", "hypercorn", "uvicorn", "flask"}


# -- the releases ----------------------------------------------------------------------------------------

TAMPERING = [  # (what an operator does to a release, how, the file it concerns)
    ("edited the code", "same-size", "shortly.py"),
    ("edited the config", "same-size", "release.env"),
    ("added a file", "add", "hotfix.py"),
    ("deleted a file", "delete", None),
]


def _deleted_file(folder: Path) -> str:
    """A file of the release to delete: neither the code the others change, its config, nor its manifest."""
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    keep = {"shortly.py", "release.env"}
    return next((n for n in names if n not in keep and "manifest" not in n.lower() and not n.startswith(".")), names[0])


@check("build_release_run.immutable", factor=5, title="A changed release is caught and not run",
       hint="When you make a release, record the sha256 of each of its files, its release.env included. `verify` "
            "compares the release with that record and names every changed, added or missing file; `run` verifies "
            "first and refuses. chmod alone is not enough: root ignores it, and sizes and times can stay the same.",
       timeout=90)
def immutable(ctx: CheckContext) -> str:
    """Untouched releases verify (exit 0). Then, release by release, an operator edits the code, edits the
    config (release.env), adds a file, deletes a file, as root would and keeping sizes and times: `release.py
    verify` exits non-zero naming the file each time, and `release.py run` refuses a changed release."""
    with DeployRoot(ctx) as deploy:
        build = deploy.build()
        releases = [deploy.release(build, f"config{n}", SHORTLY_ADMIN_TOKEN=f"admin-{n}") for n in range(len(TAMPERING))]
        for release in releases:
            code, output = deploy.tool("verify", release)
            if code != 0:
                raise CheckFailed(f"Seen: `python {TOOL} verify {release}` on an untouched release {ended(code)}"
                                  f"{tail(output)}\nExpected: exit 0: the release is exactly as it was made.")
        for (what, action, name), release in zip(TAMPERING, releases):
            folder = deploy.folder(release)
            name = name or _deleted_file(folder)
            deploy.owner(action, folder / name)
            code, output = deploy.tool("verify", release)
            if code == 0 or code is None:
                raise CheckFailed(f"Seen: an operator {what} ({name}) inside release {release}, and `python {TOOL} "
                                  f"verify {release}` {'still exited 0' if code == 0 else ended(code)}.\nExpected: a "
                                  f"non-zero exit naming {name}: compare every file, config included, with the "
                                  "checksums recorded when the release was made (root ignores read-only files).")
            if Path(name).name not in output:
                raise CheckFailed(f"Seen: an operator {what} ({name}) inside release {release}; `python {TOOL} verify "
                                  f"{release}` exited with code {code} but did not name it{tail(output)}\nExpected: "
                                  "it names every file that differs, so the operator knows what changed.")
        code, output = deploy.tool("run", releases[0], timeout=RUN_REFUSAL_TIMEOUT)
        if code is None or code == 0:
            raise CheckFailed(f"Seen: `python {TOOL} run {releases[0]}` " +
                              (f"started the edited release (still running after {RUN_REFUSAL_TIMEOUT:g} s)"
                               if code is None else "exited with code 0") +
                              ".\nExpected: run verifies the release first and refuses one that changed, with a "
                              "non-zero exit.")
    return ("every kind of change to a release (code, config, a file added or deleted) is named by `verify`, "
            "and `run` refuses a changed release")


def _listed(output: str, releases: list[str]) -> tuple[list[str], str | None]:
    """The release ids `list` printed, in its order, and the one it marked current."""
    order, current = [], None
    for line in output.splitlines():
        words = line.replace("*", " ").replace("->", " ").split()
        found = next((w for w in words if w in releases), None)
        if found:
            order.append(found)
            if "current" in line or line.lstrip().startswith(("*", "->")):
                current = found
    return order, current


@check("build_release_run.ordered_ids", factor=5, title="Releases get unique ids, in order",
       hint="Name each release with an id never used before: v1, v2, … (one more than the highest) or a timestamp. "
            "Write the config and SHORTLY_RELEASE=<id> into each release's release.env, and let `list` print the "
            "ids oldest first, marking the current one with ` (current)`.", timeout=90)
def ordered_ids(ctx: CheckContext) -> str:
    """A build's id comes from its content: the same code built twice gives one id, changed code another. Three
    releases of one build, each with its own config, get three different ids; each release.env holds its config
    and its id; and `list` prints them oldest first, the last marked current."""
    with DeployRoot(ctx) as deploy:
        build = deploy.build()
        again = deploy.build()
        if again != build:
            raise CheckFailed(f"Seen: the same code built twice gave two build ids, {build!r} and {again!r}.\n"
                              "Expected: the id derived from the content (e.g. a sha256 of the files): the same code, "
                              "the same build.")
        changed = ctx.runner.workspace()
        (changed / "shortly.py").write_text((changed / "shortly.py").read_text() + "\n# changed since\n")
        if deploy.build(workspace=changed) == build:
            raise CheckFailed(f"Seen: changed code built into the same build id as before, {build!r}.\nExpected: a new "
                              "id for new code, or two different codes would pass for one.")
        releases = [deploy.release(build, f"config{n}", SHORTLY_ADMIN_TOKEN=f"release-check-{n}") for n in (1, 2, 3)]
        if len(set(releases)) != 3:
            raise CheckFailed(f"Seen: three releases, one after another, got the ids {', '.join(releases)}.\n"
                              "Expected: a new id for each release, never one used before.")
        for n, release in enumerate(releases, 1):
            values = deploy.env_of(release)
            if values.get("SHORTLY_RELEASE") != release or values.get("SHORTLY_ADMIN_TOKEN") != f"release-check-{n}":
                raise CheckFailed(f"Seen: releases/{release}/release.env holds SHORTLY_RELEASE="
                                  f"{values.get('SHORTLY_RELEASE')!r} and " +
                                  ("not" if "SHORTLY_ADMIN_TOKEN" not in values else "another value of") +
                                  f" the SHORTLY_ADMIN_TOKEN of its config file.\nExpected: the config it was made "
                                  f"with, plus SHORTLY_RELEASE={release}: a release is a build plus a config.")
        code, output = deploy.tool("list")
        order, current = _listed(output, releases)
        if code != 0 or order != releases or current != releases[-1]:
            raise CheckFailed(f"Seen: `python {TOOL} list` {ended(code)}" + (tail(output) or ", printing nothing") +
                              "\nExpected: one id per line, oldest first, the current one marked: " +
                              " / ".join([*releases[:2], f"{releases[2]} (current)"]) + ".")
    return f"three releases of one build got {', '.join(releases)}, listed oldest first, the last current"


def _served(deploy: DeployRoot, page: TestPage, label: str) -> tuple[str, str | None]:
    """Serve the current release with `release.py run`: (the release it says it is, the preview token it sends)."""
    current = deploy.current() or "?"
    app = deploy.run()
    said = release_of(app.get("/api/release"), current)
    create_link(app, page.url(f"/{label}"), where=f"release {current}, served by `{TOOL} run`")
    app.stop()
    sent = [h.get("Authorization") for h in page.headers_for(f"/{label}")]
    return said, (sent[-1] or "").removeprefix("Bearer ") if sent else None


@check("build_release_run.rollback", factor=5, title="Rollback runs the previous release",
       hint="`rollback` makes the release before the current one current again (point the current symlink at it, "
            "a new link renamed over the old) and prints its id; with nothing before the current release it exits "
            "1 and changes nothing. `run` serves whatever is current.", timeout=90)
def rollback(ctx: CheckContext) -> str:
    """Two releases with different configs (and code): `release.py run` serves the second; after `release.py
    rollback`, `run` serves the first one's config and code again (the first release itself, or a new release
    that copies it), reporting the id rollback printed. With a single release, rollback exits non-zero and
    changes nothing."""
    with DeployRoot(ctx) as deploy, TestPage() as page:
        first = deploy.release(deploy.build(), "before", **{TOKEN: "token-before"})
        changed = ctx.runner.workspace()
        (changed / "shortly.py").write_text((changed / "shortly.py").read_text() + "\n# the second build\n")
        second = deploy.release(deploy.build(workspace=changed), "after", **{TOKEN: "token-after"})
        deploy.expect_current(second, f"after releasing {second}")
        said, token = _served(deploy, page, "second")
        if (said, token) != (second, "token-after"):
            raise CheckFailed(f"Seen: `python {TOOL} run` of the current release, {second}, answered {said!r} at "
                              f"/api/release and sent the preview token {token!r}.\nExpected: {second!r} and its "
                              "own config's token: run serves the current release.")
        back = deploy.expect("rollback", shown="rollback", what=f"making {first} (or a copy of it) current and "
                             "printing its id last")
        deploy.expect_current(back, f"after `python {TOOL} rollback` printed {back!r}")
        if back != first and (deploy.folder(back) / "shortly.py").read_bytes() != \
                (deploy.folder(first) / "shortly.py").read_bytes():
            raise CheckFailed(f"Seen: after `python {TOOL} rollback`, the current release {back} does not hold "
                              f"{first}'s code.\nExpected: the release before the current one runs again.")
        said, token = _served(deploy, page, "rolled-back")
        if (said, token) != (back, "token-before"):
            raise CheckFailed(f"Seen: after the rollback, `python {TOOL} run` answered {said!r} at /api/release and "
                              f"sent the preview token {token!r}.\nExpected: {back!r}, with the config of {first} "
                              "('token-before'): the earlier release runs again, as it was.")
    with DeployRoot(ctx, "single") as single:
        only = single.release(single.build(), "only")
        code, output = single.tool("rollback")
        if code == 0 or code is None or single.current() != only:
            raise CheckFailed(f"Seen: `python {TOOL} rollback` with a single release, {only}, {ended(code)}"
                              + (f", leaving current at {single.current()}" if single.current() != only else "")
                              + f".\nExpected: a non-zero exit with a message: there is nothing before {only}.")
    return f"after a rollback, `{TOOL} run` serves {first}'s config and code again; a single release cannot roll back"


def _writes_into_code(names: list[str], release: str) -> str:
    """The same words whether the write succeeded (as root) or a read-only folder stopped it (as a user)."""
    return (f"Seen: the app writes {listing(names, 2)} into its code folder (release {release}).\nExpected: "
            "nothing written next to the code: log, pid and database files belong in the working directory or "
            "a path from config.")


@check("build_release_run.read_only_code", factor=5, title="The app runs from a read-only code folder",
       hint="Make every file and folder of a release read-only (chmod a-w), and have the app write its log and "
            "pid files to the working directory (or a path from config), never next to its own code (`__file__`).",
       timeout=90)
def read_only_code(ctx: CheckContext) -> str:
    """A new release's files and folders are all read-only, and the app, served by `release.py run` and used on
    every route (links through the API and the form, a redirect, stats, the purge, the release id) and then
    stopped, has written nothing into its release."""
    with DeployRoot(ctx) as deploy, TestPage() as page:
        release = deploy.release(deploy.build(), "config", SHORTLY_ADMIN_TOKEN=ADMIN)
        folder = deploy.folder(release)
        writable = writable_parts(folder)
        if writable:
            raise CheckFailed(f"Seen: {writable[0]} is writable ({len(writable)} writable file(s) and folder(s) "
                              f"in release {release}).\nExpected: every file and folder of a release made "
                              "read-only (chmod a-w) by `release`.")
        before = content(folder)
        try:
            app = deploy.run(release)
        except CheckFailed as exc:
            denied = re.search(rf"Permission denied: '<root>/releases/{re.escape(release)}/([^']+)'", str(exc))
            if denied:  # as a user the read-only folder stops the write; as root it succeeds: one message for both
                raise CheckFailed(_writes_into_code([denied[1]], release)) from None
            raise
        with Client() as client:
            code = create_link(app, page.url("/read-only"), client=client, where=f"release {release}")["code"]
            shorten(app, page.url("/read-only-form"), client=client, where=f"release {release}")
            follow(app, code, client=client, where=f"release {release}")
            client.get(app, f"/stats/{code}")
            client.get(app, f"/admin/purge?token={ADMIN}")
            answer = client.get(app, "/api/release")
        app.stop()
        written = sorted(name for name, value in content(folder).items() if before.get(name) != value) + \
            sorted(name for name in before if name not in content(folder))
        if written:
            raise CheckFailed(_writes_into_code(written, release))
        if (seen := release_of(answer, release)) != release:
            raise CheckFailed(f"Seen: served from release {release}, GET /api/release answered {seen!r}.\n"
                              f"Expected: {release!r}, the SHORTLY_RELEASE of its release.env.")
    return f"release {release} is read-only, and the app served from it on every route writes nothing into it"


# -- the deploy script -------------------------------------------------------------------------------------

def _stage(command: Command, stage: str) -> bool:
    words = command.words
    tool = next((i for i, w in enumerate(words) if w.endswith(TOOL)), None)
    return tool is not None and stage in words[tool + 1:]


def _edits_in_place(command: Command, folder: Path) -> str | None:
    """What a command changes in the checkout in place, or None."""
    words, program = command.words, command.program
    if program == "sed" and any(re.match(r"^(-[a-zA-Z]*i|--in-place)", w) for w in words[1:]) or \
            program == "perl" and any(re.match(r"^-\w*i", w) for w in words[1:]) or \
            program in ("awk", "gawk") and "inplace" in words or program in ("ed", "ex", "patch") or \
            program == "git" and words[1:2] in (["apply"], ["am"]):
        return "edits a file in place"
    in_checkout = [t for t in [*command.writes, *(words[-1:] if program in ("cp", "mv", "install", "tee") else [])]
                   if t and not t.startswith(("/", "$", "~")) and not t.startswith(("var/", "logs/", "log/"))
                   and (CHECKOUT_FILES.search(t) or (folder / t).is_file())]
    return f"writes into {in_checkout[0]} of the checkout" if in_checkout else None


def _runs_checkout(command: Command) -> bool:
    words, program = command.words, command.program
    if any(w.endswith(TOOL) for w in words):
        return False
    joined = " ".join(words)
    if re.match(r"python[0-9.]*$", program):
        return bool(re.search(r"(^|\s)(\S+/)?shortly\.py\b", joined) or
                    re.search(r"-m\s+(flask|gunicorn|waitress|uvicorn)\b", joined))
    return program in SERVERS and bool(re.search(r"\bshortly\b|\brun\b", joined))


@check("build_release_run.deploy_script", factor=5, title="deploy.sh builds, releases and runs",
       hint=f"Let {DEPLOY_SCRIPT} run `{TOOL} build`, then `{TOOL} release BUILD --config .env`, then `{TOOL} run`: "
            "no `sed -i` or other edit on the box, and no app started from the checkout; a change arrives as a new "
            "build or a new config, so as a new release.")
def deploy_script(ctx: CheckContext) -> str:
    """deploy.sh, read as the commands it runs (variables, functions and $(…) followed), calls release.py's build,
    release and run, changes no file of the checkout in place (sed -i, perl -i, a redirection, cp onto it) and
    does not start the app from the checkout."""
    path = ctx.path / DEPLOY_SCRIPT
    expected = (f"Expected: {DEPLOY_SCRIPT} builds (`{TOOL} build`), releases (`{TOOL} release`) and runs "
                f"(`{TOOL} run`) the release; nothing on the box is edited in place.")
    if not path.is_file():
        raise CheckFailed(f"Seen: no {DEPLOY_SCRIPT} in the app's folder.\n{expected}")
    found = commands(path.read_text(errors="replace"))
    for command in found:
        edit = _edits_in_place(command, ctx.path)
        if edit:
            raise CheckFailed(f"Seen: {DEPLOY_SCRIPT}:{command.line} {edit}: `{command.text[:80]}`.\n{expected}")
        if _runs_checkout(command):
            raise CheckFailed(f"Seen: {DEPLOY_SCRIPT}:{command.line} starts the app from the checkout: "
                              f"`{command.text[:80]}`.\n{expected}")
    missing = [stage for stage in ("build", "release", "run") if not any(_stage(c, stage) for c in found)]
    if missing:
        raise CheckFailed(f"Seen: {DEPLOY_SCRIPT} never runs " + " or ".join(f"`{TOOL} {m}`" for m in missing) +
                          f".\n{expected}")
    return f"{DEPLOY_SCRIPT} builds, releases and runs with {TOOL}, and edits nothing in place"


@check("build_release_run.runbook", factor=5, title="The runbook tells how releases are checked and rolled back",
       hint="Document `release.py verify` and `./deploy.sh rollback` in OPS.md, say where the log is written now "
            "(the working directory, var/), and list SHORTLY_LOG_FILE and SHORTLY_PID_FILE in .env.example and OPS.md.")
def runbook(ctx: CheckContext) -> str:
    """OPS.md documents verify and rollback and no longer puts the log next to the release's code; OPS.md and
    .env.example name every variable the app reads."""
    return runbook_truth(ctx, "05_build_release_run")
