"""A private PostgreSQL cluster: user `factorlab`, trust authentication on 127.0.0.1, a free port."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..files import memory_folder
from ..process import cache_root, free_port, run_tagged
from .programs import ServiceFailed, demote, files_lock, give, postgres_bin, runnable_bin, server_user
from .server import Server

PG_USER = "factorlab"
PG_DATABASE = "factorlab"
# A small server: the course's data is a few rows, and Binder gives a learner about 2 GiB in all.
PG_SETTINGS = ["-c", "shared_buffers=16MB", "-c", "max_connections=60", "-c", "fsync=off",
               "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "dynamic_shared_memory_type=posix"]


def _version(bin_dir: Path) -> str:
    done = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.split()[2]  # "postgres (PostgreSQL) 15.18 (Debian ...)"


def template(bin_dir: Path) -> Path:
    """An initialised cluster (user factorlab, trust auth on loopback) made once and copied for each server:
    copying takes a fraction of initdb's time. As root it lives in the temp folder, where `nobody` can reach it."""
    base = (memory_folder() or Path(tempfile.gettempdir())) / "factorlab-postgres" if server_user() \
        else cache_root() / "postgres"
    key = hashlib.sha256(str(bin_dir).encode()).hexdigest()[:8]
    target = base / f"template-{_version(bin_dir)}-{key}"
    with files_lock:
        if (target / "PG_VERSION").is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.parent.chmod(0o755)
        user = server_user()
        staging = Path(tempfile.mkdtemp(prefix="template-", dir=target.parent))
        data = staging / "data"
        give(staging, user)
        try:
            done = subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust",
                                   "-E", "UTF8", "--locale=C", "--no-sync"],
                                  capture_output=True, text=True, timeout=120, preexec_fn=demote(user))
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


@dataclass
class Postgres(Server):
    """A PostgreSQL cluster: user `factorlab`, database `factorlab`, trust authentication on 127.0.0.1."""

    bin: Path = field(default_factory=Path)

    @classmethod
    def start(cls, root: Path | None = None, *, detached: bool = False) -> "Postgres":
        bin_dir = runnable_bin(postgres_bin())
        cluster = template(bin_dir)
        owned = root is None
        root = Path(root or tempfile.mkdtemp(prefix=run_tagged("factorlab-pg-"), dir=memory_folder()))
        root.mkdir(parents=True, exist_ok=True)
        data = root / "data"
        shutil.copytree(cluster, data, symlinks=True)
        (data / "postmaster.pid").unlink(missing_ok=True)
        user = server_user()
        give(root, user)
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

    def execute(self, url: str, sql: str, params: tuple | list = ()) -> None:
        """Run a statement (or several, without params) in the database at url, committed at once."""
        conn = self.connect(url.rsplit("/", 1)[1])
        try:
            conn.cursor().execute(sql, params or None)
        finally:
            conn.close()

    def rows(self, url: str, query: str, params: tuple = ()) -> list[tuple]:
        """Run a query in the database at url and return its rows (for checks that look at the data)."""
        conn = self.connect(url.rsplit("/", 1)[1])
        try:
            cur = conn.cursor()
            cur.execute(query, params)
            return cur.fetchall()
        finally:
            conn.close()
