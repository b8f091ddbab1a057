"""Start untrusted commands so that they can always be stopped, and bound their output."""

from __future__ import annotations

import atexit
import ctypes
import os
import resource
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

OUTPUT_LIMIT = 64 * 1024
# The address space an app started here may use: plenty for a web app, and it turns an app that allocates
# without bound into a MemoryError instead of a machine (or a 2 GiB Binder) running out of memory.
MEMORY_LIMIT = 2 * 1024 ** 3
MARKER = "FACTORLAB_RUN_ID"
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing is listening on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Tell whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class BoundedOutput:
    """Keep the head and the tail of a stream, counting what was dropped."""

    def __init__(self, limit: int = OUTPUT_LIMIT):
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.lock = threading.Lock()

    def feed(self, chunk: bytes) -> None:
        with self.lock:
            self.total += len(chunk)
            room = self.limit // 2 - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            self.tail += chunk
            del self.tail[: max(0, len(self.tail) - self.limit // 2)]

    def text(self) -> str:
        with self.lock:
            dropped = self.total - len(self.head) - len(self.tail)
            middle = f"\n[… {dropped} bytes of output left out …]\n" if dropped > 0 else ""
            return (bytes(self.head).decode(errors="replace") + middle
                    + bytes(self.tail).decode(errors="replace"))


def become(user: tuple[int, int] | None) -> None:
    """In a child about to exec: drop to (uid, gid), for a server that will not run as root."""
    if user:
        os.setgroups([])
        os.setgid(user[1])
        os.setuid(user[0])


def pid_alive(pid: int) -> bool:
    """Does a process with this pid exist (ours or another user's)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def cache_root() -> Path:
    """factorlab's cache folder: $FACTORLAB_CACHE, else $XDG_CACHE_HOME/factorlab or ~/.cache/factorlab."""
    return Path(os.environ.get("FACTORLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "factorlab"))


def _die_with_parent(user: tuple[int, int] | None = None) -> None:
    """In the child: its own process group, a memory cap, another user if asked (a server that refuses to
    run as root), and (on Linux) death with the process that started it."""
    os.setpgrp()
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ValueError, OSError):
        pass
    become(user)  # before PDEATHSIG: changing credentials clears it
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


@dataclass(eq=False)
class Process:
    """A command running in its own process group, its output read into a bounded buffer."""

    popen: subprocess.Popen
    run_id: str
    output: BoundedOutput = field(default_factory=BoundedOutput)

    @classmethod
    def start(cls, argv: list[str], *, cwd: str, env: dict[str, str],
              user: tuple[int, int] | None = None) -> "Process":
        """Start argv; user is (uid, gid) to run it as, for a server that will not run as root."""
        # A caller (the test suite) may prefix run ids to recognise its own processes.
        run_id = os.environ.get("FACTORLAB_RUN_PREFIX", "") + uuid.uuid4().hex
        env = {**env, MARKER: run_id, "PYTHONUNBUFFERED": "1"}
        popen = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, preexec_fn=lambda: _die_with_parent(user), close_fds=True,
        )
        proc = cls(popen, run_id)
        threading.Thread(target=proc._pump, daemon=True).start()
        _live.add(proc)
        return proc

    def _pump(self) -> None:
        stream = self.popen.stdout
        while True:
            chunk = stream.read1(65536)
            if not chunk:
                break
            self.output.feed(chunk)
        stream.close()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, signum: int) -> None:
        """Send a signal to the whole process group."""
        try:
            os.killpg(self.popen.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace: float = 3.0, signum: int | None = None) -> int | None:
        """Signal the group (SIGTERM unless told), SIGKILL what is left after `grace` seconds, reap everything."""
        if self.poll() is None:
            self.signal(signum or signal.SIGTERM)
            if self.wait(grace) is None:
                self.signal(signal.SIGKILL)
                self.wait(5)
        self.signal(signal.SIGKILL)  # children that outlived their parent in the group
        kill_marked(self.run_id)
        _live.discard(self)
        return self.poll()


def marked(prefix: str) -> list[int]:
    """Pids of live processes whose run marker starts with prefix (children that left their group included)."""
    needle = f"{MARKER}={prefix}".encode()
    found = []
    if not os.path.isdir("/proc"):  # macOS and friends: only the process group catches children
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if any(var.startswith(needle) for var in fh.read().split(b"\0")):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def kill_marked(run_id: str) -> int:
    """SIGKILL every process whose environment carries our run marker (it escaped its group)."""
    pids = marked(run_id)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(pids)


def wait_for_port(proc: Process, port: int, timeout: float) -> bool:
    """Wait until the process listens on port; False if it exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        if proc.poll() is not None:
            return port_open(port)
        time.sleep(0.03)
    return False


_live: set[Process] = set()


def stop_all() -> None:
    """Stop every process this module started and has not stopped yet."""
    for proc in list(_live):
        proc.stop(grace=1.0)


atexit.register(stop_all)
