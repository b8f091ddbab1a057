"""Runners: where a check runs the learner's app. One seam, two implementations.

A check never starts the app itself: it asks its runner, through the calls of `Runner`, and gets
a `ServingApp` back. The local runner (`runners.local`) runs the app as subprocesses of this
machine; the docker runner (`factorlab.docker`) runs it in containers built from the folder. A
`RunnerSession` holds what one `factorlab check` shares between its checks (an engine connection,
built images) and makes one runner per check.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: `factorlab check` starts the warm Python before it imports requests
    import requests

    from ..http import Client

LAUNCHER = Path(__file__).resolve().parent.parent / "launch.py"  # run by path: it needs no factorlab installed
# `python -P LAUNCHER`: -P keeps the launcher's own folder (factorlab's) off sys.path, where its modules would
# hide the app's imports of the same names (http, docker, ...).
LAUNCH = ["-P", str(LAUNCHER)]
# First on the PYTHONPATH of every process a runner starts: its sitecustomize turns a bind to every interface into
# one to loopback (a check's servers are never reachable from the network; containers share the host's).
GUARD = Path(__file__).resolve().parent.parent / "guard"
READY_TIMEOUT = 10.0
WRITTEN_LIMIT = 256 * 1024  # bytes of one file an app wrote that a check may read
COMMAND_TIMEOUT = 30.0
NAMES = ("local", "docker")
# Only these variables of the caller's environment reach the app: the learner's own
# SHORTLY_* settings must not leak into a check and change its verdict.
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "FACTORLAB_WHEELHOUSE")


class AppFailed(Exception):
    """The app could not be started or stopped as asked; the message says what was seen."""


class RunnerUnavailable(Exception):
    """The runner cannot work on this machine (no engine, no base image): not the learner's fault."""


class Exit(NamedTuple):
    """How a process that was expected to stop by itself ended."""

    code: int | None  # None: it was still running when time ran out, and was stopped
    output: str
    serving: bool = False  # was it answering on its port at some point?

    def ended(self) -> str:
        """In words: "exited with code 3" or "did not finish in time"."""
        return "did not finish in time" if self.code is None else f"exited with code {self.code}"


def not_serving(ready_timeout: float, code: int | None, detail: str = "") -> str:
    """What to say when an app never started serving: it hung, or it exited with code."""
    if code is None:
        return (f"Seen: the app did not start serving within {ready_timeout:g} s "
                f"(it may hang at import or never bind its port){detail}")
    return f"Seen: the app exited with code {code} before serving any request{detail}"


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment an app starts with: a few safe variables of ours, then the check's own."""
    env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
    env.update(extra or {})
    return env


# A Procfile's line runs as platforms run it, with `bash -c LINE`: bash execs a line that is one simple command
# (dash, Debian's sh, would stay as its parent), so the process started is the app itself, and its exit code the
# app's own.
PROCESS_SHELL = "bash"


def process_line(folder: Path, process_type: str) -> str:
    """The command of a process type of the app's Procfile, or AppFailed saying why there is none."""
    from .. import procfile

    try:
        return procfile.command(folder, process_type)
    except procfile.ProcfileError as exc:
        raise AppFailed(f"Seen: {exc}.\nExpected: a Procfile whose `{process_type}:` line starts the "
                        f"{process_type} process.") from None


def last_words(output: str, lines: int = 8) -> str:
    """The end of what an app printed, indented, for a failure message ("" when it printed nothing)."""
    tail = [line[:200] for line in output.splitlines() if line.strip()][-lines:]
    return ("\nits last output:\n  " + "\n  ".join(tail)) if tail else ""


class ServingApp:
    """What a check talks to: an app serving on a loopback port, with a client of its own that keeps cookies.

    Every runner's app offers the same calls: get/post/request (through `client`), output() (what it
    printed so far; all of it once stopped), code_changes(), kill() (SIGKILL, as a crash would), terminate() and
    exited() (SIGTERM, and how it ended), and stop() (SIGTERM, then SIGKILL after a grace period; returns the
    exit code).
    """

    port: int
    client: Client

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def http(self) -> requests.Session:
        """The underlying requests session (its cookies are this app's own client's)."""
        return self.client.session

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.client.request(self, method, path, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def output(self) -> str:
        raise NotImplementedError

    def last_words(self, lines: int = 8) -> str:
        return last_words(self.output(), lines)

    def code_changes(self) -> list[str]:
        """Files (relative to the code folder) the app created, changed or deleted there while it ran."""
        raise NotImplementedError

    def written(self) -> dict[str, bytes]:
        """The files the app created or changed in its folder (its working directory), with their content
        (files over WRITTEN_LIMIT are left out): read once the app has stopped, or as it is now."""
        raise NotImplementedError

    def running(self) -> bool:
        """Is the process (the container) it was started as still running? A process that forked itself into the
        background and exited is not, whatever its child does."""
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def terminate(self) -> None:
        """SIGTERM, as a process manager sends it to stop the app (every process it started: systemd's control
        group, a container's init), and return at once: the app decides how it ends (see exited)."""
        raise NotImplementedError

    def exited(self, timeout: float) -> int | None:
        """Wait up to timeout seconds for the app to end by itself: its exit code, or None while it still runs."""
        raise NotImplementedError

    def stop(self) -> int | None:
        raise NotImplementedError


@runtime_checkable
class Runner(Protocol):
    """The calls a check may make. One runner serves one check, and close() undoes everything it did. A check
    may call it from two threads at once (to set up and start two instances side by side), except close()."""

    name: str
    used: bool  # did the check start anything, or only read the folder?
    untouched_note: str  # added to the message of a check that only read the folder
    notes: list[str]  # what the runner could not give the app instances, said with a check of two or more
    instances: int  # how many app instances it started

    def workspace(self) -> Path:
        """A fresh copy of the learner's folder, for a check that changes files before it starts the app."""

    def shared_dir(self) -> Path:
        """A folder the check and the app both see at this same path (files the app writes, the check reads)."""

    def start(self, env: dict[str, str] | None = None, *, workspace: Path | None = None,
              command: list[str] | None = None, clean: bool = False, process_type: str | None = None,
              ready_timeout: float = READY_TIMEOUT, listens: bool = True) -> ServingApp:
        """The app serving on a loopback port ($PORT), or AppFailed with what was seen.

        command: what to run instead of the course's launcher, as arguments to python
        (e.g. ["release.py", "run"]); it must serve on $PORT. clean: with only what requirements.txt
        installs and no system tools (always so in a container). process_type: run that line of the app's
        Procfile instead (e.g. "web"), with `sh -c` in the app's folder, as a platform does; always clean.
        listens=False: a process that serves nothing (a Procfile's `worker`): returned as soon as it is started,
        without waiting for a port (running() tells whether it still runs). In every case a bind to every
        interface is made a bind to loopback (GUARD)."""

    def run_to_exit(self, env: dict[str, str] | None = None, *, timeout: float = READY_TIMEOUT) -> Exit:
        """Start the app expecting it to stop by itself; a docker runner gives it no network at all."""

    def run_command(self, args: list[str], env: dict[str, str] | None = None, *,
                    timeout: float = COMMAND_TIMEOUT, workspace: Path | None = None, clean: bool = False) -> Exit:
        """A one-off command of the app, `python ARGS` in a copy of its folder (or of workspace, a copy the
        check changed), with loopback reachable. clean: with the packages of its requirements.txt alone (a
        container's Python always is)."""

    def close(self) -> None:
        """Stop everything this runner started and delete its folders."""


@runtime_checkable
class RunnerSession(Protocol):
    """What one check run shares between its checks; makes one runner per check."""

    name: str
    kept: list[str]  # what a --keep run left for inspection

    def prepare(self, folder: Path) -> None:
        """Do the slow shared work (a clean venv, an image) before the checks start their clocks."""

    def runner(self, folder: Path) -> Runner:
        """A new runner for one check of folder."""

    def close(self) -> None:
        """Release what the session holds (images, connections)."""


def open_session(name: str, app: str = "shortly:app", *, keep: bool = False) -> RunnerSession:
    """The session of the runner called name: "local" or "docker" (RunnerUnavailable without an engine)."""
    if name == "local":
        from .local import LocalSession

        return LocalSession(app)
    if name == "docker":
        from ..docker import DockerSession

        return DockerSession(app, keep=keep)
    raise ValueError(f"unknown runner {name!r}: expected one of {', '.join(NAMES)}")
