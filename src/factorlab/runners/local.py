"""The local runner: the learner's app as subprocesses of this machine, each in a throwaway copy of the folder.

Each instance is isolated as a separate deploy would be, as far as a plain process can be: its own copy of
the code as the working directory, its own temporary folder and home, a free loopback port, its own process
group and a memory cap. It is started with `python -m factorlab.launch`-style arguments (the launcher by path,
so that it also runs in a clean virtual environment) or with a command of the app's own.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .. import cleanenv, files
from ..http import Client
from ..process import Process, free_port, signal_every, wait_for_port
from . import isolation, warm
from . import (COMMAND_TIMEOUT, GUARD, LAUNCH, READY_TIMEOUT, WRITTEN_LIMIT, AppFailed, Exit, ServingApp, base_env,
               not_serving, process_line, PROCESS_SHELL)


@dataclass(eq=False)
class RunningApp(ServingApp):
    """An app process serving on a loopback port."""

    process: Process
    port: int
    workspace: Path
    client: Client = field(default_factory=Client)
    before: dict = field(default_factory=dict)

    def output(self) -> str:
        return self.process.text().replace(str(self.workspace), "<app>")

    def code_changes(self) -> list[str]:
        """Files the app created, changed or deleted in its code folder since it started."""
        return files.changes(self.before, files.snapshot(self.workspace))

    def written(self) -> dict[str, bytes]:
        found = {}
        for name in self.code_changes():
            path = self.workspace / name
            if path.is_file() and not path.is_symlink() and path.stat().st_size <= WRITTEN_LIMIT:
                found[name] = path.read_bytes()
        return found

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL every process of the app at once, as a crash or an out-of-memory kill would: no clean-up code
        runs, and nothing it started survives (also what left its process group, as RQ's job forks do)."""
        self._signal_all(signal.SIGKILL)
        self.process.wait(5)

    def terminate(self) -> None:
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        """Signal every process of the app, as systemd signals a unit's control group: its process group, and
        each process that left it (found by the run marker in its environment)."""
        signal_every(self.process.pid, self.process.run_id, signum)

    def exited(self, timeout: float) -> int | None:
        return self.process.wait(timeout)

    def stop(self) -> int | None:
        self.client.close()
        return self.process.stop()


class LocalRunner:
    """Run an exercise folder's app as subprocesses of this machine."""

    name = "local"
    untouched_note = ""

    def __init__(self, source: Path, app: str = "shortly:app", *, warm_python: bool = False):
        self.source = Path(source)
        self.app = app
        self.warm = warm_python  # start `python ...` as forks of the session's warm Python (runners.warm)
        self.used = False
        self.notes: list[str] = []  # what this machine could not give the instances (see runners.isolation)
        self._apps: list[RunningApp] = []
        self._processes: list[Process] = []
        self._dirs: list[Path] = []
        self._instance = itertools.count()  # calls may come from two threads of one check (Runner says so)
        self._lock = threading.Lock()

    # -- folders ------------------------------------------------------------------------------------------

    def _scratch(self, prefix: str) -> Path:
        root = files.scratch(prefix)
        self._dirs.append(root)
        return root

    def workspace(self) -> Path:
        """A fresh copy of the learner's folder, so a run never writes into it."""
        return files.copy_app(self.source, self._scratch("factorlab-") / "app")

    def shared_dir(self) -> Path:
        return self._scratch("factorlab-shared-")

    def _private_env(self, workspace: Path) -> dict[str, str]:
        """A temporary folder and a home of the instance's own: two instances share neither, as two machines
        would not."""
        private = workspace.parent / f".{workspace.name}-private-{next(self._instance)}"
        (private / "tmp").mkdir(parents=True, exist_ok=True)
        (private / "home").mkdir(exist_ok=True)
        return {"TMPDIR": str(private / "tmp"), "HOME": str(private / "home")}

    # -- processes ----------------------------------------------------------------------------------------

    def _spawn(self, argv: list[str], env: dict[str, str] | None, workspace: Path,
               extra: dict[str, str] | None = None) -> Process:
        merged = base_env({**self._private_env(workspace), **(extra or {}), **(env or {})})
        if extra and "PORT" in extra:  # the port is the runner's to give, as a platform's is: config cannot move it
            merged["PORT"] = extra["PORT"]
        # Every Python it starts binds loopback only, whatever the app asks for (runners.GUARD).
        merged["PYTHONPATH"] = os.pathsep.join([str(GUARD), *filter(None, [merged.get("PYTHONPATH")])])
        process = None
        if self.warm and argv[0] == sys.executable and warm.available():
            try:
                process = warm.WarmProcess.start(argv[1:], cwd=str(workspace), env=merged, isolate=True,
                                                 keep=isolation.needed(workspace, merged))
                self._note(process.isolated)
            except OSError:
                process = None  # the warm Python is gone: start a cold one
        if process is None:
            isolated = isolation.prefix(workspace, merged)
            self._note(isolated is not None)
            process = Process.start([*(isolated or []), *argv], cwd=str(workspace), env=merged)
        self._processes.append(process)
        return process

    def _note(self, isolated: bool) -> None:
        with self._lock:
            if not isolated and isolation.NOT_ISOLATED not in self.notes:
                self.notes.append(isolation.NOT_ISOLATED)

    def _clean_python(self, workspace: Path) -> tuple[str, dict[str, str]]:
        """A venv built from the workspace's requirements.txt alone, and a PATH with nothing else on it."""
        try:
            venv = cleanenv.build(workspace)
        except cleanenv.ManifestError as exc:
            raise AppFailed(f"Seen: {exc}\nExpected: every requirement installable from the package index.") from None
        return str(cleanenv.python_of(venv)), {"PATH": str(venv / "bin")}

    def start(self, env: dict[str, str] | None = None, *, workspace: Path | None = None,
              command: list[str] | None = None, clean: bool = False, process_type: str | None = None,
              ready_timeout: float = READY_TIMEOUT, listens: bool = True) -> RunningApp:
        """Start the app and wait until it listens on $PORT; AppFailed with what was seen if it does not.
        listens=False: return once it is started (a worker serves nothing)."""
        self.used = True
        workspace = workspace or self.workspace()
        python, extra = sys.executable, {}
        if clean or process_type:
            python, extra = self._clean_python(workspace)
        port = free_port()
        argv = [python, *(command or [*LAUNCH, self.app])]
        if process_type:
            argv = [shutil.which(PROCESS_SHELL) or "/bin/bash", "-c", process_line(workspace, process_type)]
        before = files.snapshot(workspace)
        process = self._spawn(argv, env, workspace, {**extra, "PORT": str(port)})
        app = RunningApp(process, port, workspace, before=before)
        self._apps.append(app)
        if not listens:
            return app
        if wait_for_port(process, port, ready_timeout) and process.poll() is None:
            return app
        code = process.poll()
        app.stop()
        raise AppFailed(not_serving(ready_timeout, code, app.last_words()))

    def run_command(self, args: list[str], env: dict[str, str] | None = None, *,
                    timeout: float = COMMAND_TIMEOUT, workspace: Path | None = None, clean: bool = False) -> Exit:
        """`python ARGS` in a fresh copy of the folder (or in workspace), e.g. -m flask --app shortly init-db;
        clean: the Python of the venv its requirements.txt makes, with nothing else on PATH."""
        self.used = True
        workspace = workspace or self.workspace()
        python, extra = self._clean_python(workspace) if clean else (sys.executable, {})
        process = self._spawn([python, *args], env, workspace, extra)
        code = process.wait(timeout)
        process.stop()
        return Exit(code, process.text().replace(str(workspace), "<app>"))

    def run_to_exit(self, env: dict[str, str] | None = None, *, timeout: float = READY_TIMEOUT) -> Exit:
        """Start the app expecting it to exit by itself."""
        self.used = True
        workspace = self.workspace()
        port = free_port()
        process = self._spawn([sys.executable, *LAUNCH, self.app], env, workspace, {"PORT": str(port)})
        serving = wait_for_port(process, port, timeout) and process.poll() is None
        code = process.poll() if not serving else None
        process.stop()
        return Exit(code, process.text().replace(str(workspace), "<app>"), serving)

    @property
    def instances(self) -> int:
        """How many app instances this runner started (a note about isolation matters from two on)."""
        return len(self._apps)

    def close(self) -> None:
        """Stop every process this runner started and delete its folders."""
        for app in self._apps:
            app.client.close()
        for process in self._processes:
            process.stop()
        self._apps.clear()
        self._processes.clear()
        for root in self._dirs:
            shutil.rmtree(root, ignore_errors=True)
        self._dirs.clear()

    def __enter__(self) -> "LocalRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalSession:
    """The local runner's session: one runner per check; the warm Python they share while the session lasts."""

    name = "local"

    def __init__(self, app: str = "shortly:app"):
        self.app = app
        self.kept: list[str] = []
        self._holding = False

    def prepare(self, folder: Path) -> None:
        """Start the warm Python (its imports run while the first checks read the folder). A folder with a
        Procfile has its processes started in the environment its requirements.txt makes: build it now (or find
        it cached), before the checks' clocks start; a manifest that does not install is left for the checks to
        report. Without a Procfile, a check that needs that environment builds it."""
        if not self._holding:
            warm.hold()
            self._holding = True
        if (Path(folder) / "Procfile").is_file():
            try:
                cleanenv.build(Path(folder))
            except (cleanenv.ManifestError, cleanenv.InstallTrouble, OSError):
                pass

    def runner(self, folder: Path) -> LocalRunner:
        return LocalRunner(folder, self.app, warm_python=self._holding)

    def close(self) -> None:
        if self._holding:
            self._holding = False
            warm.release()
