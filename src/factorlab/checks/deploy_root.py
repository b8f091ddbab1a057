"""A deploy root for factor V's checks, and the learner's release.py to act on it.

The runner runs the tool (`python release.py …` in a copy of the learner's folder, or in a container as
another user) against a root in its shared folder; the check reads what it made, changes it the way a
hurried operator would (as the user who made it, so that a container's files can be changed too), and
serves releases with `release.py run`, the way the app runs in production.
"""

from __future__ import annotations

import re
from pathlib import Path

from .. import files
from ..runners import AppFailed, ServingApp
from . import CheckContext, CheckFailed
from .app import REQUIRED_APP_ENV
from .attached import set_up
from .config import read_env_file
from .text import ended, last_line, tail

TOOL = "release.py"
# A release id as a folder name: v7, 2026-12-02T10.15.00, 20261202-3; never a path.
RELEASE_ID = re.compile(r"[A-Za-z0-9][\w.:+-]*")
TOKEN = "SHORTLY_PREVIEW_TOKEN"
# Run by the runner's python, as the user who made the deploy root (a container's, or this one): changes a
# release the way an operator on the box would, and gives write permission back for the clean-up.
AS_OWNER = r"""import os, shutil, stat, sys
def writable(p):
    os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) | stat.S_IWUSR)
def all_writable(path):
    for folder, _, names in os.walk(path):
        for p in [folder] + [os.path.join(folder, n) for n in names]:
            if not os.path.islink(p):
                os.chmod(p, 0o777 if p == folder else 0o666)
def act(action, path):
    if action == "same-size":  # change one byte, keep the size and the times: only the content tells
        times = os.stat(path)
        writable(os.path.dirname(path)); writable(path)
        data = bytearray(open(path, "rb").read())
        # in config, a value; in code, a letter of a comment or docstring, so that the code still runs
        at = data.rfind(b"=") + 1 if path.endswith(".env") else max(data.find(b"# ") + 2, data.find(b'"' * 3) + 3, 1)
        at = min(at, len(data) - 1)
        data[at] = ord("X") if data[at] != ord("X") else ord("Y")
        open(path, "wb").write(bytes(data))
        os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))
    elif action == "add":  # in a new folder too
        top = os.path.dirname(path)
        while not os.path.isdir(top):
            top = os.path.dirname(top)
        writable(top)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").write("# a hot-fix, added on the box\n")
    elif action == "delete":
        writable(os.path.dirname(path))
        os.remove(path)
    elif action == "remove":  # a whole release, as an operator frees space
        all_writable(path)
        writable(os.path.dirname(path))
        shutil.rmtree(path)
    elif action == "writable":
        all_writable(path)
for action, path in zip(sys.argv[1::2], sys.argv[2::2]):
    act(action, path)
"""


class DeployRoot:
    """A deploy root in the shared folder, and the learner's release.py to act on it."""

    def __init__(self, ctx: CheckContext, name: str = "deploy"):
        if not (ctx.path / TOOL).is_file():
            raise CheckFailed(f"Seen: no {TOOL} in the app's folder.\nExpected: a command-line tool, {TOOL}, that "
                              "builds, releases, lists, verifies, rolls back and runs the app.")
        self.ctx = ctx
        self.shared = ctx.runner.shared_dir()
        self.root = self.shared / name
        self.database = f"sqlite:///{self.shared / 'links.db'}"

    def __enter__(self) -> "DeployRoot":
        return self

    def __exit__(self, *exc) -> None:
        """Give write permission back (releases are read-only), so that the runner can delete the folder."""
        try:
            self.owner(("writable", self.root))
        except Exception:
            pass  # the runner deletes what it can

    def shown(self, text: str) -> str:
        return text.replace(str(self.root), "<root>").replace(str(self.shared), "<shared>")

    def owner(self, *changes: tuple[str, Path]) -> None:
        """Change files of the deploy root as the user who made it (see AS_OWNER): (action, path) pairs, in one
        command."""
        done = self.ctx.runner.run_command(["-c", AS_OWNER, *(str(w) for pair in changes for w in pair)], {})
        if done.code != 0:
            names = ", ".join(f"{a} {p.name}" for a, p in changes)
            raise RuntimeError(f"could not {names} in the deploy root: {self.shown(done.output)}")

    def tool(self, *args: str, env: dict[str, str] | None = None, timeout: float | None = None,
             workspace: Path | None = None) -> tuple[int | None, str]:
        """`python release.py --root ROOT ARGS` (SHORTLY_DEPLOY_ROOT names the root too): (exit code, output)."""
        env = {"SHORTLY_DEPLOY_ROOT": str(self.root), **(env or {})}
        extra = {"timeout": timeout} if timeout else {}
        done = self.ctx.runner.run_command([TOOL, "--root", str(self.root), *args], env, workspace=workspace, **extra)
        return done.code, self.shown(done.output)

    def expect(self, *args: str, shown: str, what: str, workspace: Path | None = None,
               timeout: float | None = None) -> str:
        """Run the tool expecting exit 0; return the last line it printed."""
        code, output = self.tool(*args, workspace=workspace, timeout=timeout)
        if code != 0:
            raise CheckFailed(f"Seen: `python {TOOL} {shown}` {ended(code)}{tail(output)}\nExpected: exit 0, {what}.")
        return last_line(output)

    def build(self, workspace: Path | None = None) -> str:
        build = self.expect("build", shown="build", what="printing the build id as its last line", workspace=workspace)
        if not build or not RELEASE_ID.fullmatch(build) or not (self.root / "builds" / build / "shortly.py").is_file():
            raise CheckFailed(f"Seen: `python {TOOL} build` printed {build!r} last, but there is no "
                              f"builds/{build}/shortly.py in the deploy root.\nExpected: the build id as the last "
                              "line, and the app's files copied into builds/<build id>/.")
        return build

    def config(self, name: str, **config: str) -> Path:
        """A config file of the required config, the deploy's database and config."""
        path = self.shared / f"{name}.env"
        values = {**REQUIRED_APP_ENV, "DATABASE_URL": self.database, **config}
        path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
        return path

    def release(self, build: str, name: str, timeout: float | None = None, **config: str) -> str:
        """Release build with a config file of REQUIRED_APP_ENV, DATABASE_URL and config; return its id."""
        path = self.config(name, **config)
        release = self.expect("release", build, "--config", str(path), shown=f"release {build} --config {name}.env",
                              what="printing the new release's id as its last line", timeout=timeout)
        if not RELEASE_ID.fullmatch(release) or not (self.folder(release) / "release.env").is_file():
            raise CheckFailed(f"Seen: `python {TOOL} release` printed {release!r} last"
                              + ("" if RELEASE_ID.fullmatch(release) else ", which is not a release id like v1")
                              + f", and there is no releases/{release}/release.env in the deploy root.\n"
                              "Expected: the id (v1, v2, … or a timestamp) as the last line, and releases/<id>/ "
                              "holding the build's files and release.env, the config plus SHORTLY_RELEASE=<id>.")
        return release

    def folder(self, release: str) -> Path:
        return self.root / "releases" / release

    def env_of(self, release: str) -> dict[str, str]:
        path = self.folder(release) / "release.env"
        return read_env_file(path) if path.is_file() else {}

    def current(self) -> str | None:
        """The release `current` points at, or None when it is not a symlink."""
        link = self.root / "current"
        return link.resolve().name if link.is_symlink() else None

    def expect_current(self, release: str, when: str) -> None:
        current = self.current()
        if current != release:
            seen = "no symlink named current" if current is None else f"current pointing at {current}"
            raise CheckFailed(f"Seen: {when}, {seen} in the deploy root.\n"
                              f"Expected: current, a symlink to releases/{release}.")

    def run(self, release: str | None = None) -> ServingApp:
        """Serve a release (default: current) as production does: `python release.py run [ID]` on $PORT, after
        the state's documented setup of the release's database."""
        chosen = release or self.current() or ""
        set_up(self.ctx, {**REQUIRED_APP_ENV, "DATABASE_URL": self.database, **self.env_of(chosen)})
        args = [TOOL, "--root", str(self.root), "run", *([release] if release else [])]
        try:
            return self.ctx.runner.start({"SHORTLY_DEPLOY_ROOT": str(self.root)}, command=args)
        except AppFailed as exc:
            raise CheckFailed(f"{self.shown(str(exc))}\nExpected: `python {TOOL} run {release or ''}`".rstrip()
                              + " serves the release on $PORT.") from None


def release_of(answer, release: str) -> str:
    """What GET /api/release answered, or CheckFailed when it is not the contract's JSON."""
    try:
        body = answer.json() if answer.status_code == 200 else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("release"), str):
        raise CheckFailed(f"Seen: serving release {release}, GET /api/release answered {answer.status_code} "
                          f"{answer.text[:80]!r}.\nExpected: 200 and JSON {{\"release\": \"{release}\"}}, the "
                          "SHORTLY_RELEASE of its release.env.")
    return body["release"]


def writable_parts(folder: Path) -> list[str]:
    """The files and folders of a release that anyone may write to."""
    found = [p for p in [folder, *sorted(folder.rglob("*"))] if not p.is_symlink() and p.stat().st_mode & 0o222]
    return [p.relative_to(folder.parent.parent).as_posix() for p in found]


def content(folder: Path) -> dict[str, object]:
    """Every file and folder under a release, with the sha256 of each file."""
    return files.snapshot(folder, content=True, bytecode=True)
