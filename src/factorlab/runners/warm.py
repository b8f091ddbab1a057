"""The local runner's warm Python: `python ARGS` started as a fork of a server that has imported the usual
libraries (runners/preload.py), behind the same calls as a `Process`.

A session of the local runner holds the server while its checks run; the last one to let go stops it, and
with it every process it started. A process forked by an app (not exec'd) carries the server's environment
marker, not its own: stopping a process therefore also kills such escapees that no live process owns.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import shutil
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..process import MARKER, READER_GRACE, BoundedOutput, Process, kill_marked, marked, run_tagged, wait_until

SERVER = Path(__file__).with_name("preload.py")
READY_TIMEOUT = 30.0
_lock = threading.Lock()
_state: dict = {"server": None, "socket": None, "folder": None, "holders": 0, "spawner": None}
_live: set["WarmProcess"] = set()
_live_lock = threading.Lock()  # a process just forked is not an escapee: starting and sweeping take turns


def _spawner() -> ThreadPoolExecutor:
    # Started from a thread that lives as long as the process: a child dies with the thread that started it.
    if _state["spawner"] is None:
        _state["spawner"] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="factorlab-warm")
    return _state["spawner"]


def _start_server() -> None:
    if _state["folder"]:  # a server that died: its socket goes with it
        shutil.rmtree(_state["folder"], ignore_errors=True)
    folder = tempfile.mkdtemp(prefix=run_tagged("factorlab-warm-"))
    path = os.path.join(folder, "socket")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME", "FACTORLAB_RUN_PREFIX")}
    server = _spawner().submit(Process.start, [sys.executable, "-u", "-P", str(SERVER), path], cwd=folder,
                               env=env).result()
    _state.update(server=server, socket=path, folder=folder)


def prestart() -> None:
    """Start the server now, for a session about to hold it: its imports then overlap the caller's own. The
    first hold uses it; if none comes, it stops when this process exits."""
    with _lock:
        if _state["server"] is None or _state["server"].poll() is not None:
            _start_server()


def hold() -> None:
    """A session starts using the warm Python (the server starts on the first hold)."""
    with _lock:
        _state["holders"] += 1
        if _state["server"] is None or _state["server"].poll() is not None:
            _start_server()


def release() -> None:
    """A session is done with it: the last to let go stops the server and everything it started."""
    with _lock:
        _state["holders"] = max(0, _state["holders"] - 1)
        if _state["holders"] or _state["server"] is None:
            return
        server, _state["server"] = _state["server"], None
        folder, _state["folder"] = _state["folder"], None
    server.stop(grace=1.0)
    _kill_escapees(server.run_id, everything=True)
    shutil.rmtree(folder, ignore_errors=True)  # its socket: a folder per run would pile up in the temp folder


def _at_exit() -> None:
    """A process that ends with the server still up (a notebook kernel, a test run): stop it, drop its socket."""
    server, folder = _state["server"], _state["folder"]
    if server is not None:
        server.stop(grace=1.0)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


atexit.register(_at_exit)


def available() -> bool:
    """Is a server running and ready (it says so once its imports are done)?"""
    server = _state["server"]
    return server is not None and wait_until(lambda: "preload: ready" in server.text() or server.poll() is not None,
                                             READY_TIMEOUT) and server.poll() is None


def _kill_escapees(server_run_id: str, everything: bool = False) -> None:
    """Kill the server's descendants that left their process group and belong to no live process."""
    with _live_lock:
        owned = {p.pid for p in _live if p.returncode is None}
        server = _state["server"]
        for pid in marked(server_run_id):
            if server is not None and pid == server.pid:
                continue
            try:
                if everything or os.getpgid(pid) not in owned:
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@dataclass(eq=False)
class WarmProcess:
    """A `python ARGS` forked by the warm server: poll, wait, signal, stop and text() as a Process has."""

    pid: int
    conn: socket.socket
    run_id: str
    server_run_id: str
    isolated: bool
    output: BoundedOutput = field(default_factory=BoundedOutput)
    reader: threading.Thread | None = None
    returncode: int | None = None
    pending: bytearray = field(default_factory=bytearray)  # what the server sent past the last line read

    @classmethod
    def start(cls, args: list[str], *, cwd: str, env: dict[str, str], isolate: bool,
              keep: list[str] = ()) -> "WarmProcess":
        """Fork `python ARGS` from the server; OSError when the server cannot be reached. isolate: in a mount
        namespace of its own (runners/isolation.py), where keep lists what it must see as it is."""
        with _live_lock:
            return cls._start(args, cwd=cwd, env=env, isolate=isolate, keep=list(keep))

    @classmethod
    def _start(cls, args: list[str], *, cwd: str, env: dict[str, str], isolate: bool,
               keep: list[str]) -> "WarmProcess":
        server = _state["server"]
        read, write = os.pipe()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(_state["socket"])
            run_id = os.environ.get("FACTORLAB_RUN_PREFIX", "") + os.urandom(16).hex()
            env = {**env, MARKER: run_id, "PYTHONUNBUFFERED": "1"}
            request = json.dumps({"args": args, "cwd": cwd, "env": env, "isolate": isolate, "keep": keep}).encode()
            socket.send_fds(conn, [request], [write])
        except OSError:
            conn.close()
            os.close(read)
            raise
        finally:
            os.close(write)
        pending = bytearray()
        first = cls._line(conn, READY_TIMEOUT, pending)
        if not first.startswith("pid "):
            conn.close()
            os.close(read)
            raise OSError(f"the warm Python did not start the process: {first!r}")
        _, pid, how = first.split()
        proc = cls(int(pid), conn, run_id, server.run_id, how == "isolated", pending=pending)
        proc.reader = threading.Thread(target=proc._pump, args=(read,), daemon=True, name=f"output of {args[:1]}")
        proc.reader.start()
        _live.add(proc)
        return proc

    @staticmethod
    def _line(conn: socket.socket, timeout: float, pending: bytearray) -> str:
        """The next line the server sent on conn ("" if none came within timeout); what came after it stays
        in pending (a quick process's "pid" and "exit" lines can arrive in one piece)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in pending:
            ready, _, _ = select.select([conn], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return ""
            chunk = conn.recv(256)
            if not chunk:
                return ""
            pending += chunk
        line, _, rest = bytes(pending).partition(b"\n")
        pending[:] = rest
        return line.decode(errors="replace").strip()

    def _pump(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as stream:
            while True:
                chunk = stream.read(65536)
                if not chunk:
                    break
                self.output.feed(chunk)

    def poll(self) -> int | None:
        return self.wait(0)

    def wait(self, timeout: float) -> int | None:
        if self.returncode is None:
            line = self._line(self.conn, timeout, self.pending)
            if line.startswith("exit "):
                self.returncode = os.waitstatus_to_exitcode(int(line.split()[1]))
                self.conn.close()
        return self.returncode

    def signal(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace: float = 3.0, signum: int | None = None) -> int | None:
        """As Process.stop: SIGTERM (or signum), SIGKILL after grace, its escapees killed, output read to its end."""
        if self.poll() is None:
            self.signal(signum or signal.SIGTERM)
            if self.wait(grace) is None:
                self.signal(signal.SIGKILL)
                self.wait(5)
        self.signal(signal.SIGKILL)
        with _live_lock:
            _live.discard(self)
        kill_marked(self.run_id)  # what an exec'd process of its own started
        _kill_escapees(self.server_run_id)
        if self.reader is not None and self.reader.is_alive():
            self.reader.join(READER_GRACE)
            if self.reader.is_alive():
                self.output.feed(b"\n[factorlab: stopped reading: a process outside the app's group kept its output open]\n")
        return self.returncode

    def text(self) -> str:
        return self.output.text()
