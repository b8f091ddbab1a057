"""Start untrusted commands so that they can always be stopped, and bound their output."""

from __future__ import annotations

import atexit
import ctypes
import os
import random
import resource
import signal
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

OUTPUT_LIMIT = 64 * 1024
# The address space an app started here may use: plenty for a web app (about 300 MiB), and it turns an app that allocates
# without bound into a MemoryError instead of a machine (or a 2 GiB Binder) running out of memory.
MEMORY_LIMIT = 1024 ** 3
MARKER = "FACTORLAB_RUN_ID"
_PR_SET_PDEATHSIG = 1


# Ports handed to apps come from below Linux's ephemeral range (32768-60999 by default), where the kernel picks
# the local ports of outgoing connections: one of those could otherwise take an app's port before it binds it.
PORT_RANGE = (20000, 32000)
_handed_out: dict[int, float] = {}
_ports_lock = threading.Lock()
PORT_QUARANTINE = 120.0  # seconds before this process hands out the same port again


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing is listening on right now, for an app to bind."""
    with _ports_lock:
        now = time.monotonic()
        for _ in range(200):
            port = random.randint(*PORT_RANGE)
            if now - _handed_out.get(port, -PORT_QUARANTINE) < PORT_QUARANTINE:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out[port] = now
            return port
    with socket.socket() as sock:  # a crowded range: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(ready, timeout: float, every: float = 0.05) -> bool:
    """Poll ready() until it is true (True) or timeout seconds have passed (False); ready is asked once more
    at the deadline, so a slow machine never loses the last chance."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return True
        if time.monotonic() >= deadline:
            return bool(ready())
        time.sleep(min(every, max(0.0, deadline - time.monotonic())))


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


def listening_addresses(port: int, net: str = "/proc/net") -> set[str] | None:
    """The addresses a TCP socket listens on at port ("127.0.0.1", "::ffff:127.0.0.1", "0.0.0.0", …), read from the
    tables of a network namespace (net: /proc/net for this process's, /proc/PID/net for another's); None when
    they cannot be read (not Linux, or not allowed)."""
    found, read = set(), False
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            lines = Path(net, table).read_text().splitlines()[1:]
        except OSError:
            continue
        read = True
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)  # 32-bit words in the kernel's (little-endian) order
            found.add(socket.inet_ntop(family, b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))))
    return found if read else None


def run_tagged(prefix: str) -> str:
    """A temporary folder's name prefix, tagged with the FACTORLAB_RUN_PREFIX of the test run it belongs to (if
    any): a run tells its own folders from those of another run, or of a notebook, on the same machine."""
    return prefix + os.environ.get("FACTORLAB_RUN_PREFIX", "")


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


_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def spawned(start):
    """start() (a Popen) on one long-lived thread of its own. Linux's parent-death signal fires when the *thread*
    that forked a child ends, not the process: a child started from a short-lived thread (two instances started
    side by side, a check's own thread) would be killed when that thread returns, unless it exec'd into a program
    that reset it. Forked from this thread, a child dies with the process, and only then."""
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="factorlab spawner")
    return _spawner.submit(start).result()


READER_GRACE = 5.0  # seconds to finish reading a pipe once every process that could write to it is gone


@dataclass(eq=False)
class Process:
    """A command running in its own process group, its output read into a bounded buffer."""

    popen: subprocess.Popen
    run_id: str
    output: BoundedOutput = field(default_factory=BoundedOutput)
    reader: threading.Thread | None = None

    @classmethod
    def start(cls, argv: list[str], *, cwd: str, env: dict[str, str],
              user: tuple[int, int] | None = None) -> "Process":
        """Start argv; user is (uid, gid) to run it as, for a server that will not run as root."""
        # A caller (the test suite) may prefix run ids to recognise its own processes.
        run_id = os.environ.get("FACTORLAB_RUN_PREFIX", "") + uuid.uuid4().hex
        env = {**env, MARKER: run_id, "PYTHONUNBUFFERED": "1"}
        popen = spawned(lambda: subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, preexec_fn=lambda: _die_with_parent(user), close_fds=True,
        ))
        proc = cls(popen, run_id)
        proc.reader = threading.Thread(target=proc._pump, daemon=True, name=f"output of {argv[0]}")
        proc.reader.start()
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
        """Signal the group (SIGTERM unless told), SIGKILL what is left after `grace` seconds, reap everything,
        and read the output to its end: text() then holds all of it."""
        if self.poll() is None:
            self.signal(signum or signal.SIGTERM)
            if self.wait(grace) is None:
                self.signal(signal.SIGKILL)
                self.wait(5)
        self.signal(signal.SIGKILL)  # children that outlived their parent in the group
        kill_marked(self.run_id)
        _live.discard(self)
        self._read_to_end()
        return self.poll()

    def _read_to_end(self) -> None:
        """Wait for the reader to reach the end of the output: every writer is gone, so it comes soon."""
        if self.reader is not None and self.reader.is_alive():
            self.reader.join(READER_GRACE)
            if self.reader.is_alive():
                self.output.feed(b"\n[factorlab: stopped reading: a process outside the app's group kept its output open]\n")

    def text(self) -> str:
        """What the process printed so far (all of it once stop() has returned)."""
        return self.output.text()


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


def signal_every(group: int, run_id: str, signum: int) -> None:
    """Send signum once to every process of a run, as systemd signals a unit's control group: the members of
    process group `group`, and each process that left it (found by the run marker in its environment)."""
    pids = set(marked(run_id))
    if os.path.isdir("/proc"):
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
                if int(fields[2]) == group:  # after "pid (name)": state, ppid, pgrp
                    pids.add(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    else:  # no /proc: the group is all we can reach
        try:
            os.killpg(group, signum)
        except OSError:
            pass
    for pid in pids:
        try:
            os.kill(pid, signum)
        except OSError:
            pass


def wait_for_port(proc: Process, port: int, timeout: float) -> bool:
    """Wait until the process listens on port; False if it exits or time runs out."""
    wait_until(lambda: port_open(port) or proc.poll() is not None, timeout, every=0.03)
    return port_open(port)


_live: set[Process] = set()


def stop_all() -> None:
    """Stop every process this module started and has not stopped yet."""
    for proc in list(_live):
        proc.stop(grace=1.0)


atexit.register(stop_all)
