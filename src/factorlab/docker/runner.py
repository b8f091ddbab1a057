"""The docker runner: the learner's app in locked-down containers, with the calls every runner offers.

A container is the twelve-factor execution environment in miniature: config arrives as environment
variables, the app binds the port it is given, `docker stop` sends SIGTERM, `docker logs` holds what it
printed, and its filesystem is thrown away.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tarfile
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .. import files
from ..http import Client
from ..process import BoundedOutput, free_port, listening_addresses, port_open, run_tagged, wait_until
from ..runners import (COMMAND_TIMEOUT, GUARD, READY_TIMEOUT, WRITTEN_LIMIT, AppFailed, Exit, ServingApp,
                       not_serving, process_line, PROCESS_SHELL)
from .engine import LABEL, connect, owner, sweep_orphans
from .images import Images

APP_USER = "10001:10001"
CODE_DIR = "/app"  # where the course's Dockerfile puts the app's files
MEMORY = "512m"
LIMITS = {"mem_limit": MEMORY, "memswap_limit": MEMORY, "nano_cpus": 1_000_000_000, "pids_limit": 128}
# The longest a container may live, whatever happens to factorlab (GNU timeout as PID 1 enforces it).
MAX_LIFETIME = 600
GUARD_IN_CONTAINER = "/factorlab/guard"  # runners.GUARD, mounted read-only
STOP_GRACE = 3


@dataclass(eq=False)
class ContainerApp(ServingApp):
    """An app serving from a container on a loopback port (host networking)."""

    container: object
    port: int
    session: "DockerSession"
    client: Client = field(default_factory=Client)
    _logs: str | None = None
    exit_code: int | None = None
    _changes: list[str] | None = None
    _written: dict[str, bytes] | None = None

    def output(self) -> str:
        if self._logs is not None:
            return self._logs
        return self.session.logs(self.container)

    def oom_killed(self) -> bool:
        return self.session.oom_killed(self.container)

    def code_changes(self) -> list[str]:
        """Files the app created, changed or deleted under /app, its code folder (from `docker diff`)."""
        if self._changes is None:
            self._changes = self.session.code_changes(self.container)
        return self._changes

    def written(self) -> dict[str, bytes]:
        """The files the app created or changed under /app, read out of the container (`docker cp`)."""
        if self._written is None:
            self._written = self.session.written(self.container, self.code_changes())
        return self._written

    def running(self) -> bool:
        if self._logs is not None:
            return False
        state, code = self.session.status(self.container)
        return code is None and state != "gone"

    def kill(self) -> None:
        """SIGKILL every process of the container at once (docker kill)."""
        try:
            self.container.kill()
            self.container.wait(timeout=STOP_GRACE + 5)
        except Exception:
            pass

    def terminate(self) -> None:
        """SIGTERM to every process of the container at once, as systemd signals a unit's control group:
        `kill -s TERM -- -1` inside it reaches all but its init (`timeout`, which then ends with the app's exit code).
        docker stop would signal the init alone, which passes it on to its process group only: RQ's job forks
        have left it."""
        try:
            done = self.container.exec_run(["sh", "-c", "kill -s TERM -- -1"])
            if done.exit_code == 0:
                return
        except Exception:
            pass
        try:  # no shell to run kill in (or it has exited): the init, at least
            self.container.kill(signal="SIGTERM")
        except Exception:
            pass

    def exited(self, timeout: float) -> int | None:
        if self.exit_code is not None:
            return self.exit_code
        try:
            return self.container.wait(timeout=max(timeout, 0.1)).get("StatusCode")
        except Exception:  # still running when the time was up (or gone)
            return None

    def stop(self) -> int | None:
        """SIGTERM (docker stop), SIGKILL after a grace period, keep its logs. The stopped container stays
        until the runner closes: what it wrote is read from it only if a check asks (docker diff is slow)."""
        self.client.close()
        if self._logs is None:
            self.exit_code = self.session.stop(self.container)
            self._logs = self.session.logs(self.container)  # the container has exited: its logs are complete
        return self.exit_code

    def remove(self) -> None:
        """Stop it and remove its container (the runner does, when it closes)."""
        self.stop()
        self.session.remove(self.container)


class DockerSession:
    """One engine connection for one check run: builds images once, removes what it made at the end."""

    name = "docker"

    def __init__(self, app: str = "shortly:app", *, keep: bool = False, client=None):
        self.client = client or connect()
        self.app = app
        self.keep = keep
        self.run_prefix = os.environ.get("FACTORLAB_RUN_PREFIX", "")
        self.images = Images(self.client, self.run_prefix, keep)
        self._lock = threading.Lock()
        self._containers: list = []
        self._kept: list[str] = []
        sweep_orphans(self.client)
        atexit.register(self.close)

    @property
    def kept(self) -> list[str]:
        return [*self._kept, *self.images.kept]

    def image_for(self, folder: Path) -> str:
        return self.images.app(Path(folder))

    def prepare(self, folder: Path) -> None:
        """Build folder's image before the checks start, so the build does not eat their time limits.
        A learner's build failure is kept and reported by each check that starts the app."""
        try:
            self.image_for(folder)
        except AppFailed:
            pass

    def runner(self, folder: Path) -> "DockerRunner":
        return DockerRunner(folder, self.app, session=self)

    # -- containers ---------------------------------------------------------------------------------------

    def run(self, image: str, env: dict[str, str], port: int, *, network: str, mounts: list[str],
            command: list[str] | None = None, shell: str | None = None):
        """Start a locked-down container of image: unprivileged, limited, labelled, with a lifetime cap.
        command: arguments to python (default: the launcher serving the app); shell: a command line for `bash -c`
        instead (a Procfile's). The loopback guard comes first on PYTHONPATH."""
        from docker.types import LogConfig

        run_id = self.run_prefix + uuid.uuid4().hex
        environment = {**env, "PORT": str(port), "FACTORLAB_RUN_ID": run_id}
        args = [PROCESS_SHELL, "-c", shell] if shell is not None else ["python", *(command or ["/factorlab/launch.py", self.app])]
        # Every Python in it binds loopback only (host networking: a bind to every interface is the host's).
        environment["PYTHONPATH"] = os.pathsep.join([GUARD_IN_CONTAINER, *filter(None, [env.get("PYTHONPATH")])])
        volumes = {path: {"bind": path, "mode": "rw"} for path in mounts}
        volumes[str(GUARD)] = {"bind": GUARD_IN_CONTAINER, "mode": "ro"}
        container = self.client.containers.run(
            image, ["timeout", "-s", "KILL", str(MAX_LIFETIME), *args],
            detach=True, environment=environment, network_mode=network, user=APP_USER,
            cap_drop=["ALL"], security_opt=["no-new-privileges"], **LIMITS,
            volumes=volumes,
            log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
            labels={f"{LABEL}.owner": owner(), f"{LABEL}.run": run_id, f"{LABEL}.prefix": self.run_prefix},
            name=f"factorlab-{run_id[-20:]}")
        with self._lock:
            self._containers.append(container)
        return container

    def status(self, container) -> tuple[str, int | None]:
        """(state, exit code once it has exited)."""
        try:
            container.reload()
        except Exception:
            return "gone", None
        state = container.attrs.get("State", {})
        running = state.get("Status") in ("created", "running", "restarting")
        return state.get("Status", "?"), None if running else state.get("ExitCode")

    def oom_killed(self, container) -> bool:
        return bool(container.attrs.get("State", {}).get("OOMKilled"))

    def code_changes(self, container) -> list[str]:
        try:
            changed = container.diff() or []
        except Exception:
            return []
        return sorted(item["Path"][len(CODE_DIR) + 1:] for item in changed
                      if item["Path"].startswith(CODE_DIR + "/") and "__pycache__" not in item["Path"]
                      and not any(other["Path"].startswith(item["Path"] + "/") for other in changed))

    def written(self, container, names: list[str]) -> dict[str, bytes]:
        """The content of files under /app of a container (those that are files, up to WRITTEN_LIMIT each)."""
        found = {}
        for name in names:
            try:
                stream, stat = container.get_archive(f"{CODE_DIR}/{name}")
                if stat.get("size", 0) > WRITTEN_LIMIT:
                    continue
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                    member = tar.next()
                    if member is not None and member.isfile():
                        found[name] = tar.extractfile(member).read()
            except Exception:
                continue
        return found

    def logs(self, container) -> str:
        try:
            raw = container.logs(stdout=True, stderr=True)
        except Exception:
            return ""
        out = BoundedOutput()
        out.feed(raw)
        return out.text()

    def stop(self, container) -> int | None:
        try:
            container.stop(timeout=STOP_GRACE)
            return container.wait(timeout=STOP_GRACE + 5).get("StatusCode")
        except Exception:
            return None

    def remove(self, container) -> None:
        if self.keep:
            self._kept.append(container.name)
            return
        try:
            container.remove(force=True)
        except Exception:
            pass
        with self._lock:
            if container in self._containers:
                self._containers.remove(container)

    def close(self) -> None:
        """Remove every container and app image this session made (unless keeping them)."""
        atexit.unregister(self.close)
        for container in list(self._containers):
            self.stop(container)
            self.remove(container)
        self.images.close()
        try:
            self.client.close()
        except Exception:
            pass


class DockerRunner:
    """Run an exercise folder's app in containers, with the calls the local runner offers."""

    name = "docker"
    untouched_note = " (read from the folder: no container needed)"

    def __init__(self, source: Path, app: str = "shortly:app", *, session: DockerSession):
        self.source = Path(source)
        self.app = app
        self.session = session
        self.used = False
        self.notes: list[str] = []  # containers are isolated from each other: nothing to note
        self._apps: list[ContainerApp] = []
        self._toolboxes: dict[str, object] = {}  # image -> a container waiting for one-off commands
        self._toolbox_lock = threading.Lock()  # calls may come from two threads of one check (Runner says so)
        self._mounts: list[str] = []
        self._dirs: list[Path] = []

    @property
    def instances(self) -> int:
        return len(self._apps)

    def _scratch(self, prefix: str) -> Path:
        # In the temp folder, which every user can reach: the container's user sees a shared folder at the same
        # path, and could not pass through a home such as /root on the way.
        root = Path(tempfile.mkdtemp(prefix=run_tagged(prefix)))
        self._dirs.append(root)
        return root

    def workspace(self) -> Path:
        return files.copy_app(self.source, self._scratch("factorlab-") / "app")

    def shared_dir(self) -> Path:
        path = self._scratch("factorlab-shared-")
        path.chmod(0o777)  # the app runs as an unprivileged user of its own
        with self._toolbox_lock:
            self._mounts.append(str(path))
            for box in self._toolboxes.values():  # made before this folder existed: it would not see it
                self.session.stop(box)
                self.session.remove(box)
            self._toolboxes.clear()
        return path

    def _launch(self, env: dict[str, str] | None, folder: Path, network: str,
                command: list[str] | None = None, shell: str | None = None) -> ContainerApp:
        """A container of folder's image, tracked so that close() removes it."""
        self.used = True
        image = self.session.image_for(folder)
        port = free_port()
        container = self.session.run(image, env or {}, port, network=network, mounts=self._mounts, command=command,
                                     shell=shell)
        app = ContainerApp(container, port, self.session)
        self._apps.append(app)
        return app

    def _exited(self, app: ContainerApp) -> bool:
        state, code = self.session.status(app.container)
        return code is not None or state == "gone"

    def start(self, env: dict[str, str] | None = None, *, workspace: Path | None = None,
              command: list[str] | None = None, clean: bool = True, process_type: str | None = None,
              ready_timeout: float = READY_TIMEOUT, listens: bool = True) -> ContainerApp:
        """Start the app in a container on host networking and wait until it listens on $PORT (listens=False:
        return once the container is started, for a process that serves nothing).

        Every image is built from requirements.txt alone and has no tools the manifest did not bring,
        so clean is always so here. process_type: that line of the folder's Procfile, run with `sh -c`."""
        folder = workspace or self.source
        shell = process_line(folder, process_type) if process_type else None
        app = self._launch(env, folder, "host", command, shell)
        if not listens:
            return app
        wait_until(lambda: port_open(app.port) or self._exited(app), ready_timeout)
        if not self._exited(app) and port_open(app.port):
            return app
        oom = app.oom_killed()
        code = self.session.status(app.container)[1]
        app.stop()
        raise AppFailed(not_serving(ready_timeout, code, _oom_note(oom) + app.last_words()))

    def run_to_exit(self, env: dict[str, str] | None = None, *, timeout: float = READY_TIMEOUT) -> Exit:
        """Start the app with no network at all, expecting it to exit."""
        app = self._launch(env, self.source, "none")
        probe = {"serving": False}

        def serving() -> bool:  # asked inside the container, which has no network of ours
            probe["serving"] = probe["serving"] or _listening_inside(app.container, app.port)
            return probe["serving"]

        wait_until(lambda: self._exited(app) or serving(), timeout, every=0.5)
        code = self.session.status(app.container)[1]
        app.stop()
        return Exit(code, app.output(), probe["serving"])

    def _toolbox(self, folder: Path):
        """A container of folder's image that waits, on host networking with the shared folders mounted, for
        one-off commands to be run in it (docker exec): a box of the app where an operator types commands."""
        image = self.session.image_for(folder)
        with self._toolbox_lock:
            if image not in self._toolboxes:
                self.used = True
                self._toolboxes[image] = self.session.run(image, {}, free_port(), network="host",
                                                          mounts=list(self._mounts),
                                                          command=["-c", "import time; time.sleep(10 ** 6)"])
            return self._toolboxes[image]

    def run_command(self, args: list[str], env: dict[str, str] | None = None, *,
                    timeout: float = COMMAND_TIMEOUT, workspace: Path | None = None, clean: bool = True) -> Exit:
        """Run `python ARGS` in the app's folder of a container of its image (host networking: it may need the
        services), as the app's user; the output is read to its end. Always clean: the image has only what
        requirements.txt brings."""
        box = self._toolbox(workspace or self.source)
        api = self.session.client.api
        limit = max(1, int(timeout))
        run = api.exec_create(box.id, ["timeout", "-s", "KILL", str(limit), "python", *args], environment=env or {},
                              workdir=CODE_DIR, user=APP_USER)
        output = BoundedOutput()
        stream = api.exec_start(run["Id"], stream=True)
        try:
            for chunk in stream:
                output.feed(chunk)
        finally:
            stream.close()
            for part in (getattr(stream, "_response", None), getattr(getattr(stream, "_response", None), "raw", None)):
                getattr(part, "close", lambda: None)()
        code = api.exec_inspect(run["Id"]).get("ExitCode")
        return Exit(None if code == 137 else code, output.text())

    def close(self) -> None:
        for app in self._apps:
            app.remove()
        self._apps.clear()
        for box in self._toolboxes.values():
            self.session.stop(box)
            self.session.remove(box)
        self._toolboxes.clear()
        for root in self._dirs:
            shutil.rmtree(root, ignore_errors=True)
        self._dirs.clear()

    def __enter__(self) -> "DockerRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _listening_inside(container, port: int) -> bool:
    """Does something listen on port in the container (it has no network of ours)? Read from the host when the
    engine runs on this machine: the container's network namespace, through /proc of its first process, at once
    whatever the app does (a probe started inside a container that forks without end waits for a free pid).
    Elsewhere (an engine in a VM), ask inside the container."""
    pid = container.attrs.get("State", {}).get("Pid")
    found = listening_addresses(port, f"/proc/{pid}/net") if pid else None
    if found is not None:
        return bool(found)
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 0.5)"
    try:
        result = container.exec_run(["python", "-c", probe], user=APP_USER)
    except Exception:
        return False
    return result.exit_code == 0


def _oom_note(oom: bool) -> str:
    return f" (killed: it used more than the container's {MEMORY} memory limit)" if oom else ""
