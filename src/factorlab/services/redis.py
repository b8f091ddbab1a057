"""A private Redis-compatible server that keeps everything in memory (nothing saved to disk)."""

from __future__ import annotations

import socket
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
        """Does it answer PING (after AUTH when it has a password)? Spoken on a socket: the redis library takes
        a fifth of a second to import, which a check that only starts a server need not pay."""
        commands = ([["AUTH", self.password]] if self.password else []) + [["PING"]]
        request = b"".join(_command(words) for words in commands)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(request)
                answer = b""
                while answer.count(b"\r\n") < len(commands):
                    chunk = sock.recv(4096)
                    if not chunk:
                        return False
                    answer += chunk
        except OSError:
            return False
        return answer.split(b"\r\n")[len(commands) - 1] == b"+PONG"


def _command(words: list[str]) -> bytes:
    """A command in the Redis protocol: an array of bulk strings."""
    parts = [f"*{len(words)}".encode()]
    for word in words:
        data = word.encode()
        parts += [f"${len(data)}".encode(), data]
    return b"\r\n".join(parts) + b"\r\n"
