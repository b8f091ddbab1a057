"""A private Redis-compatible server that keeps everything in memory (nothing saved to disk)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..process import free_port, run_tagged
from .programs import redis_server
from .server import Server


@dataclass
class Redis(Server):
    """A Redis on a free loopback port; with a password, clients must give it (in the URL, for the app)."""

    password: str | None = None

    @classmethod
    def start(cls, root: Path | None = None, *, detached: bool = False, password: str | None = None) -> "Redis":
        program = redis_server()
        owned = root is None
        root = Path(root or tempfile.mkdtemp(prefix=run_tagged("factorlab-redis-")))
        root.mkdir(parents=True, exist_ok=True)
        server = cls("redis", free_port(), root, 0, owned_root=owned, password=password)
        auth = ["--requirepass", password] if password else []
        server._launch([str(program), "--port", str(server.port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--dir", str(root), "--maxmemory", "64mb", "--protected-mode", "yes",
                        *auth], None, detached)
        server._wait(server._answers)
        return server

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=db, password=self.password, socket_timeout=5)

    def _answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except Exception:
            return False
