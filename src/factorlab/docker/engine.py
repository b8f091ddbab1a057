"""Finding and talking to a Docker engine, and sweeping up what a dead factorlab process left in it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from ..process import pid_alive
from ..runners import RunnerUnavailable

ENGINE_MISSING = "no Docker engine: start Docker, or use --runner local"
DEFAULT_BASE_IMAGE = "python:3.11-slim"
LABEL = "org.factorlab"


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


def owner() -> str:
    """This process, as the owner label of what it makes: host/pid."""
    return f"{socket.gethostname()}/{os.getpid()}"


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
        made_by = (thing.labels or {}).get(f"{LABEL}.owner", "")
        if not made_by.startswith(here) or pid_alive(int(made_by[len(here):] or 0)):
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
    found = [f"container {c.name} ({c.status})"
             for c in client.containers.list(all=True, filters={"label": f"{LABEL}.prefix={prefix}"})]
    found += [f"image {', '.join(i.tags) or i.short_id}"
              for i in client.images.list(filters={"label": [f"{LABEL}.prefix={prefix}", f"{LABEL}.role=app"]})]
    return found
