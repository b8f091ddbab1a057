"""The container runner: the learner's folder built into an image and run in a locked-down container.

A container is the twelve-factor execution environment in miniature: config arrives as
environment variables, the app binds the port it is given, ``docker stop`` sends SIGTERM,
``docker logs`` holds what it printed, and its filesystem is thrown away. The same checks
that use the local runner use this one through the same calls (see ``runner.py``).

Images are built with the course's Dockerfile (``docker/Dockerfile``) in two steps: a
dependency image, named by a hash of what goes into it and kept as the build cache, and
on top of it an image of the app's code, removed afterwards. Editing the code therefore
never reinstalls dependencies. The engine is found the standard way (``DOCKER_HOST``).
"""

from __future__ import annotations

import atexit
import hashlib
import io
import os
import socket
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .process import BoundedOutput, free_port, pid_alive, port_open
from .runner import (COMMAND_TIMEOUT, IGNORED, LAUNCHER, READY_TIMEOUT, AppFailed, Runner, RunnerUnavailable,
                     ServingApp, not_serving)

HERE = Path(__file__).parent / "docker"
TEMPLATE = HERE / "Dockerfile"
LEGACY_MANIFEST = HERE / "legacy-requirements.txt"
DEFAULT_BASE_IMAGE = "python:3.11-slim"
ENGINE_MISSING = "no Docker engine: start Docker, or use --runner local"
LABEL = "org.factorlab"
APP_USER = "10001:10001"
CODE_DIR = "/app"  # where the course's Dockerfile puts the app's files
MEMORY = "512m"
LIMITS = {"mem_limit": MEMORY, "memswap_limit": MEMORY, "nano_cpus": 1_000_000_000, "pids_limit": 128}
# The longest a container may live, whatever happens to factorlab (GNU timeout as PID 1 enforces it).
MAX_LIFETIME = 600
STOP_GRACE = 3
BUILD_TIMEOUT = 300


def base_image() -> str:
    return os.environ.get("FACTORLAB_BASE_IMAGE") or DEFAULT_BASE_IMAGE


def _default_host() -> str | None:
    """DOCKER_HOST, else Docker Desktop's per-user socket when the system one is absent."""
    if os.environ.get("DOCKER_HOST"):
        return None  # docker.from_env reads it
    desktop = Path.home() / ".docker" / "run" / "docker.sock"
    if not Path("/var/run/docker.sock").exists() and desktop.exists():
        return f"unix://{desktop}"
    return None


def _answers(url: str) -> bool:
    """Does anything accept a connection at the engine's address? Tried with a socket of our own, because
    the docker package leaks its socket when the connection is refused."""
    try:
        if url.startswith("unix://"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(3)
                sock.connect(url[len("unix://"):])
        elif url.startswith(("tcp://", "http://", "https://")):
            host, _, port = url.split("://", 1)[1].rstrip("/").rpartition(":")
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=3).close()
        return True  # other transports (npipe, ssh): let the client try
    except (OSError, ValueError):
        return False


def connect(timeout: float = 60):
    """A client for a reachable engine, or RunnerUnavailable with the one-line reason."""
    try:
        import docker
    except ImportError:
        raise RunnerUnavailable(f"{ENGINE_MISSING} (the docker Python package is not installed)") from None
    if not _answers(_default_host() or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"):
        raise RunnerUnavailable(ENGINE_MISSING)
    client = None
    try:
        host = _default_host()
        client = docker.DockerClient(base_url=host, timeout=timeout, max_pool_size=16) if host else \
            docker.from_env(timeout=timeout, max_pool_size=16)
        client.ping()
    except Exception:
        if client is not None:
            client.close()
        raise RunnerUnavailable(ENGINE_MISSING) from None
    return client


def engine_available() -> bool:
    """Tell, quickly, whether a Docker engine answers."""
    try:
        connect(timeout=3).close()
        return True
    except RunnerUnavailable:
        return False


def _owner() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _add_tree(tar: tarfile.TarFile, root: Path, prefix: str) -> None:
    """Add root's files under prefix, skipping what a workspace copy skips, with stable metadata."""
    def walk(folder: Path, rel: str):
        names = sorted(os.listdir(folder))
        skipped = IGNORED(str(folder), names)
        for name in names:
            if name in skipped:
                continue
            path, arc = folder / name, f"{rel}/{name}"
            info = tar.gettarinfo(str(path), arc)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if info.isdir():
                tar.addfile(info)
                walk(path, arc)
            elif info.isfile():
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            elif info.issym():
                tar.addfile(info)
    info = tarfile.TarInfo(prefix)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    tar.addfile(info)
    walk(root, prefix)


def _tar(build) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        build(tar)
    return buf.getvalue()


class BuildFailed(Exception):
    """docker build stopped; step is the instruction that failed, log what it printed."""

    def __init__(self, message: str, step: str, log: list[str]):
        super().__init__(message)
        self.step, self.log = step, log


@dataclass
class ContainerApp(ServingApp):
    """An app serving from a container on a loopback port (host networking)."""

    container: object
    port: int
    session: "DockerSession"
    http: requests.Session = field(default_factory=requests.Session)
    _logs: str | None = None
    exit_code: int | None = None
    _changes: list[str] | None = None

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

    def kill(self) -> None:
        """SIGKILL every process of the container at once (docker kill)."""
        try:
            self.container.kill()
            self.container.wait(timeout=STOP_GRACE + 5)
        except Exception:
            pass

    def stop(self) -> int | None:
        """SIGTERM (docker stop), SIGKILL after a grace period, keep its logs, remove the container."""
        self.http.close()
        if self._logs is None:
            self.exit_code = self.session.stop(self.container)
            self._logs = self.session.logs(self.container)
            self.code_changes()  # read before the container goes
            self.session.remove(self.container)
        return self.exit_code


class DockerSession:
    """One engine connection for one check run: builds images once, removes what it made at the end."""

    def __init__(self, app: str = "shortly:app", *, keep: bool = False, client=None):
        self.client = client or connect()
        self.app = app
        self.keep = keep
        self.run_prefix = os.environ.get("FACTORLAB_RUN_PREFIX", "")
        self._images: dict[str, str | BaseException] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._containers: list = []
        self.kept: list[str] = []
        sweep_orphans(self.client)
        atexit.register(self.close)

    # -- images -------------------------------------------------------------------------------------------

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def image_for(self, folder: Path) -> str:
        """The tag of an image of folder's app, built once per content for this session."""
        manifest = folder / "requirements.txt"
        manifest_bytes = manifest.read_bytes() if manifest.is_file() else LEGACY_MANIFEST.read_bytes()
        deps = self._deps_image(manifest_bytes)
        template = TEMPLATE.read_text()
        app_dockerfile = f"FROM {deps}\n" + template.split("\nFROM deps\n", 1)[1]
        context = _tar(lambda tar: (_add_tree(tar, folder, "app"),
                                    _add_bytes(tar, "Dockerfile", app_dockerfile.encode())))
        key = hashlib.sha256(context).hexdigest()[:16]
        with self._key_lock(key):
            known = self._images.get(key)
            if isinstance(known, BaseException):
                raise known
            if known:
                return known
            tag = f"factorlab/app:{key}-{uuid.uuid4().hex[:6]}"
            try:
                self._build(context, "Dockerfile", tag, {"role": "app"})
            except BuildFailed as exc:
                self._images[key] = AppFailed(f"Seen: the image of the app did not build ({exc}).")
                raise self._images[key] from None
            self._images[key] = tag
            return tag

    def _deps_image(self, manifest: bytes) -> str:
        """The dependency image for this manifest (kept between runs as the build cache)."""
        template = TEMPLATE.read_text().split("\nFROM deps\n", 1)[0]
        wheels = _wheelhouse()
        base = base_image()
        try:
            base_id = self.client.images.get(base).id
        except Exception:
            base_id = base
        key = hashlib.sha256(b"\0".join([template.encode(), manifest, LAUNCHER.read_bytes(), base_id.encode(),
                                         *(f"{w.name}:{w.stat().st_size}".encode() for w in wheels)])).hexdigest()[:16]
        tag = f"factorlab/deps:{key}"
        with self._key_lock(tag):
            known = self._images.get(tag)
            if isinstance(known, BaseException):
                raise known
            if known or self._has_image(tag):
                self._images[tag] = tag
                return tag

            def fill(tar):
                _add_bytes(tar, ".factorlab/Dockerfile", template.encode())
                _add_bytes(tar, ".factorlab/requirements.txt", manifest)
                _add_bytes(tar, ".factorlab/launch.py", LAUNCHER.read_bytes())
                _add_bytes(tar, ".factorlab/wheels/README", b"wheels for offline installs, when a wheelhouse is given\n")
                for wheel in wheels:
                    _add_bytes(tar, f".factorlab/wheels/{wheel.name}", wheel.read_bytes())

            args = {"BASE_IMAGE": base}
            if wheels:
                args.update(PIP_NO_INDEX="1", PIP_FIND_LINKS="/wheels")
            try:
                self._build(_tar(fill), ".factorlab/Dockerfile", tag, {"role": "deps"}, args, offline=bool(wheels))
            except BuildFailed as exc:
                if "pip install" in exc.step:  # the learner's manifest
                    said = [line for line in exc.log if line.strip() and not line.startswith(("Step ", " ---> "))
                            and not line.startswith(("INFO:", "Removing intermediate"))]
                    errors = [line for line in said if line.startswith("ERROR")] or said[-4:]
                    failure: BaseException = AppFailed(
                        "Seen: the image did not build: pip could not install requirements.txt:\n  "
                        + "\n  ".join(errors[-4:]) + "\nExpected: every requirement installable.")
                elif exc.step.startswith("FROM"):
                    failure = RunnerUnavailable(
                        f"the base image {base} is not available here and could not be pulled ({exc}); "
                        "set FACTORLAB_BASE_IMAGE to a local Python 3.11 image (see the README)")
                else:
                    failure = RunnerUnavailable(f"the dependency image did not build at `{exc.step}`: {exc}")
                self._images[tag] = failure
                raise failure from None
            self._images[tag] = tag
            return tag

    def _has_image(self, tag: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _build(self, context: bytes, dockerfile: str, tag: str, labels: dict[str, str],
               args: dict[str, str] | None = None, offline: bool = False) -> None:
        import docker.errors

        labels = {f"{LABEL}.{k}": v for k, v in labels.items()}
        labels.update({f"{LABEL}.owner": _owner(), f"{LABEL}.prefix": self.run_prefix})
        step, log = "", []
        deadline = time.monotonic() + BUILD_TIMEOUT
        try:
            stream = self.client.api.build(
                fileobj=io.BytesIO(context), custom_context=True, dockerfile=dockerfile, tag=tag, labels=labels,
                buildargs=args or {}, rm=True, forcerm=True, pull=False, decode=True,
                network_mode="none" if offline else None, container_limits={"memory": 1024 ** 3},
                timeout=BUILD_TIMEOUT)
            for chunk in stream:
                text = chunk.get("stream", "")
                for line in text.splitlines():
                    if line.startswith("Step "):
                        step = line.split(" : ", 1)[-1]
                    log.append(line)
                if "error" in chunk:
                    raise BuildFailed(chunk["error"].strip(), step, log)
                if time.monotonic() > deadline:
                    raise BuildFailed(f"the build took longer than {BUILD_TIMEOUT} s", step, log)
        except docker.errors.APIError as exc:
            raise BuildFailed(str(exc.explanation or exc), step, log) from None
        except requests.RequestException as exc:
            raise RunnerUnavailable(f"the Docker engine stopped answering during a build ({type(exc).__name__})") \
                from None

    # -- containers ---------------------------------------------------------------------------------------

    def run(self, image: str, env: dict[str, str], port: int, *, network: str, mounts: list[str],
            command: list[str] | None = None):
        """Start a locked-down container of image: unprivileged, limited, labelled, with a lifetime cap.
        command: arguments to python (default: the launcher serving the app)."""
        run_id = self.run_prefix + uuid.uuid4().hex
        environment = {**env, "PORT": str(port), "FACTORLAB_RUN_ID": run_id}
        from docker.types import LogConfig

        args = command or ["/factorlab/launch.py", self.app]
        container = self.client.containers.run(
            image, ["timeout", "-s", "KILL", str(MAX_LIFETIME), "python", *args],
            detach=True, environment=environment, network_mode=network, user=APP_USER,
            cap_drop=["ALL"], security_opt=["no-new-privileges"], **LIMITS,
            volumes={path: {"bind": path, "mode": "rw"} for path in mounts},
            log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
            labels={f"{LABEL}.owner": _owner(), f"{LABEL}.run": run_id, f"{LABEL}.prefix": self.run_prefix},
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
            self.kept.append(container.name)
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
        for key, image in list(self._images.items()):
            if isinstance(image, str) and image.startswith("factorlab/app:"):
                if self.keep:
                    self.kept.append(image)
                else:
                    try:
                        self.client.images.remove(image, force=True)
                    except Exception:
                        pass
            self._images.pop(key, None)
        try:
            self.client.close()
        except Exception:
            pass

    # -- factory ------------------------------------------------------------------------------------------

    def prepare(self, folder: Path) -> None:
        """Build folder's image before the checks start, so the build does not eat their time limits.
        A learner's build failure is kept and reported by each check that starts the app."""
        try:
            self.image_for(folder)
        except AppFailed:
            pass

    def __call__(self, path: Path) -> "DockerRunner":
        return DockerRunner(path, self.app, session=self)


def _wheelhouse() -> list[Path]:
    folder = os.environ.get("FACTORLAB_WHEELHOUSE")
    if not folder:
        return []
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise RunnerUnavailable(f"FACTORLAB_WHEELHOUSE names {folder}, which is not a folder")
    return sorted(p for p in path.iterdir() if p.suffix == ".whl" or p.name.endswith(".tar.gz"))


def sweep_orphans(client) -> int:
    """Remove containers and app images left by a factorlab process of this machine that has died."""
    here = socket.gethostname() + "/"
    removed = 0
    try:
        containers = client.containers.list(all=True, filters={"label": f"{LABEL}.owner"})
        images = client.images.list(filters={"label": f"{LABEL}.role=app"})
    except Exception:
        return 0
    for thing in [*containers, *images]:
        owner = (thing.labels or {}).get(f"{LABEL}.owner", "")
        if not owner.startswith(here) or pid_alive(int(owner[len(here):] or 0)):
            continue
        try:
            thing.remove(force=True) if hasattr(thing, "status") else client.images.remove(thing.id, force=True)
            removed += 1
        except Exception:
            pass
    return removed


def leftovers(prefix: str, client=None) -> list[str]:
    """Containers and app images made by runs whose FACTORLAB_RUN_PREFIX was prefix (for the test suite)."""
    client = client or connect(timeout=10)
    found = [f"container {c.name} ({c.status})" for c in client.containers.list(all=True, filters={"label": f"{LABEL}.prefix={prefix}"})]
    found += [f"image {', '.join(i.tags) or i.short_id}" for i in client.images.list(filters={"label": [f"{LABEL}.prefix={prefix}", f"{LABEL}.role=app"]})]
    return found


class DockerRunner(Runner):
    """Run an exercise folder's app in containers, with the calls the local runner offers."""

    name = "docker"

    def __init__(self, source: Path, app: str = "shortly:app", *, session: DockerSession):
        super().__init__(source, app)
        self.session = session
        self._mounts: list[str] = []

    def shared_dir(self) -> Path:
        path = super().shared_dir()
        path.chmod(0o777)  # the app runs as an unprivileged user of its own
        self._mounts.append(str(path))
        return path

    def _launch(self, env: dict[str, str] | None, folder: Path, network: str,
                command: list[str] | None = None) -> ContainerApp:
        """A container of folder's image, tracked so that close() removes it."""
        self.used = True
        image = self.session.image_for(folder)
        port = free_port()
        container = self.session.run(image, env or {}, port, network=network, mounts=self._mounts, command=command)
        app = ContainerApp(container, port, self.session)
        self._apps.append(app)
        return app

    def _watch(self, app: ContainerApp, timeout: float, until=lambda: False, every: float = 0.05) -> int | None:
        """Wait until the container exits (its exit code), until() is true or time runs out (None)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state, code = self.session.status(app.container)
            if code is not None or state == "gone":
                return code
            if until():
                return None
            time.sleep(every)
        return None

    def start(self, env: dict[str, str] | None = None, *, workspace: Path | None = None,
              ready_timeout: float = READY_TIMEOUT, clean: bool = True, python: str | None = None) -> ContainerApp:
        """Start the app in a container on host networking and wait until it listens.

        Every image is built from requirements.txt alone and has no tools the manifest did not bring,
        so clean is always so here, and python (a local interpreter) does not apply.
        """
        app = self._launch(env, workspace or self.source, "host")
        code = self._watch(app, ready_timeout, until=lambda: port_open(app.port))
        if code is None and port_open(app.port):
            return app
        oom = app.oom_killed()
        app.stop()
        raise AppFailed(not_serving(ready_timeout, code, _oom_note(oom) + app.last_words()))

    def run_to_exit(self, env: dict[str, str] | None = None, *,
                    timeout: float = READY_TIMEOUT) -> tuple[int | None, str, bool]:
        """Start the app with no network at all, expecting it to exit: (exit code or None, output, was it serving)."""
        app = self._launch(env, self.source, "none")
        probe = {"at": 0.0, "serving": False}

        def serving() -> bool:  # probed inside the container, every half second
            if time.monotonic() >= probe["at"]:
                probe["serving"] = _listening_inside(app.container, app.port)
                probe["at"] = time.monotonic() + 0.5
            return probe["serving"]

        code = self._watch(app, timeout, until=serving, every=0.1)
        app.stop()
        return code, app.output(), probe["serving"]

    def run_command(self, args: list[str], env: dict[str, str] | None = None, *,
                    timeout: float = COMMAND_TIMEOUT) -> tuple[int | None, str]:
        """Run `python ARGS` in a container of the app's image (host networking: it may need the services)."""
        app = self._launch(env, self.source, "host", command=args)
        code = self._watch(app, timeout)
        app.stop()
        return code, app.output()


def _listening_inside(container, port: int) -> bool:
    """Ask inside the container (it has no network of ours) whether something accepts connections on port."""
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 0.5)"
    try:
        result = container.exec_run(["python", "-c", probe], user=APP_USER)
    except Exception:
        return False
    return result.exit_code == 0


def _oom_note(oom: bool) -> str:
    return f" (killed: it used more than the container's {MEMORY} memory limit)" if oom else ""
