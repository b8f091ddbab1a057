"""A deploy root for factor V's checks, and the learner's release.py to act on it.

The runner runs the tool (`python release.py …` in a copy of the learner's folder, or in a container as
another user) against a root in its shared folder; the check reads, and sometimes changes, what it made.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

from ..runners import AppFailed, ServingApp
from . import CheckContext, CheckFailed
from .app import REQUIRED_APP_ENV
from .text import ended, last_line, tail
from .config import read_env_file

TOOL = "release.py"
RELEASE_ID = re.compile(r"v(\d+)")
# Run by the runner's python when the check may not change a file itself: the deploy root was made by
# another user (a container's), who may.
AS_OWNER = """import os, stat, sys
if sys.argv[1] == "append":
    os.chmod(sys.argv[2], stat.S_IMODE(os.stat(sys.argv[2]).st_mode) | stat.S_IWUSR)
    with open(sys.argv[2], "a") as fh:
        fh.write(sys.argv[3])
else:
    for folder, _, files in os.walk(sys.argv[2]):
        for path in [folder] + [os.path.join(folder, f) for f in files]:
            if not os.path.islink(path):
                os.chmod(path, 0o777 if path == folder else 0o666)
"""


class DeployRoot:
    """A deploy root in the shared folder, and the learner's release.py to act on it."""

    def __init__(self, ctx: CheckContext):
        if not (ctx.path / TOOL).is_file():
            raise CheckFailed(f"Seen: no {TOOL} in the app's folder.\nExpected: a command-line tool, {TOOL}, that "
                              "builds, releases, lists, verifies, rolls back and runs the app.")
        self.ctx = ctx
        self.shared = ctx.runner.shared_dir()
        self.root = self.shared / "deploy"
        self.database = f"sqlite:///{self.shared / 'links.db'}"
        self.served = 0

    def __enter__(self) -> "DeployRoot":
        return self

    def __exit__(self, *exc) -> None:
        """Give write permission back (releases are read-only), so that the runner can delete the folder."""
        try:
            make_writable(self.root)
        except PermissionError:
            try:
                self.ctx.runner.run_command(["-c", AS_OWNER, "writable", str(self.root)], {})
            except Exception:
                pass  # the runner deletes what it can

    def shown(self, text: str) -> str:
        return text.replace(str(self.root), "<root>").replace(str(self.shared), "<shared>")

    def tool(self, *args: str, env: dict[str, str] | None = None,
             timeout: float | None = None) -> tuple[int | None, str]:
        """`python release.py --root ROOT ARGS` (SHORTLY_DEPLOY_ROOT names the root too): (exit code, output)."""
        env = {"SHORTLY_DEPLOY_ROOT": str(self.root), **(env or {})}
        extra = {"timeout": timeout} if timeout else {}
        done = self.ctx.runner.run_command([TOOL, "--root", str(self.root), *args], env, **extra)
        return done.code, self.shown(done.output)

    def expect(self, *args: str, shown: str, what: str) -> str:
        """Run the tool expecting exit 0; return the last line it printed."""
        code, output = self.tool(*args)
        if code != 0:
            raise CheckFailed(f"Seen: `python {TOOL} {shown}` {ended(code)}{tail(output)}\nExpected: exit 0, {what}.")
        return last_line(output)

    def build(self) -> str:
        build = self.expect("build", shown="build", what="printing the build id as its last line")
        if not build or "/" in build or not (self.root / "builds" / build / "shortly.py").is_file():
            raise CheckFailed(f"Seen: `python {TOOL} build` printed {build!r} last, but there is no "
                              f"builds/{build}/shortly.py in the deploy root.\nExpected: the build id as the last "
                              "line, and the app's files copied into builds/<build id>/.")
        return build

    def release(self, build: str, name: str, **config: str) -> str:
        """Release build with a config file of REQUIRED_APP_ENV, DATABASE_URL and config; return its id."""
        path = self.shared / f"{name}.env"
        values = {**REQUIRED_APP_ENV, "DATABASE_URL": self.database, **config}
        path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
        release = self.expect("release", build, "--config", str(path), shown=f"release {build} --config {name}.env",
                              what="printing the new release's id as its last line")
        if not RELEASE_ID.fullmatch(release) or not (self.folder(release) / "release.env").is_file():
            raise CheckFailed(f"Seen: `python {TOOL} release` printed {release!r} last"
                              + ("" if RELEASE_ID.fullmatch(release) else ", which is not a release id like v1")
                              + f", and there is no releases/{release}/release.env in the deploy root.\n"
                              "Expected: the id (v1, v2, …) as the last line, and releases/<id>/ holding the build's "
                              "files and release.env, the config plus SHORTLY_RELEASE=<id>.")
        return release

    def folder(self, release: str) -> Path:
        return self.root / "releases" / release

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

    def tamper(self, path: Path, text: str) -> None:
        """Append text to a file of a release, as a hurried operator would: read-only or not."""
        mode = stat.S_IMODE(path.stat().st_mode)
        try:
            path.chmod(mode | stat.S_IWUSR)
            with path.open("a") as fh:
                fh.write(text)
            path.chmod(mode)
        except PermissionError:  # made by a container's user: change it as that user
            done = self.ctx.runner.run_command(["-c", AS_OWNER, "append", str(path), text], {})
            if done.code != 0:
                raise RuntimeError(f"could not change {path.name} inside the release: {self.shown(done.output)}") from None

    def serve(self, release: str, *, in_place: bool = True) -> ServingApp:
        """Serve a release with its release.env as the config.

        in_place: as `release.py run` would, with the release's own folder on PYTHONPATH and a new, writable
        data folder as the working directory. Else a writable copy of the release, serving from there, for
        a check that must not depend on where the app writes its files (build_release_run.read_only_code's business).
        """
        folder = self.folder(release)
        self.served += 1
        data = self.shared / f"data{self.served}"
        env = {**REQUIRED_APP_ENV, "DATABASE_URL": self.database, **read_env_file(folder / "release.env"),
               "PYTHONDONTWRITEBYTECODE": "1"}
        if in_place:
            data.mkdir()
            if (folder / "requirements.txt").is_file():  # what the runner installs (the container's image)
                shutil.copyfile(folder / "requirements.txt", data / "requirements.txt")
            env["PYTHONPATH"] = str(folder)
        else:
            copy_files(folder, data)
        try:
            return self.ctx.runner.start(env, workspace=data)
        except AppFailed as exc:
            where = "from its own folder, with another working directory" if in_place else "from a copy of its files"
            raise CheckFailed(f"{self.shown(str(exc))}\nExpected: release {release}, served {where}, starts and "
                              "serves.") from None

    def reported(self, release: str) -> str:
        """Serve (a copy of) release and return what it answers at /api/release."""
        app = self.serve(release, in_place=False)
        answer = app.get("/api/release")
        app.stop()
        return release_of(answer, release)


def release_of(answer, release: str) -> str:
    try:
        body = answer.json() if answer.status_code == 200 else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("release"), str):
        raise CheckFailed(f"Seen: serving release {release}, GET /api/release answered {answer.status_code} "
                          f"{answer.text[:80]!r}.\nExpected: 200 and JSON {{\"release\": \"{release}\"}}, the "
                          "SHORTLY_RELEASE of its release.env.")
    return body["release"]


def copy_files(source: Path, dest: Path) -> None:
    """Copy the files under source to dest, as new files with ordinary (writable) permissions."""
    for here, _, files in os.walk(source):
        target = dest / Path(here).relative_to(source)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(Path(here) / name, target / name)


def make_writable(root: Path) -> None:
    """Give the owner write permission on everything under root again (chmod -R u+w)."""
    for folder, _, files in os.walk(root):
        for path in [folder, *(os.path.join(folder, name) for name in files)]:
            if not os.path.islink(path):
                os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | stat.S_IWUSR)
