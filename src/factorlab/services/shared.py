"""One PostgreSQL cluster per process for the checks to make databases in: `services up`'s, or a private one."""

from __future__ import annotations

import atexit
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .detached import detached
from .postgres import Postgres
from .server import Server

_shared: dict[str, Server] = {}
_shared_lock = threading.Lock()
_pool: list[ThreadPoolExecutor] = []
_holders = [0]  # check runs under way that may use the shared cluster


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
            running = detached(course_root).get("postgres")
            if running is not None and running.alive() and running._accepts():
                running.owned_root = False  # never deleted by a check
                _shared["postgres"] = running
                return running  # type: ignore[return-value]
        # Started from a thread that lives as long as the process: Linux ties a child's death signal to the
        # thread that started it, and a check's thread ends with the check.
        server = _spawner().submit(Postgres.start).result()
        _shared["postgres"] = server
        return server


def _stop_unlocked() -> None:
    for server in _shared.values():
        if server.process is not None:
            server.stop()
    _shared.clear()


def stop_shared() -> None:
    """Stop the private servers this process started for checks (not `services up`'s)."""
    with _shared_lock:
        _stop_unlocked()


@contextmanager
def held() -> Iterator[None]:
    """For one check run: the private cluster stays up while any run holds it, and stops with the last one."""
    with _shared_lock:
        _holders[0] += 1
    try:
        yield
    finally:
        with _shared_lock:
            _holders[0] -= 1
            if _holders[0] == 0:
                _stop_unlocked()


atexit.register(stop_shared)
