"""Factor V, build, release, run: a build plus a config makes a uniquely named, immutable release, and only
releases run.

The checks drive the learner's release.py through the runner (`python release.py …` in a copy of the
folder, or in a container) against a deploy root in the shared folder, read what it made, change releases
the way a hurried operator would (every kind of file, in every folder, without changing sizes or times; old
releases deleted), and serve releases with `release.py run` itself. The deploy script is read as the commands
it runs (`checks.shell`); the app's code is read for writes next to itself on paths a run may not take
(`checks.code_writes`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ..http import Client
from ..process import free_port
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import create_link, follow, shorten
from .attached import side_by_side
from .code_writes import app_modules, writes_next_to_code
from .deploy_root import TOKEN, TOOL, DeployRoot, content, release_of, writable_parts
from .runbook import runbook_truth
from .shell import Command, commands, python_run
from .source import app_module_file
from .text import ended, listing, tail

DEPLOY_SCRIPT = "deploy.sh"
RELEASES = 10  # up to v10, and one more after a deletion: ids compared as text go wrong from v10 on
RELEASE_TIMEOUT = 15.0  # a release takes well under a second; a tool looping on a taken id is stopped then
RUN_REFUSAL_TIMEOUT = 8.0  # `run` of a changed release must refuse at once; one that serves is stopped then
ADMIN = "factorlab-release-admin"
UNKNOWN = "nOSuCh"  # a short code nobody made
CHECKOUT_FILES = re.compile(r"(^|/)(\.env[\w.]*|[\w.-]+\.(py|txt|cfg|ini|toml|json|ya?ml|md|sh))$")
# Programs and modules that serve a WSGI app: run from the checkout, they serve its code.
SERVERS = {"gunicorn", "waitress-serve", "waitress", "uwsgi", "hypercorn", "uvicorn", "flask", "werkzeug"}
GIT_VALUE_OPTIONS = {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path"}
TOOL_MODULE = TOOL.removesuffix(".py")


# -- the releases ----------------------------------------------------------------------------------------

TAMPERING = [  # (what an operator does to a release, how, the file it concerns)
    ("edited the code", "same-size", "{module}.py"),
    ("edited the config", "same-size", "release.env"),
    ("added a file", "add", "hotfix.py"),
    ("added a package in a new folder, which Python imports instead of the code", "add", "{module}/__init__.py"),
    ("deleted a file", "delete", None),
]
NESTED_EDIT = "edited a file in a subfolder"  # tried when a release has subfolders


def _release_files(folder: Path) -> list[str]:
    """A release's own files, by relative name: neither its config, its manifest nor hidden files."""
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    return [n for n in names if n != "release.env" and "manifest" not in n.lower()
            and not any(part.startswith(".") for part in n.split("/"))]


def _deleted_file(folder: Path) -> str:
    """A file of the release to delete: neither the code the others change, its config, nor its manifest."""
    names = _release_files(folder)
    return next((n for n in names if n != "shortly.py"), names[0] if names else "shortly.py")


def _nested_file(folder: Path) -> str | None:
    """A file with content in a subfolder of the release, to edit there, or None when it has none."""
    return next((n for n in _release_files(folder) if "/" in n and (folder / n).stat().st_size > 0), None)


def _named(name: str, output: str) -> bool:
    """Does the output name the file (or, for a file in a new folder, that folder)?"""
    return Path(name).name in output or ("/" in name and name.split("/")[0] + "/" in output)


@check("build_release_run.immutable", factor=5, title="A changed release is caught and not run",
       hint="When you make a release, record the sha256 of each of its files, in every subfolder, its release.env "
            "included. `verify` compares the release with that record and names every changed, added or missing "
            "file; `run` verifies first and refuses. chmod alone is not enough: root ignores it, and sizes and "
            "times can stay the same.",
       timeout=90)
def immutable(ctx: CheckContext) -> str:
    """Untouched releases verify (exit 0). Then, release by release, an operator edits the code, edits the
    config (release.env), adds a file, adds a package in a new folder (it shadows the app's module), deletes
    a file, and edits a file in a subfolder when releases have one, as root would and keeping sizes and times:
    `release.py verify` exits non-zero naming the file each time, and `release.py run` refuses every one of
    these changed releases."""
    module = Path(app_module_file(ctx)).stem
    with DeployRoot(ctx) as deploy:
        build = deploy.build()
        first = deploy.release(build, "config0", SHORTLY_ADMIN_TOKEN="admin-0")
        nested = _nested_file(deploy.folder(first))
        tampering = [(what, action, name and name.format(module=module)) for what, action, name in TAMPERING]
        tampering += [(NESTED_EDIT, "same-size", nested)] if nested else []
        releases = [first] + [deploy.release(build, f"config{n}", SHORTLY_ADMIN_TOKEN=f"admin-{n}")
                              for n in range(1, len(tampering))]
        for release in dict.fromkeys([releases[0], releases[-1]]):  # the first and the last: verify is no constant
            code, output = deploy.tool("verify", release)
            if code != 0:
                raise CheckFailed(f"Seen: `python {TOOL} verify {release}` on an untouched release {ended(code)}"
                                  f"{tail(output)}\nExpected: exit 0: the release is exactly as it was made.")
        changed = [(what, action, name or _deleted_file(deploy.folder(release)), release)
                   for (what, action, name), release in zip(tampering, releases)]
        deploy.owner(*[(action, deploy.folder(release) / name) for _, action, name, release in changed])
        for what, _, name, release in changed:
            code, output = deploy.tool("verify", release)
            if code == 0 or code is None:
                raise CheckFailed(f"Seen: an operator {what} ({name}) inside release {release}, and `python {TOOL} "
                                  f"verify {release}` {'still exited 0' if code == 0 else ended(code)}.\nExpected: a "
                                  f"non-zero exit naming {name}: compare every file, in every folder, config "
                                  "included, with the checksums recorded when the release was made (root ignores "
                                  "read-only files).")
            if not _named(name, output):
                raise CheckFailed(f"Seen: an operator {what} ({name}) inside release {release}; `python {TOOL} verify "
                                  f"{release}` exited with code {code} but did not name it{tail(output)}\nExpected: "
                                  "it names every file that differs, so the operator knows what changed.")
        for what, _, name, release in changed:
            code, output = deploy.tool("run", release, env={"PORT": str(free_port())}, timeout=RUN_REFUSAL_TIMEOUT)
            if code is None or code == 0:
                raise CheckFailed(f"Seen: an operator {what} ({name}) inside release {release}, and `python {TOOL} "
                                  f"run {release}` " +
                                  (f"started it (still running after {RUN_REFUSAL_TIMEOUT:g} s)"
                                   if code is None else "exited with code 0") +
                                  ".\nExpected: run verifies the release first and refuses one that changed in any "
                                  "way (code, config, a file added, deleted or edited), with a non-zero exit.")
    kinds = "code, config, a file added at the top or in a new folder, a file deleted" + \
        (", a file in a subfolder" if nested else "")
    return f"every kind of change to a release ({kinds}) is named by `verify`, and `run` refuses each changed release"


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


def _some(ids: list[str]) -> str:
    return " / ".join(ids if len(ids) <= 5 else [*ids[:2], "…", *ids[-2:]])


def _release_number(deploy: DeployRoot, build: str, n: int, made: list[str]) -> str:
    """The n-th release of a build, each with a config of its own; CheckFailed when it fails or reuses an id."""
    try:
        release = deploy.release(build, f"config{n}", timeout=RELEASE_TIMEOUT, SHORTLY_ADMIN_TOKEN=f"release-check-{n}")
    except CheckFailed as exc:
        after = f"after {_some(made)}" if made else "the first"
        seen = str(exc).replace("Seen: ", f"Seen: making release number {n} ({after}), ", 1)
        if "did not finish in time" in seen:  # e.g. a loop that keeps trying an id that is taken
            seen = seen.split("\nExpected:")[0] + ("\nExpected: the new release at once, with an id never used "
                                                   "before: one more than the highest (compared as numbers: v10 "
                                                   "after v9), or a timestamp.")
        raise CheckFailed(seen) from None
    if release in made:
        raise CheckFailed(f"Seen: release number {n} got the id {release}, which release number "
                          f"{made.index(release) + 1} had already.\nExpected: a new id for each release, never one "
                          "used before.")
    return release


def _expect_listed(deploy: DeployRoot, releases: list[str], before: str) -> None:
    """`list` prints these releases in this order, the last marked current; CheckFailed when it does not."""
    code, output = deploy.tool("list")
    order, current = _listed(output, releases)
    if code != 0 or order != releases or current != releases[-1]:
        raise CheckFailed(f"Seen: {before}`python {TOOL} list` {ended(code)}" + (tail(output, 12) or ", printing nothing")
                          + "\nExpected: one id per line, oldest first (compared as numbers or times, not as text), "
                          f"the current one marked: {_some([*releases[:-1], f'{releases[-1]} (current)'])}.")


@check("build_release_run.ordered_ids", factor=5, title="Releases get unique ids, in order",
       hint="Name each release with an id never used before: v1, v2, … (one more than the highest, compared as "
            "numbers: v10 comes after v9) or a timestamp; deleting an old release must not free its id. Write the "
            "config and SHORTLY_RELEASE=<id> into each release's release.env, and let `list` print the ids oldest "
            "first, marking the current one with ` (current)`.", timeout=90)
def ordered_ids(ctx: CheckContext) -> str:
    """A build's id comes from its content: the same code built twice gives one id, changed code another. Ten
    releases of one build, each with its own config, get ten different ids (up to v10, where ids compared as
    text go wrong); each release.env holds its config and its id. An operator deletes the oldest release to free
    space, and the next release still gets an id never used before. `list` prints the ids oldest first, the
    last marked current."""
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
        made: list[str] = []
        for n in range(1, RELEASES + 1):
            made.append(_release_number(deploy, build, n, made))
        for n, release in enumerate(made, 1):
            values = deploy.env_of(release)
            if values.get("SHORTLY_RELEASE") != release or values.get("SHORTLY_ADMIN_TOKEN") != f"release-check-{n}":
                raise CheckFailed(f"Seen: releases/{release}/release.env holds SHORTLY_RELEASE="
                                  f"{values.get('SHORTLY_RELEASE')!r} and " +
                                  ("not" if "SHORTLY_ADMIN_TOKEN" not in values else "another value of") +
                                  f" the SHORTLY_ADMIN_TOKEN of its config file.\nExpected: the config it was made "
                                  f"with, plus SHORTLY_RELEASE={release}: a release is a build plus a config.")
        _expect_listed(deploy, made, "")
        deploy.owner(("remove", deploy.folder(made[0])))
        deleted = f"an operator deleted the oldest release, {made[0]}, to free space; then "
        try:
            after = _release_number(deploy, build, RELEASES + 1, made)
        except CheckFailed as exc:
            raise CheckFailed(str(exc).replace("Seen: ", f"Seen: {deleted}", 1)) from None
        _expect_listed(deploy, [*made[1:], after], deleted)
    return (f"{RELEASES} releases of one build got {_some(made)}; after the oldest was deleted, the next got "
            f"{after}; `list` shows them oldest first, the last current")


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
    that copies it), reporting the id rollback printed. With a single release (in a deploy root of its own,
    side by side), rollback exits non-zero and changes nothing."""
    with DeployRoot(ctx) as deploy, DeployRoot(ctx, "single") as single, TestPage() as page:
        first, _ = side_by_side(lambda part: part(), [lambda: _rolls_back(ctx, deploy, page),
                                                      lambda: _single_stays(single)])
    return f"after a rollback, `{TOOL} run` serves {first}'s config and code again; a single release cannot roll back"


def _rolls_back(ctx: CheckContext, deploy: DeployRoot, page: TestPage) -> str:
    """Release twice, serve, roll back, serve again: the first release's id, or CheckFailed."""
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
    return first


def _single_stays(single: DeployRoot) -> None:
    """With one release, rollback fails and leaves current alone; CheckFailed when it does not."""
    only = single.release(single.build(), "only")
    code, output = single.tool("rollback")
    if code == 0 or code is None or single.current() != only:
        raise CheckFailed(f"Seen: `python {TOOL} rollback` with a single release, {only}, {ended(code)}"
                          + (f", leaving current at {single.current()}" if single.current() != only else "")
                          + f".\nExpected: a non-zero exit with a message: there is nothing before {only}.")


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
    every route (links through the API and the form, a redirect, stats, the purge, the release id, a code that
    does not exist) and then stopped, has written nothing into its release. Read as code, no call writes a file
    at a path made from the code's own location (`__file__`, app.root_path), on paths a run does not take
    (a `--daemon` start, say)."""
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
            for path in (f"/{UNKNOWN}", f"/stats/{UNKNOWN}", f"/api/links/{UNKNOWN}"):
                client.get(app, path)  # the paths for a code nobody made
            answer = client.get(app, "/api/release")
        app.stop()
        written = sorted(name for name, value in content(folder).items() if before.get(name) != value) + \
            sorted(name for name in before if name not in content(folder))
        if written:
            raise CheckFailed(_writes_into_code(written, release))
        if (seen := release_of(answer, release)) != release:
            raise CheckFailed(f"Seen: served from release {release}, GET /api/release answered {seen!r}.\n"
                              f"Expected: {release!r}, the SHORTLY_RELEASE of its release.env.")
    found = writes_next_to_code(ctx.path, Path(app_module_file(ctx)).stem)
    if found:
        first = found[0]
        raise CheckFailed(f"Seen: {first.file}:{first.line} writes a file at a path made from the code's own location "
                          f"(`__file__`): `{first.code}`" + (f" ({len(found) - 1} more such call(s))" if found[1:] else "")
                          + ". In a release, that folder is read-only.\nExpected: nothing written next to the code, "
                          "on any path the code may take: log, pid and database files belong in the working "
                          "directory or a path from config.")
    return (f"release {release} is read-only; the app served from it on every route writes nothing into it, and "
            "no code writes next to `__file__`")


# -- the deploy script -------------------------------------------------------------------------------------

def _tool_args(command: Command) -> list[str] | None:
    """The arguments release.py gets from a command (`python release.py …`, `./release.py …`, `python -m release
    …`, behind sudo or uv run too), or None when the command does not run it."""
    words = command.words
    for i, word in enumerate(words):
        if word.rsplit("/", 1)[-1] == TOOL:
            return words[i + 1:]
        if word == "-m" and words[i + 1:i + 2] == [TOOL_MODULE] or word == f"-m{TOOL_MODULE}":
            return words[i + (2 if word == "-m" else 1):]
    return None


def _stage(command: Command, stage: str) -> bool:
    args = _tool_args(command)
    return args is not None and stage in args


def _git_change(words: list[str]) -> str | None:
    """What a git command changes in the checkout besides moving it to a commit of the repository, or None."""
    i = 1
    while i < len(words) and words[i].startswith("-"):
        i += 2 if words[i] in GIT_VALUE_OPTIONS else 1
    sub, rest = (words[i], words[i + 1:]) if i < len(words) else ("", [])
    if sub in ("apply", "am"):
        return f"patches the code on the box (`git {sub}`)"
    if sub in ("cherry-pick", "revert", "commit"):
        return f"makes a commit on the box that the repository does not have (`git {sub}`)"
    if sub == "stash" and rest[:1] in (["pop"], ["apply"], ["branch"]):
        return f"puts changes made on the box back into the code (`git stash {rest[0]}`)"
    if sub in ("checkout", "restore"):  # a deploy moves the whole checkout to a commit, never single files
        split = rest.index("--") if "--" in rest else len(rest)
        plain, skip = [], False
        for word in rest[:split]:
            if not skip and not word.startswith("-"):
                plain.append(word)
            skip = word in ("-b", "-B", "--orphan", "--conflict", "-s", "--source")
        paths = rest[split + 1:] + (plain if sub == "restore" else plain[1:])
        if paths:
            return f"changes single files of the checkout (`git {sub} … {paths[0]}`)"
    return None


def _edits_in_place(command: Command, folder: Path) -> str | None:
    """What a command changes in the checkout in place, or None."""
    words, program = command.words, command.program
    if program == "sed" and any(re.match(r"^(-[a-zA-Z]*i|--in-place)", w) for w in words[1:]) or \
            program == "perl" and any(re.match(r"^-\w*i", w) for w in words[1:]) or \
            program in ("awk", "gawk") and "inplace" in words or program in ("ed", "ex", "patch"):
        return "edits a file in place"
    if program == "git" and (change := _git_change(words)):
        return change
    in_checkout = [t for t in [*command.writes, *(words[-1:] if program in ("cp", "mv", "install", "tee") else [])]
                   if t and not t.startswith(("/", "$", "~")) and not t.startswith(("var/", "logs/", "log/"))
                   and (CHECKOUT_FILES.search(t) or (folder / t).is_file())]
    return f"writes into {in_checkout[0]} of the checkout" if in_checkout else None


def _module_named(word: str) -> str:
    """The top-level module a word names: shortly:app, shortly.wsgi, --app=shortly, shortly.py → shortly."""
    word = word.split("=", 1)[1] if word.startswith("--") and "=" in word else word
    word = word.rsplit("/", 1)[-1].split(":", 1)[0]
    return word.removesuffix(".py").split(".", 1)[0]


def _imports_of(code: str) -> set[str]:
    """The top-level modules a `python -c` text imports or runs (runpy, __import__), by name."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set(re.findall(r"(?:import|from)\s+(\w+)", code))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(_module_named(node.value))  # runpy.run_path("shortly.py"), __import__("shortly")
    return found


def _runs_checkout(command: Command, app: set[str]) -> bool:
    """Does the command start the app from the checkout: its module (or one importing it) run by Python or
    imported by -c code, or served by a WSGI server? app: the app's module names."""
    words, program = command.words, command.program
    if _tool_args(command) is not None:
        return False
    run = python_run(words)
    if run is not None:
        if run.kind == "code":
            return bool(_imports_of(run.target) & app)
        return _module_named(run.target) in app or run.kind == "module" and _module_named(run.target) in SERVERS
    return program in SERVERS and ("run" in words or any(_module_named(w) in app for w in words[1:]))


@check("build_release_run.deploy_script", factor=5, title="deploy.sh builds, releases and runs",
       hint=f"Let {DEPLOY_SCRIPT} run `{TOOL} build`, then `{TOOL} release BUILD --config .env`, then `{TOOL} run`: "
            "no `sed -i` or other edit on the box (nor edits made there kept with `git stash pop`), and no app "
            "started from the checkout; a change arrives as a new build or a new config, so as a new release.")
def deploy_script(ctx: CheckContext) -> str:
    """deploy.sh, read as the commands it runs (variables, functions and $(…) followed), calls release.py's build,
    release and run (`python release.py`, `./release.py` or `python -m release`), changes no file of the checkout
    in place (sed -i, perl -i, a redirection, cp onto it, a patch, a commit made on the box, edits put back with
    git stash pop, single files from another revision) and does not start the app from the checkout (its module
    run by path, with -m or imported by -c, or served by a WSGI server)."""
    path = ctx.path / DEPLOY_SCRIPT
    expected = (f"Expected: {DEPLOY_SCRIPT} builds (`{TOOL} build`), releases (`{TOOL} release`) and runs "
                f"(`{TOOL} run`) the release; nothing on the box is edited in place.")
    if not path.is_file():
        raise CheckFailed(f"Seen: no {DEPLOY_SCRIPT} in the app's folder.\n{expected}")
    found = commands(path.read_text(errors="replace"))
    app = app_modules(ctx.path, Path(app_module_file(ctx)).stem)
    for command in found:
        edit = _edits_in_place(command, ctx.path)
        if edit:
            raise CheckFailed(f"Seen: {DEPLOY_SCRIPT}:{command.line} {edit}: `{command.text[:80]}`.\n{expected}")
        if _runs_checkout(command, app):
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
    """OPS.md documents verify and rollback; it no longer puts the log (or a pid file) next to the release's code,
    nor tells the operator to make a release writable, edit it or rewrite its MANIFEST (a warning against it is
    fine); OPS.md and .env.example name every variable the app reads."""
    return runbook_truth(ctx, "05_build_release_run")
