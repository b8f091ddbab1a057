"""`factorlab services up|down|status`: servers that outlive the command, until `down`.

Their addresses are kept in `.factorlab/services.json` in the course, and checks then create their
databases there.
"""

from __future__ import annotations

import json
import signal
import tempfile
from pathlib import Path

from ..process import port_open
from .postgres import Postgres
from .redis import Redis
from .server import Server

URL_NAMES = {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}


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


def detached(course_root: Path) -> dict[str, Server]:
    """The servers `up` started, whether or not they still run."""
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
    return {kind: server.alive() and port_open(server.port) for kind, server in detached(course_root).items()}


def urls(course_root: Path) -> dict[str, str]:
    info = _load(course_root)
    return {URL_NAMES[kind]: item["url"] for kind, item in info.items() if kind in URL_NAMES}


def down(course_root: Path) -> list[str]:
    """Stop what `up` started and delete its data; return what was stopped."""
    stopped = []
    for kind, server in detached(course_root).items():
        if server.alive():
            stopped.append(kind)
        server.stop()
    state_file(course_root).unlink(missing_ok=True)
    return stopped
