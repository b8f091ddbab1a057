"""The local runner: the learner's app in a throwaway copy, on a free loopback port.

Every runner offers the same few calls, so that one set of checks runs anywhere:
``workspace()`` (a fresh copy of the learner's folder), ``shared_dir()`` (a folder the
check and the app both see at the same path), ``start(env, clean=...)`` (the app serving
on a loopback port), ``run_to_exit(env)`` (the app expected to stop by itself) and
``run_command(args, env)`` (a one-off command such as a setup step) and ``close()``.
The container runner lives in ``containers.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import requests

from . import cleanenv
from .process import Process, free_port, wait_for_port

LAUNCHER = Path(__file__).with_name("launch.py")
READY_TIMEOUT = 10.0
COMMAND_TIMEOUT = 30.0
# Tool folders, and what a run of the app leaves behind (its SQLite file, log and pid file): a check starts
# from the code, not from the learner's local data.
IGNORED = shutil.ignore_patterns(".git", ".venv", "venv", "__pycache__", "*.pyc", ".pytest_cache", "node_modules",
                                 "shortly.db", "shortly.log*", "shortly.pid")
# Only these variables of the caller's environment reach the app: the learner's own
# SHORTLY_* settings must not leak into a check and change its verdict.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "FACTORLAB_WHEELHOUSE")


class AppFailed(Exception):
    """The app could not be started or stopped as asked; the message says what was seen."""


class RunnerUnavailable(Exception):
    """The runner cannot work on this machine (no engine, no base image): not the learner's fault."""


def not_serving(ready_timeout: float, code: int | None, detail: str = "") -> str:
    """What to say when an app never started serving: it hung, or it exited with code."""
    if code is None:
        return (f"Seen: the app did not start serving within {ready_timeout:g} s "
                f"(it may hang at import or never bind its port){detail}")
    return f"Seen: the app exited with code {code} before serving any request{detail}"


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment an app starts with: a few safe variables, then the check's own."""
    env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
    env.update(extra or {})
    return env


class ServingApp:
    """What a check talks to: an app on a loopback port, with an HTTP session that keeps cookies."""

    port: int
    http: requests.Session

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("allow_redirects", False)
        try:
            return self.http.request(method, self.url + path, **kwargs)
        except requests.RequestException as exc:
            raise AppFailed(f"{method} {path} got no answer from the app ({type(exc).__name__}){self.last_words()}") from None

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def output(self) -> str:
        raise NotImplementedError

    def code_changes(self) -> list[str]:
        """Files (relative to the code folder) the app created, changed or deleted there while it ran."""
        raise NotImplementedError

    def kill(self) -> None:
        """SIGKILL the app at once, as a crash or an out-of-memory kill would: no clean-up code runs."""
        raise NotImplementedError

    def last_words(self, lines: int = 8) -> str:
        tail = [line[:200] for line in self.output().splitlines() if line.strip()][-lines:]
        return ("\nits last output:\n  " + "\n  ".join(tail)) if tail else ""


@dataclass
class RunningApp(ServingApp):
    """An app process serving on a loopback port."""

    process: Process
    port: int
    workspace: Path
    http: requests.Session = field(default_factory=requests.Session)
    before: dict[str, tuple[int, int]] = field(default_factory=dict)

    def output(self) -> str:
        return self.process.output.text().replace(str(self.workspace), "<app>")

    def code_changes(self) -> list[str]:
        """Files the app created, changed or deleted in its code folder since it started."""
        return _changes(self.before, snapshot(self.workspace))

    def kill(self) -> None:
        self.process.signal(signal.SIGKILL)
        self.process.wait(5)

    def stop(self) -> int | None:
        self.http.close()
        return self.process.stop()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under folder (bar Python's own bytecode caches) with its size and modification time."""
    found = {}
    for path in Path(folder).rglob("*"):
        if "__pycache__" not in path.parts and (path.is_file() or path.is_symlink()):
            stat = path.lstat()
            found[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found


def _changes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))


class Runner:
    """What every runner shares: throwaway copies of the learner's folder, shared folders, and cleanup."""

    name = ""

    def __init__(self, source: Path, app: str = "shortly:app"):
        self.source = Path(source)
        self.app = app
        self._apps: list[ServingApp] = []
        self._dirs: list[str] = []
        self.used = False  # did a check start the app, or only read the folder?

    def workspace(self) -> Path:
        """A fresh copy of the learner's folder, so a run never writes into it."""
        root = tempfile.mkdtemp(prefix="factorlab-")
        self._dirs.append(root)
        dest = Path(root) / "app"
        shutil.copytree(self.source, dest, ignore=IGNORED, symlinks=True)
        return dest

    def shared_dir(self) -> Path:
        """A folder the check and the app both see at this same path (for files the check inspects)."""
        root = tempfile.mkdtemp(prefix="factorlab-shared-")
        self._dirs.append(root)
        return Path(root)

    def close(self) -> None:
        """Stop every app this runner started and delete its folders."""
        for app in self._apps:
            app.stop()
        self._apps.clear()
        for root in self._dirs:
            shutil.rmtree(root, ignore_errors=True)
        self._dirs.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalRunner(Runner):
    """Run an exercise folder's app as subprocesses of this machine."""

    name = "local"

    def _clean_python(self, workspace: Path) -> tuple[str, dict[str, str]]:
        """A venv built from the workspace's requirements.txt alone, and a PATH with nothing else on it."""
        try:
            venv = cleanenv.build(workspace / "requirements.txt")
        except cleanenv.ManifestError as exc:
            raise AppFailed(f"Seen: {exc}\nExpected: every requirement installable from the package index.") from None
        return str(cleanenv.python_of(venv)), {"PATH": str(venv / "bin")}

    def _launch(self, env: dict[str, str] | None, python: str, workspace: Path) -> tuple[Process, int]:
        port = free_port()
        argv = [python, str(LAUNCHER), self.app, str(port)]
        return Process.start(argv, cwd=str(workspace), env=base_env(env)), port

    def start(self, env: dict[str, str] | None = None, *, python: str = sys.executable,
              workspace: Path | None = None, ready_timeout: float = READY_TIMEOUT, clean: bool = False) -> RunningApp:
        """Start the app and wait until it listens; raise AppFailed with what was seen if it does not.

        clean: run it in a venv built from requirements.txt alone, with no system tools on PATH.
        """
        self.used = True
        workspace = workspace or self.workspace()
        if clean:
            python, path = self._clean_python(workspace)
            env = {**(env or {}), **path}
        before = snapshot(workspace)
        process, port = self._launch(env, python, workspace)
        app = RunningApp(process, port, workspace, before=before)
        self._apps.append(app)
        if wait_for_port(process, port, ready_timeout):
            return app
        code = process.poll()
        app.stop()
        raise AppFailed(not_serving(ready_timeout, code, app.last_words()))

    def run_command(self, args: list[str], env: dict[str, str] | None = None, *,
                    timeout: float = COMMAND_TIMEOUT) -> tuple[int | None, str]:
        """Run a one-off command of the app (`python ARGS` in its folder, e.g. -m flask --app shortly init-db):
        (exit code, or None when it ran out of time, and its output)."""
        self.used = True
        workspace = self.workspace()
        process = Process.start([sys.executable, *args], cwd=str(workspace), env=base_env(env))
        code = process.wait(timeout)
        process.stop()
        return code, process.output.text().replace(str(workspace), "<app>")

    def run_to_exit(self, env: dict[str, str] | None = None, *, timeout: float = READY_TIMEOUT) -> tuple[int | None, str, bool]:
        """Start the app expecting it to exit by itself: (exit code or None, output, was it serving)."""
        self.used = True
        workspace = self.workspace()
        process, port = self._launch(env, sys.executable, workspace)
        serving = wait_for_port(process, port, timeout) and process.poll() is None
        code = process.poll()
        process.stop()
        return code, process.output.text().replace(str(workspace), "<app>"), serving
