"""The capstone: the app run as a small production system on this machine, and what it lives through.

    system = System(folder, config)       a deploy root of its own: the folder built and released (release.py)
    system.start()                        web×2 and worker×2 of the current release, supervised, behind a proxy
    load = Load(system.proxy.url, page)   visitors making and following links through the proxy, until stop()
    system.kill("web.1")                  SIGKILL, as a crash does; the supervisor starts it again at once
    system.deploy(...) / rollback()       a new release (or the previous one), then a rolling restart onto it
    system.one_off("flask", ...)          `release.py run -- COMMAND` of the current release
    system.stop()                         SIGTERM to everything, the deploy root removed

Every part is real: the app's own release.py makes the releases and starts each process (as deploy.sh does on
a server), gunicorn serves, RQ's workers take jobs from Redis, PostgreSQL holds the links. What is the
course's own is what a platform would bring: the supervisor (it restarts a process that exits, as systemd's
Restart=always or a platform's process manager does: honcho and foreman are for development, and stop every
process when one exits) and the router in front of the web processes (round robin over the processes in
service, the next one tried when a process cannot take a request, as nginx's proxy_next_upstream does).
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import cleanenv
from .process import Process, free_port, run_tagged, signal_every, wait_until
from .runners import GUARD, base_env

WEBS, WORKERS = 2, 2
SERVE_WITHIN = 30.0  # seconds a (re)started web process has to answer before it is given up on
EXIT_WITHIN = 10.0  # seconds a process told to stop may take to exit before it is killed
ANSWER_WITHIN = 10.0  # seconds a web process may take to answer one request
NO_PROCESS_WAIT = 5.0  # seconds the router holds a request while no web process is in service
CRASH_LOOP, CRASH_WINDOW = 5, 10.0  # a process that exits 5 times within 10 s is left stopped (systemd's defaults)
MAX_LINES = 200_000  # lines kept per process run: a process that floods its stream is cut short, not the machine
COMMAND_TIMEOUT = 120.0  # seconds a release.py command (build, release, a one-off) may take
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "content-length"}
IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}


@dataclass(eq=False)
class Streamed(Process):
    """A process whose output is kept line by line, each with the moment it was read."""

    lines: list = field(default_factory=list)
    cut: int = 0  # lines left out after MAX_LINES

    def _pump(self) -> None:
        stream = self.popen.stdout
        for raw in iter(stream.readline, b""):
            if len(self.lines) < MAX_LINES:
                self.lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\r\n")))
            else:
                self.cut += 1
        stream.close()

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


# --- the router -------------------------------------------------------------------------------------------------

class Router:
    """An HTTP router on a loopback port of its own, in front of the web processes in service.

    Each request goes to the next process in turn. When a process cannot take it (the connection is refused: the
    request never reached it), the next one is tried. When a process dies holding it (the connection drops with
    no answer), the request is sent again only if it is safe to repeat: idempotent methods always, and POST when
    retry_post is set (Shortly's POST /api/links makes a link: sent twice, it makes two, and nothing is lost).
    Every request sent again is counted, by reason."""

    def __init__(self, retry_post: bool = True):
        self.retry_post = retry_post
        self.backends: dict[str, tuple[int, int]] = {}  # name -> (port, generation)
        self.generation = 0
        self.turn = 0
        self.changed = threading.Condition()
        self.sent_again: Counter = Counter()
        router = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["X-Forwarded-For"] = self.client_address[0]
                status, answer_headers, data = router.forward(self.command, self.path, headers, body)
                self.send_response(status)
                for key, value in answer_headers:
                    if key.lower() not in HOP_BY_HOP and key.lower() not in ("server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward  # noqa: N815 (http.server's naming)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def handle_error(self, request, client_address) -> None:
                """A client that hangs up while waiting is its own business."""

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True,
                                       name="capstone router")
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def admit(self, name: str, port: int) -> None:
        """Put a process in service (after it answered its health check)."""
        with self.changed:
            self.generation += 1
            self.backends[name] = (port, self.generation)
            self.changed.notify_all()

    def remove(self, name: str) -> None:
        with self.changed:
            self.backends.pop(name, None)
            self.changed.notify_all()

    def in_service(self) -> list[str]:
        with self.changed:
            return sorted(self.backends)

    def _pick(self, tried: set) -> tuple[int, int] | None:
        """The next process in service not tried yet for this request; waits a little when there is none."""
        deadline = time.monotonic() + NO_PROCESS_WAIT
        with self.changed:
            while True:
                fresh = [(name, backend) for name, backend in sorted(self.backends.items()) if backend not in tried]
                if fresh:
                    self.turn += 1
                    return fresh[self.turn % len(fresh)][1]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(left)

    def forward(self, method: str, path: str, headers: dict, body: bytes | None) -> tuple[int, list, bytes]:
        tried: set = set()
        for _ in range(6):
            backend = self._pick(tried)
            if backend is None:
                return 503, [("Content-Type", "text/plain")], b"no web process in service\n"
            tried.add(backend)
            conn = http.client.HTTPConnection("127.0.0.1", backend[0], timeout=ANSWER_WITHIN)
            try:
                conn.request(method, path, body=body, headers=headers)
                answer = conn.getresponse()
                return answer.status, answer.getheaders(), answer.read()
            except ConnectionRefusedError:
                self.sent_again["refused"] += 1  # it never reached a process: always safe to send again
            except (http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionResetError,
                    BrokenPipeError) as exc:
                if method not in IDEMPOTENT and not (method == "POST" and self.retry_post):
                    return 502, [("Content-Type", "text/plain")], f"the web process dropped it: {exc}\n".encode()
                self.sent_again["dropped"] += 1
            except TimeoutError:
                return 504, [("Content-Type", "text/plain")], b"the web process did not answer in time\n"
            except OSError as exc:
                self.sent_again[type(exc).__name__] += 1
            finally:
                conn.close()
        return 502, [("Content-Type", "text/plain")], b"no web process could take it\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the supervised system --------------------------------------------------------------------------------------

@dataclass(eq=False)
class Slot:
    """One process of the system (web.1, worker.2): what runs in it now, and every run it had."""

    name: str
    kind: str
    port: int | None
    process: Streamed | None = None
    runs: list = field(default_factory=list)  # (started at, Streamed)
    exits: list = field(default_factory=list)  # when it exited by itself


class CommandFailed(Exception):
    """A release.py command the system needed did not succeed."""


_live: list["System"] = []  # systems started and not stopped yet: stop_all() stops them (and so does exit)


def stop_all() -> None:
    """Stop every system this process started and has not stopped (a notebook's clean-up, or the end)."""
    for system in list(_live):
        system.stop()


atexit.register(stop_all)


class System:
    """The app's web and worker processes of its current release, under a supervisor, behind a router."""

    def __init__(self, folder: Path, config: dict[str, str], *, webs: int = WEBS, workers: int = WORKERS,
                 retry_post: bool = True):
        self.folder = Path(folder)
        self.config = dict(config)
        self.scratch = Path(tempfile.mkdtemp(prefix=run_tagged("factorlab-capstone-")))
        self.deploy_root = self.scratch / "deploy"
        venv = cleanenv.build(self.folder)  # the app's own requirements.txt, as on a server
        self.python = str(cleanenv.python_of(venv))
        for name in ("home", "tmp"):
            (self.scratch / name).mkdir()
        self.env = base_env({"PATH": os.pathsep.join([str(venv / "bin"), "/usr/bin", "/bin"]),
                             "HOME": str(self.scratch / "home"), "TMPDIR": str(self.scratch / "tmp"),
                             "SHORTLY_DEPLOY_ROOT": str(self.deploy_root), "PYTHONPATH": str(GUARD)})
        self.router = Router(retry_post=retry_post)
        self.slots = [Slot(f"web.{i + 1}", "web", free_port()) for i in range(webs)] + \
                     [Slot(f"worker.{i + 1}", "worker", None) for i in range(workers)]
        self.lock = threading.RLock()
        self.stopping = False
        self.started = time.monotonic()
        self.notes: list[tuple[float, str]] = []  # what the supervisor did, and when
        self.releases = 0
        _live.append(self)

    # -- release.py --------------------------------------------------------------------------------------------

    def _release_py(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> tuple[int | None, str]:
        process = Process.start([self.python, "release.py", *args], cwd=str(self.folder), env=self.env)
        code = process.wait(timeout)
        process.stop()
        return code, process.text()

    def _must(self, *args: str) -> str:
        code, text = self._release_py(*args)
        lines = text.strip().splitlines()
        if code != 0 or not lines:
            raise CommandFailed(f"release.py {' '.join(args)} " + ("did not finish" if code is None else
                                f"exited with {code}") + ": " + " | ".join(lines[-5:]))
        return lines[-1].strip()

    def release(self, **changes: str) -> str:
        """Build the folder and release it with the config (and changes): the new release's id, now current."""
        self.config.update(changes)
        self.releases += 1
        config = self.scratch / f"config-{self.releases}.env"
        config.write_text("".join(f"{k}={v}\n" for k, v in self.config.items()))
        return self._must("release", self._must("build"), "--config", str(config))

    def rollback(self) -> str:
        """Make the release before the current one current again: its id."""
        return self._must("rollback")

    def one_off(self, *command: str, release: str | None = None, timeout: float = COMMAND_TIMEOUT):
        """`release.py run [ID] -- COMMAND …`: (exit code, output); code None when it had to be stopped."""
        return self._release_py("run", *([release] if release else []), "--", *command, timeout=timeout)

    # -- processes ---------------------------------------------------------------------------------------------

    def note(self, what: str) -> None:
        with self.lock:
            self.notes.append((time.monotonic() - self.started, what))

    def start(self) -> None:
        """Start every process; return once every web process is in service."""
        self.started = time.monotonic()
        for slot in self.slots:
            self._launch(slot)
        for slot in self.slots:
            if slot.kind == "web" and not wait_until(lambda s=slot: s.name in self.router.in_service(),
                                                     SERVE_WITHIN, every=0.05):
                raise CommandFailed(f"{slot.name} did not serve within {SERVE_WITHIN:g} s:\n"
                                    + "\n".join(line for _, line in slot.process.lines[-20:]))

    def _launch(self, slot: Slot) -> None:
        env = {**self.env, **({"PORT": str(slot.port)} if slot.port else {})}
        process = Streamed.start([self.python, "release.py", "run", "--process", slot.kind],
                                 cwd=str(self.folder), env=env)
        with self.lock:
            slot.process = process
            slot.runs.append((time.monotonic(), process))
        threading.Thread(target=self._watch, args=(slot, process), daemon=True, name=f"watch {slot.name}").start()
        if slot.kind == "web":
            threading.Thread(target=self._admit, args=(slot, process), daemon=True, name=f"admit {slot.name}").start()

    def _admit(self, slot: Slot, process: Streamed) -> None:
        """Put a web process in service once it answers (its health check), as a platform's router does."""

        def answers() -> bool:
            if process.poll() is not None:
                return True
            conn = http.client.HTTPConnection("127.0.0.1", slot.port, timeout=2)
            try:
                conn.request("GET", "/api/release")
                return conn.getresponse().status == 200
            except OSError:
                return False
            finally:
                conn.close()

        if wait_until(answers, SERVE_WITHIN, every=0.02) and process.poll() is None and slot.process is process:
            self.router.admit(slot.name, slot.port)
            self.note(f"{slot.name} in service")

    def _watch(self, slot: Slot, process: Streamed) -> None:
        """Wait for the process to exit; unless it was asked to, start it again at once (Restart=always)."""
        code = process.popen.wait()
        self.router.remove(slot.name)
        with self.lock:
            if self.stopping or slot.process is not process:
                return  # stopped on purpose
            now = time.monotonic()
            slot.exits = [t for t in slot.exits if now - t < CRASH_WINDOW] + [now]
            if len(slot.exits) >= CRASH_LOOP:
                self.note(f"{slot.name} exited {CRASH_LOOP} times within {CRASH_WINDOW:g} s: left stopped")
                slot.process = None
                return
            self.note(f"{slot.name} exited with code {code}: started again")
            self._launch(slot)

    def slot(self, name: str) -> Slot:
        return next(s for s in self.slots if s.name == name)

    def kill(self, name: str) -> float:
        """SIGKILL the process and everything it started, as a crash or the kernel's OOM killer does; the moment."""
        slot = self.slot(name)
        process = slot.process
        self.note(f"{name} killed (SIGKILL)")
        moment = time.monotonic()
        # The whole group in one call, as the kernel's OOM killer or a lost box ends it: no process of it runs
        # another instruction, so none sees another die (an RQ worker would see its job process go and fail the
        # job). Then any that left the group.
        process.signal(signal.SIGKILL)
        signal_every(process.pid, process.run_id, signal.SIGKILL)
        return moment

    def current_run(self, name: str, since: float) -> Streamed | None:
        """The run of a slot started after since, if any."""
        slot = self.slot(name)
        with self.lock:
            later = [p for t, p in slot.runs if t >= since]
        return later[-1] if later else None

    def restart(self, name: str) -> None:
        """A planned restart onto the current release: out of service, SIGTERM (SIGKILL after EXIT_WITHIN),
        then a new process; a web process is back in service once it answers."""
        slot = self.slot(name)
        with self.lock:
            old, slot.process = slot.process, None
        self.router.remove(name)
        if old is not None:
            signal_every(old.pid, old.run_id, signal.SIGTERM)  # the whole unit, as systemd signals it
            if old.wait(EXIT_WITHIN) is None:
                self.note(f"{name} did not exit within {EXIT_WITHIN:g} s of SIGTERM: killed")
            old.stop(grace=0.5)
        self._launch(slot)
        if slot.kind == "web":
            wait_until(lambda: name in self.router.in_service(), SERVE_WITHIN, every=0.05)

    def rolling_restart(self) -> None:
        """Every process in turn, so the others serve meanwhile (what deploy.sh has systemd do)."""
        for slot in self.slots:
            self.restart(slot.name)

    def stop(self) -> None:
        """SIGTERM to every process (SIGKILL after EXIT_WITHIN), the router closed, the deploy root removed."""
        with self.lock:
            if self.stopping:
                return  # stopped already
            self.stopping = True
            running = [s.process for s in self.slots if s.process is not None]
        if self in _live:
            _live.remove(self)
        for process in running:
            signal_every(process.pid, process.run_id, signal.SIGTERM)
        deadline = time.monotonic() + EXIT_WITHIN
        for process in running:
            process.wait(max(0.0, deadline - time.monotonic()))
        for slot in self.slots:
            for _, process in slot.runs:
                process.stop(grace=0.5)
        self.router.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    # -- the aggregated stream ---------------------------------------------------------------------------------

    def stream(self) -> list[tuple[float, str, str]]:
        """Every line of every process run, as (seconds since start, process name, line), in the order read."""
        merged = []
        for slot in self.slots:
            for _, process in slot.runs:
                merged += [(t - self.started, slot.name, line) for t, line in list(process.lines)]
        return sorted(merged, key=lambda entry: entry[0])

    def events(self) -> tuple[list[dict], list[tuple[float, str, str]]]:
        """The stream parsed: the JSON events (each with "process" and "t" added), and the lines that are not."""
        events, loose = [], []
        for t, name, line in self.stream():
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if isinstance(event, dict) and "event" in event:
                events.append({**event, "process": name, "t": t})
            elif line.strip():
                loose.append((t, name, line))
        return events, loose


# --- the load ---------------------------------------------------------------------------------------------------

class Load:
    """Visitors, each making a link through the router, following it and asking which release answered, without
    pause until stop(). Every link with an odd number expires after a second (for the purge to find). Every
    request's outcome is kept with its time: "ok", or why it failed."""

    def __init__(self, base_url: str, page_url, visitors: int = 3, pause: float = 0.2):
        import requests

        self.requests = requests
        self.base_url, self.page_url, self.pause = base_url, page_url, pause
        self.results: list[tuple[float, str, str]] = []  # (seconds, what, outcome)
        self.codes: list[str] = []  # every link a visitor was given
        self.releases: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.started = time.monotonic()
        self.threads = [threading.Thread(target=self._visitor, args=(n,), daemon=True, name=f"visitor {n}")
                        for n in range(visitors)]
        for thread in self.threads:
            thread.start()

    def _ask(self, what: str, method: str, path: str, ok: int, **kwargs):
        try:
            answer = self.requests.request(method, self.base_url + path, timeout=ANSWER_WITHIN * 2,
                                           allow_redirects=False, **kwargs)
            outcome = "ok" if answer.status_code == ok else f"answered {answer.status_code}"
        except self.requests.RequestException as exc:
            answer, outcome = None, type(exc).__name__
        with self.lock:
            self.results.append((time.monotonic() - self.started, what, outcome))
        return answer if outcome == "ok" else None

    def _visitor(self, n: int) -> None:
        count = 0
        while not self.stopping.is_set():
            count += 1
            body = {"url": self.page_url(f"/visitor-{n}/{count}")}
            if count % 2:
                body["ttl_seconds"] = 1
            made = self._ask("make a link", "POST", "/api/links", 201, json=body)
            if made is not None:
                code = made.json()["code"]
                with self.lock:
                    self.codes.append(code)
                if "ttl_seconds" not in body:
                    self._ask("follow a link", "GET", f"/{code}", 302)
            answer = self._ask("ask the release", "GET", "/api/release", 200)
            if answer is not None:
                with self.lock:
                    self.releases.append((time.monotonic() - self.started, str(answer.json().get("release"))))
            self.stopping.wait(self.pause)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(ANSWER_WITHIN * 3)

    def failed(self) -> list[tuple[float, str, str]]:
        with self.lock:
            return [r for r in self.results if r[2] != "ok"]


# --- the drill: what the notebook (and bench/capstone.py) puts the system through ------------------------------

def worker_pids(redis_client) -> set[int]:
    """The pids of the RQ workers registered in Redis (each worker's hash holds its pid)."""
    pids = set()
    for key in redis_client.smembers("rq:workers"):
        pid = redis_client.hget(key, "pid")
        if pid and pid.isdigit():
            pids.add(int(pid))
    return pids


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[1])  # after "pid (name)": state, ppid
    except (OSError, ValueError, IndexError):
        return None


def connected_to(port: int) -> set[int]:
    """The pids of the processes holding a TCP connection to 127.0.0.1:port open (read from /proc: the socket's
    inode in /proc/net/tcp, then the process whose descriptors hold it)."""
    inodes = set()
    try:
        with open("/proc/net/tcp") as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and int(fields[2].split(":")[1], 16) == port:  # rem_address: ip:port in hex
                    inodes.add(f"socket:[{fields[9]}]")
    except OSError:
        return set()
    pids = set()
    for entry in filter(str.isdigit, os.listdir("/proc")) if inodes else ():
        try:
            if any(os.readlink(f"/proc/{entry}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{entry}/fd")):
                pids.add(int(entry))
        except OSError:
            continue
    return pids


@dataclass
class Recovery:
    """One disruption: what happened, when (seconds into the run), and seconds until the system was whole."""

    what: str
    at: float
    recovered_after: float | None  # None: not whole again within the time allowed


class Drill:
    """The capstone's run: the system started on a database set up by a one-off, load through the router, then a
    web and a worker killed, a release rolled forward and back, a one-off purge; the figures at the end."""

    def __init__(self, folder: Path, postgres, redis, page, *, visitors: int = 3, retry_post: bool = True,
                 settle: float = 3.0):
        self.postgres, self.redis, self.page = postgres, redis, page
        self.database_url = postgres.create_database("capstone")
        self.redis_client = redis.client()
        config = {"SHORTLY_SECRET_KEY": "fake-capstone-key", "DATABASE_URL": self.database_url,
                  "REDIS_URL": redis.url(), "SHORTLY_LOG_LEVEL": "INFO", "SHORTLY_DEBUG": "false"}
        self.system = System(folder, config, retry_post=retry_post)
        self.visitors = visitors
        self.load: Load | None = None
        self.recoveries: list[Recovery] = []
        self.steps: list[tuple[float, str]] = []
        self.one_offs: list[tuple[str, int | None]] = []
        self.held_page = None  # kill_worker's page, answering once the worker is killed
        self.settle = settle  # seconds of undisturbed load before each disruption, so each shows on its own

    def at(self) -> float:
        return time.monotonic() - self.load.started if self.load else 0.0

    def mark(self, what: str) -> None:
        """Let the load run undisturbed for `settle` seconds since the last step (or the start), then note the step."""
        last = self.steps[-1][0] if self.steps else 0.0
        self.load.stopping.wait(max(0.0, last + self.settle - self.at()))
        self.steps.append((self.at(), what))

    def set_up(self) -> tuple[str, int | None, str]:
        """Release v1 and set its database up with a one-off init-db (nothing else creates the table)."""
        release = self.system.release()
        code, text = self.system.one_off("flask", "--app", "shortly", "init-db")
        self.one_offs.append(("init-db", code))
        return release, code, text

    def start(self) -> None:
        self.system.start()
        self.load = Load(self.system.router.url, self.page.url, visitors=self.visitors)

    def kill_web(self, name: str = "web.1") -> Recovery:
        """SIGKILL a web process under load: recovered once its replacement is back in service."""
        self.mark(f"{name} killed")
        began = self.system.kill(name)
        whole = wait_until(lambda: (run := self.system.current_run(name, began)) is not None
                           and run.poll() is None and name in self.system.router.in_service(), SERVE_WITHIN,
                           every=0.02)
        recovery = Recovery(f"{name} killed", began - self.load.started,
                            time.monotonic() - began if whole else None)
        self.recoveries.append(recovery)
        return recovery

    def kill_worker(self, hold_within: float = 30.0) -> Recovery:
        """SIGKILL a worker while it holds a job, which is then neither done nor failed. The job is made sure of:
        a link to a page of its own that keeps its fetcher waiting, so the worker whose job process is connected
        to that page is the one killed (then the page answers). Recovered once its replacement has registered with
        the queue, ready for jobs."""
        self.mark("a worker killed holding a job")
        from .testpage import TestPage

        # kept until finish(): the job runs again, on the worker that puts it back
        held = self.held_page = TestPage("A page that kept its fetcher waiting").__enter__()
        held.hold("/")
        made = self.load.requests.post(self.system.router.url + "/api/links", json={"url": held.url("/held")},
                                       timeout=ANSWER_WITHIN * 2)
        if made.status_code == 201:
            with self.load.lock:
                self.load.codes.append(made.json()["code"])
        port = held.server.server_address[1]
        workers = {s.process.pid: s.name for s in self.system.slots if s.kind == "worker" and s.process}

        def holder() -> str | None:
            for pid in connected_to(port):
                name = workers.get(_parent(pid) or -1)
                if name:
                    return name
            return None

        seen: list[str] = []
        found = wait_until(lambda: bool(seen.append(holder()) or seen[-1]), hold_within, every=0.01)
        name = seen[-1] if found else "worker.1"
        began = self.system.kill(name)
        held.release()

        def registered() -> bool:
            run = self.system.current_run(name, began)
            return run is not None and run.poll() is None and run.pid in worker_pids(self.redis_client)

        whole = wait_until(registered, SERVE_WITHIN, every=0.02)
        recovery = Recovery("a worker killed holding a job" if found else "a worker killed (no job seen)",
                            began - self.load.started, time.monotonic() - began if whole else None)
        self.recoveries.append(recovery)
        return recovery

    def roll(self, forward: bool = True, **changes: str) -> str:
        """A new release with the changes (or back to the previous one), then a rolling restart onto it."""
        self.mark("release forward" if forward else "rollback")
        release = self.system.release(**changes) if forward else self.system.rollback()
        began = time.monotonic()
        self.system.rolling_restart()
        self.recoveries.append(Recovery(("rolling restart onto " + release), began - self.load.started,
                                        time.monotonic() - began))
        return release

    def purge(self) -> tuple[int | None, str, int]:
        """The one-off purge of the current release; (exit code, output, expired links left behind)."""
        self.mark("purge-expired (one-off)")
        began = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # the links' contract: UTC, ISO 8601, text
        code, text = self.system.one_off("flask", "--app", "shortly", "purge-expired")
        self.one_offs.append(("purge-expired", code))
        left = self.postgres.rows(self.database_url, "SELECT COUNT(*) FROM links WHERE expires_at < %s",
                                  (began,))[0][0]
        return code, text, left

    def finish(self, drain_within: float = 60.0) -> dict:
        """Stop the load (after `settle` seconds more of it), let the workers finish the queue, stop the system;
        the figures."""
        self.mark("load stopped")
        self.load.stop()
        codes = list(self.load.codes)

        def untitled() -> int:
            return self.postgres.rows(self.database_url, "SELECT COUNT(*) FROM links WHERE title = '' AND code = "
                                      "ANY(%s)", (codes,))[0][0]

        drained = wait_until(lambda: untitled() == 0, drain_within, every=0.2)
        lost = untitled()
        self._close_held_page()
        kept = self.postgres.rows(self.database_url, "SELECT COUNT(*) FROM links WHERE code = ANY(%s)", (codes,))[0][0]
        events, loose = self.system.events()
        self.system.stop()
        results = list(self.load.results)
        outcomes = Counter(outcome for _, _, outcome in results)
        served_by = Counter(release for _, release in self.load.releases)
        return {
            "seconds": round(results[-1][0], 1) if results else 0.0,
            "requests": len(results), "served": outcomes["ok"], "failed": len(results) - outcomes["ok"],
            "why": {k: v for k, v in outcomes.items() if k != "ok"},
            "sent_again": dict(self.system.router.sent_again),
            "links": len(codes), "links_purged": len(codes) - kept, "jobs_lost": lost, "drained": drained,
            "recoveries": [vars(r) for r in self.recoveries], "steps": self.steps,
            "releases_seen": dict(served_by), "one_offs": self.one_offs,
            "events": events, "loose_lines": loose,
            "timeline": [(round(t, 3), outcome == "ok") for t, _, outcome in results],
            "release_timeline": list(self.load.releases),
            "supervisor": self.system.notes,
        }

    def _close_held_page(self) -> None:
        if self.held_page is not None:
            self.held_page.__exit__(None, None, None)
            self.held_page = None

    def abort(self) -> None:
        """Stop whatever runs (after an error half-way)."""
        if self.load:
            self.load.stop()
        self.system.stop()
        self._close_held_page()
