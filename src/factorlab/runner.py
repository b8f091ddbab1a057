"""The local runner: the learner's app in a throwaway copy, on a free loopback port."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .process import Process, free_port, wait_for_port

LAUNCHER = Path(__file__).with_name("launch.py")
READY_TIMEOUT = 10.0
IGNORED = shutil.ignore_patterns(".git", ".venv", "venv", "__pycache__", "*.pyc", ".pytest_cache", "node_modules")
# Only these variables of the caller's environment reach the app: the learner's own
# SHORTLY_* settings must not leak into a check and change its verdict.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "FACTORLAB_WHEELHOUSE")


class AppFailed(Exception):
    """The app could not be started or stopped as asked; the message says what was seen."""


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment an app starts with: a few safe variables, then the check's own."""
    env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
    env.update(extra or {})
    return env


@dataclass
class RunningApp:
    """An app process serving on a loopback port, with an HTTP session that keeps cookies."""

    process: Process
    port: int
    workspace: Path
    http: requests.Session = field(default_factory=requests.Session)

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
        return self.process.output.text().replace(str(self.workspace), "<app>")

    def last_words(self, lines: int = 8) -> str:
        tail = [line[:200] for line in self.output().splitlines() if line.strip()][-lines:]
        return ("\nits last output:\n  " + "\n  ".join(tail)) if tail else ""

    def stop(self) -> int | None:
        self.http.close()
        return self.process.stop()


class LocalRunner:
    """Run an exercise folder's app as subprocesses of this machine."""

    name = "local"

    def __init__(self, source: Path, app: str = "shortly:app"):
        self.source = Path(source)
        self.app = app
        self._apps: list[RunningApp] = []
        self._dirs: list[str] = []

    def workspace(self) -> Path:
        """A fresh copy of the learner's folder, so a run never writes into it."""
        root = tempfile.mkdtemp(prefix="factorlab-")
        self._dirs.append(root)
        dest = Path(root) / "app"
        shutil.copytree(self.source, dest, ignore=IGNORED, symlinks=True)
        return dest

    def _launch(self, env: dict[str, str] | None, python: str, workspace: Path) -> tuple[Process, int]:
        port = free_port()
        argv = [python, str(LAUNCHER), self.app, str(port)]
        return Process.start(argv, cwd=str(workspace), env=base_env(env)), port

    def start(self, env: dict[str, str] | None = None, *, python: str = sys.executable,
              workspace: Path | None = None, ready_timeout: float = READY_TIMEOUT) -> RunningApp:
        """Start the app and wait until it listens; raise AppFailed with what was seen if it does not."""
        workspace = workspace or self.workspace()
        process, port = self._launch(env, python, workspace)
        app = RunningApp(process, port, workspace)
        self._apps.append(app)
        if wait_for_port(process, port, ready_timeout):
            return app
        code = process.poll()
        app.stop()
        if code is None:
            raise AppFailed(f"Seen: the app did not start serving within {ready_timeout:g} s "
                            f"(it may hang at import or never bind its port){app.last_words()}")
        raise AppFailed(f"Seen: the app exited with code {code} before serving any request{app.last_words()}")

    def run_to_exit(self, env: dict[str, str] | None = None, *, timeout: float = READY_TIMEOUT) -> tuple[int | None, str, bool]:
        """Start the app expecting it to exit by itself: (exit code or None, output, was it serving)."""
        workspace = self.workspace()
        process, port = self._launch(env, sys.executable, workspace)
        serving = wait_for_port(process, port, timeout) and process.poll() is None
        code = process.poll()
        process.stop()
        return code, process.output.text().replace(str(workspace), "<app>"), serving

    def close(self) -> None:
        """Stop every app this runner started and delete its workspaces."""
        for app in self._apps:
            app.stop()
        self._apps.clear()
        for root in self._dirs:
            shutil.rmtree(root, ignore_errors=True)
        self._dirs.clear()

    def __enter__(self) -> "LocalRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
