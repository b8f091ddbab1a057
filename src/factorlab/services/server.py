"""A server on a free loopback port: attached to this process, or detached to outlive it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..process import Process, pid_alive, port_open, wait_until
from .programs import ServiceFailed, demote

READY_TIMEOUT = 30.0


@dataclass
class Server:
    """A server on a loopback port: attached (a Process that dies with us) or detached (a pid)."""

    kind: str
    port: int
    root: Path
    pid: int
    process: Process | None = None
    stop_signal: int = signal.SIGTERM
    owned_root: bool = True

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return pid_alive(self.pid)

    def output(self) -> str:
        if self.process is not None:
            return self.process.text()
        log = self.root / "server.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def stop(self) -> None:
        """Stop the server and delete its data."""
        if self.process is not None:
            self.process.stop(grace=5.0, signum=self.stop_signal)
        elif self.alive():
            try:
                os.killpg(self.pid, self.stop_signal)
            except (ProcessLookupError, PermissionError):
                pass
            wait_until(lambda: not self.alive(), 5)
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.owned_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _launch(self, argv: list[str], user, detached: bool) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "LC_ALL": "C"}
        if detached:
            log = open(self.root / "server.log", "ab")
            popen = subprocess.Popen(argv, cwd=str(self.root), env=env, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, preexec_fn=demote(user), close_fds=True)
            log.close()
            self.pid = popen.pid
        else:
            self.process = Process.start(argv, cwd=str(self.root), env=env, user=user)
            self.pid = self.process.pid

    def _wait(self, ready, timeout: float = READY_TIMEOUT) -> None:
        """Wait until the server accepts connections and ready() says so; ServiceFailed if it dies or hangs."""
        if wait_until(lambda: not self.alive() or (port_open(self.port) and ready()), timeout) and self.alive():
            return
        self.stop()
        tail = "\n  ".join(self.output().strip().splitlines()[-8:])
        raise ServiceFailed(f"{self.kind} did not start on 127.0.0.1:{self.port}" + (f"; it said:\n  {tail}" if tail else ""))
