"""Factor IX, disposability: every process starts fast, stops cleanly on SIGTERM, and loses nothing when killed.

The checks start the Procfile's processes as in factor VIII (a database they share, a private Redis, a token
each, so the check's test page knows who fetched it) and then do what a process manager and a bad day do:
- start them with thousands of links stored, every link's page one that never finishes answering: a process
  that fetches (or warms) anything per link before it serves is caught in the act, whatever the machine's speed;
- SIGTERM a web process while requests are held inside it (without REDIS_URL, creating a link fetches its page
  in the request): every request sent before the signal must still be answered 2xx (also one still waiting in
  the queue of its port), a connection made after the signal must not be served, and the process must exit 0
  soon after its last answer;
- SIGTERM a worker mid-job: the job must be done all the same (finished, or handed back for the next worker),
  and the worker must exit 0;
- SIGKILL a worker mid-job, then start another: the job must be done, once in effect.
SIGTERM (and SIGKILL) goes to every process of the app at once, as systemd sends it to a unit's control group and
Heroku to a dyno's processes: its process group and each process that left it (RQ's job forks do); in a
container, every process in it (runners: `ServingApp.terminate`).
"""

from __future__ import annotations

import ast
import json
import socket
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from ..process import wait_until
from ..runners import AppFailed, ServingApp
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import REQUIRED_APP_ENV
from .attached import database_env, redis_server, set_up, workers_waiting
from .concurrency import WEB, System, _hits, _need_types, _token
from .runbook import runbook_truth
from .source import Module, python_files, rel
from .text import listing

STORED = 3000  # links in the database when the processes start: "thousands"
START_WITHIN = 15.0  # seconds from the start of a process to it serving (or waiting for jobs), container included
WATCH = 1.0  # seconds the check watches for a stored link's page being fetched, once every process is ready
IN_FLIGHT = 3  # requests sent to the web process before SIGTERM, each held by its page
ARRIVE_WITHIN = 15.0  # seconds for a request to reach the page (the app fetching it in the request)
ALL_WITHIN = 5.0  # seconds more for the other requests sent with it to reach the page (a server with room takes
                  # each as it comes; one that takes a request at a time leaves the rest in its port's queue)
REACT = 1.0  # seconds after SIGTERM before the check makes a new connection, and before it releases held work
GRACE = 10.0  # seconds a process may take to exit once what it held is done
ANSWER_WITHIN = 20.0  # seconds for the held requests to be answered once their page has answered
DONE_WITHIN = 10.0  # seconds for a job to be done once a (new) worker is waiting for jobs (RQ by itself notices a
                    # dead worker's job a minute or more after its last heartbeat)
HOLD_LIMIT = 60.0  # seconds any one request or probe of the check may take, whatever the app does

_utc = timezone.utc


def _database_file(env: dict[str, str]) -> str:
    return env["SHORTLY_DATABASE"]  # the SQLite file of attached.database_env, which DATABASE_URL names too


LINKS_TABLE = """CREATE TABLE IF NOT EXISTS links (code TEXT PRIMARY KEY, url TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '', clicks INTEGER NOT NULL DEFAULT 0, created_at TEXT, expires_at TEXT)"""


def store_links(database: str, urls: list[str], *, create: bool = False) -> None:
    """Insert links to urls straight into Shortly's SQLite database file (their previews done: each has a title);
    create: make the links table first if it is missing (for app states that make it at import)."""
    created = datetime.now(_utc)
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    expires = (created + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [(f"st{n:05d}", url, f"Stored page {n}", 0, stamp, expires) for n, url in enumerate(urls)]
    with sqlite3.connect(database) as db:
        if create:
            db.execute(LINKS_TABLE)
        db.executemany("INSERT INTO links (code, url, title, clicks, created_at, expires_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)", rows)


def _store_links(env: dict[str, str], urls: list[str]) -> None:
    try:
        store_links(_database_file(env), urls)
    except sqlite3.Error as exc:
        raise CheckFailed(f"Seen: the check could not store {len(urls)} links in the app's database ({exc}).\n"
                          "Expected: the links table of the course's app (code, url, title, clicks, created_at, "
                          "expires_at), set up by `flask --app shortly init-db`.") from None


def _rows(env: dict[str, str]) -> list[tuple[str, str]]:
    """(code, title) of every link in the app's SQLite database."""
    with sqlite3.connect(_database_file(env)) as db:
        return list(db.execute("SELECT code, title FROM links ORDER BY code"))


def _fetched(page: TestPage, prefix: str) -> str:
    hits = _hits(page, prefix)
    who = sorted({w for _, w in hits})
    return (f"{len(hits)} page(s), by the {' and the '.join(who)} process{'es' if len(who) > 1 else ''}" if hits
            else "none of their pages")


@check("disposability.fast_start", factor=9, title="Every process serves within seconds of its start, "
       "however many links there are", hint="Start-up must not grow with the data: take out warm_cache() (and "
       "anything else that fetches or loads every link before serving). Each link keeps its title in the "
       "database; a page missing from the cache is fetched when it is needed, by a worker.", timeout=90)
def fast_start(ctx: CheckContext) -> str:
    """With STORED links in the database, each to a page that never finishes answering, a web and a worker process
    start from the Procfile: within START_WITHIN seconds of its start, the web process answers GET / and the
    worker waits on the queue; neither fetches any stored link's page (watched for WATCH seconds more)."""
    _need_types(ctx)
    with redis_server() as redis, TestPage() as page:
        page.hold("/stored/")
        urls = [page.url(f"/stored/{n}") for n in range(STORED)]
        started = time.monotonic()

        def fill(env):
            _store_links(env, urls)
            nonlocal started
            started = time.monotonic()

        system = System(ctx, redis, ["A"], prepare=fill)
        first = _Get(f"{system.web.url}/", max(0.5, START_WITHIN - (time.monotonic() - started)))
        # A stored link's page asked for is the sin caught in the act: no need to wait for the time to run out.
        page.wait_for(lambda: first.done.is_set() or bool(_hits(page, "/stored/")), START_WITHIN + 1, every=0.1)
        answer = first.answer if first.done.is_set() else None
        served = time.monotonic() - started
        if _hits(page, "/stored/") and answer is None:
            # Which process asks first, and how many pages by then, is a race: the message names neither.
            raise CheckFailed(f"Seen: with {STORED} links stored, the processes fetched stored links' pages as "
                              "they started, before the web process served anything.\nExpected: a process serves "
                              "within seconds of its start, doing nothing per link first: titles are in the "
                              "database.")
        if answer is None or answer.status_code != 200:
            seen = "no answer" if answer is None else f"the answer {answer.status_code}"
            raise CheckFailed(f"Seen: with {STORED} links stored, GET / got {seen} within {START_WITHIN:g} s of "
                              f"the web process's start; meanwhile the app fetched {_fetched(page, '/stored/')}.\n"
                              "Expected: the web process serves within seconds of its start, doing nothing per "
                              "link first.")
        ready = workers_waiting(redis, list(system.workers.values()),
                                max(0.5, START_WITHIN - (time.monotonic() - started)),
                                give_up=lambda: bool(_hits(page, "/stored/")))
        waited = time.monotonic() - started
        if not ready:
            dead = system.dead()
            why = system.ended(dead[0]) if dead else (f"the worker was not waiting for jobs {waited:.0f} s after its "
                                                      f"start; meanwhile the app fetched {_fetched(page, '/stored/')}.")
            raise CheckFailed(f"Seen: with {STORED} links stored, {why}\nExpected: a worker takes jobs within "
                              "seconds of its start, doing nothing per link first.")
        page.wait_for(lambda: bool(_hits(page, "/stored/")), WATCH)
        if _hits(page, "/stored/"):
            raise CheckFailed(f"Seen: with {STORED} links stored, the processes started and fetched "
                              f"{_fetched(page, '/stored/')} (a cache warmed at start, in the background or "
                              "not).\nExpected: starting does no work per link: titles are in the database.")
    return (f"with {STORED} links stored, the web process served {served:.1f} s after its start and the worker "
            f"waited for jobs after {waited:.1f} s, neither fetching any stored link's page")


class _Get(threading.Thread):
    """GET url from a thread of its own, started at once: `answer` (None if it failed) once `done` is set."""

    def __init__(self, url: str, timeout: float):
        super().__init__(daemon=True)
        self.url, self.timeout = url, timeout
        self.answer: requests.Response | None = None
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        try:
            self.answer = requests.get(self.url, timeout=self.timeout)
        except requests.RequestException:
            pass
        finally:
            self.done.set()


# -- a web process told to stop -------------------------------------------------------------------------------

class _Request(threading.Thread):
    """A request sent at once on a connection of its own (connect and send happen in the constructor, so it is
    "in flight" from the client's side when it returns), its answer read in a thread: the status, or how it
    ended without one."""

    def __init__(self, port: int, path: str, url: str):
        super().__init__(daemon=True)
        self.path = path
        self.status: int | None = None
        self.error = ""
        body = json.dumps({"url": url}).encode()
        self.conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.conn.settimeout(HOLD_LIMIT)
        self.conn.sendall(b"POST /api/links HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        self.start()

    def run(self) -> None:
        received = b""
        try:
            while chunk := self.conn.recv(65536):
                received += chunk
        except socket.timeout:
            self.error = f"no answer within {HOLD_LIMIT:g} s"
        except OSError:
            self.error = "connection reset"
        finally:
            self.conn.close()
        first = received.split(b"\r\n", 1)[0].split()
        if len(first) >= 2 and first[0].startswith(b"HTTP/") and first[1].isdigit():
            self.status = int(first[1])
        elif not self.error:
            self.error = "connection closed without an answer"

    def outcome(self) -> str:
        return f"{self.status}" if self.status is not None else self.error


EXITING_CALLS = {"sys.exit", "os._exit", "os.abort", "exit", "quit", "builtins.exit", "builtins.quit"}
EXITING_RAISES = {"SystemExit", "KeyboardInterrupt"}


def _exits(module: Module, body: ast.AST) -> bool:
    """Does a handler's code end the process (sys.exit, os._exit, raise SystemExit, …)?"""
    for node in ast.walk(body):
        if isinstance(node, ast.Call) and (module.qualified(node.func) or getattr(node.func, "id", "")) in EXITING_CALLS:
            return True
        if isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if getattr(raised, "id", None) in EXITING_RAISES:
                return True
    return False


def exiting_on_sigterm(root: Path) -> list[str]:
    """Where the app makes SIGTERM end a process at once, whatever it is doing: a handler that exits, or the
    signal's default action (set with signal.signal, in any Python file: the app, worker.py, gunicorn.conf.py).
    A server's own handling (gunicorn's, RQ's) finishes the work in hand first; an exit from a handler does not
    (with threads, Python may still wait for them, but a second SIGTERM, which gunicorn's main process sends its
    workers on top of the process manager's, cuts them short)."""
    found = []
    for path in python_files(root):
        module = Module.read(path, root)
        if module is None:
            continue
        functions = {node.name: node for node in ast.walk(module.tree)
                     if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
        for node, name in module.calls():
            if name != "signal.signal" or len(node.args) < 2:
                continue
            signum, handler = node.args[0], node.args[1]
            if module.qualified(signum) != "signal.SIGTERM" and not (
                    isinstance(signum, ast.Constant) and signum.value == 15):
                continue
            where = f"{rel(path, root)}:{node.lineno}"
            if module.qualified(handler) == "signal.SIG_DFL":
                found.append(f"SIGTERM set back to its default action, which ends the process at once, at {where}")
                continue
            body = handler if isinstance(handler, ast.Lambda) else \
                functions.get(getattr(handler, "id", None) or getattr(handler, "attr", None) or "")
            if body is not None and _exits(module, body):
                found.append(f"a SIGTERM handler that exits at once at {where}")
    return found


class _Probe(threading.Thread):
    """A new connection, and a request on it: refused, left unanswered (closed, reset) or served."""

    def __init__(self, port: int, limit: float):
        super().__init__(daemon=True)
        self.port, self.limit = port, limit
        self.result = "not made"

    def run(self) -> None:
        try:
            conn = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        except ConnectionRefusedError:
            self.result = "refused"
            return
        except OSError as exc:
            self.result = f"not made ({exc})"
            return
        conn.settimeout(self.limit)
        try:
            conn.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            first = conn.recv(16)
            self.result = "served" if first.startswith(b"HTTP/") else "closed unanswered"
        except socket.timeout:
            self.result = "unanswered"
        except OSError:
            self.result = "closed unanswered"
        finally:
            conn.close()


@check("disposability.graceful_stop", factor=9, title="SIGTERM: a web process finishes its requests, takes no "
       "new ones, and exits 0", hint="Let gunicorn stop the web process: on SIGTERM it closes its port, lets every "
       "request in flight finish (for up to --graceful-timeout seconds) and exits 0. Do not install a SIGTERM "
       "handler of your own that exits at once (sys.exit, os._exit) or ignores the signal.", timeout=120)
def graceful_stop(ctx: CheckContext) -> str:
    """A web process from the Procfile, without REDIS_URL (creating a link fetches its page in the request), is
    sent IN_FLIGHT link requests, each to a page that holds its answer; once they have all reached the page (or
    ALL_WITHIN seconds after the first did), SIGTERM to every process of it. REACT seconds later a
    new connection is made; then the page answers. Every request sent before the signal is answered 2xx (also
    those still waiting in the queue of its port), the new connection is refused or left unanswered, and the
    process exits 0 within GRACE seconds of its last answer."""
    _need_types(ctx)
    found = exiting_on_sigterm(ctx.path)
    if found:
        raise CheckFailed(f"Seen: {listing(found, 3)}.\nExpected: on SIGTERM a process finishes what it holds before "
                          "it exits: let the server (gunicorn) and the queue's worker (RQ) handle the signal.")
    with TestPage() as page:
        page.hold("/inflight/")
        env = {**REQUIRED_APP_ENV, **database_env(ctx, "graceful"), "SHORTLY_PREVIEW_TOKEN": _token(WEB)}
        set_up(ctx, env)
        try:
            web = ctx.runner.start(env, process_type=WEB)
        except AppFailed as exc:
            raise CheckFailed(f"{exc}\nExpected: the web process starts.") from None
        first = web.get("/", timeout=30)
        if first.status_code != 200:
            raise CheckFailed(f"Seen: GET / answered {first.status_code}.{web.last_words()}\nExpected: 200.")
        try:
            made = [_Request(web.port, f"/inflight/{n}", page.url(f"/inflight/{n}")) for n in range(1, IN_FLIGHT + 1)]
        except OSError as exc:
            raise CheckFailed(f"Seen: a connection to the web process failed ({exc}).{web.last_words()}\n"
                              "Expected: it takes connections on its port.") from None
        arrived = lambda: {path for path, _ in _hits(page, "/inflight/")}  # noqa: E731
        # Every request is sent; the app takes them in as it can (a server with room takes all of them at once).
        page.wait_for(lambda: bool(arrived()) or all(not r.is_alive() for r in made), ARRIVE_WITHIN)
        page.wait_for(lambda: len(arrived()) >= IN_FLIGHT or all(not r.is_alive() for r in made), ALL_WITHIN)
        if not arrived():
            raise CheckFailed(f"Seen: none of {IN_FLIGHT} requests to create a link reached its page within "
                              f"{ARRIVE_WITHIN:g} s.{web.last_words()}\nExpected: without REDIS_URL, the web process "
                              "fetches the preview in the request (the check holds requests in flight that way).")
        inside = arrived()
        held = made  # all sent before the signal: each one is the server's to answer
        web.terminate()
        signalled = time.monotonic()
        wait_until(lambda: not web.running() or any(not r.is_alive() for r in held), REACT, every=0.05)
        probe = _Probe(web.port, HOLD_LIMIT)
        if web.running():
            probe.start()
            wait_until(lambda: not probe.is_alive(), 0.5, every=0.05)  # refused at once, or waiting in line
        page.release()
        for request in held:
            request.join(ANSWER_WITHIN)
        answered = time.monotonic()
        code = web.exited(GRACE)
        if probe.is_alive() or probe.result != "not made":
            probe.join(5)
        took = time.monotonic() - signalled
        dropped = [r for r in held if r.status is None or not 200 <= r.status < 300]
        if dropped:
            taken = [r for r in dropped if r.path in inside]
            waiting = [r for r in dropped if r.path not in inside]
            parts = ([f"{len(taken)} of the {len(inside)} the app was working on (dropped, or answered with an "
                      "error)"] if taken else []) + \
                    ([f"{len(waiting)} still waiting in the queue of its port, never taken in (reset when the "
                      "process stopped)"] if waiting else [])
            raise CheckFailed(f"Seen: SIGTERM came while {len(held)} requests were in flight; these got no 2xx "
                              f"answer: {' and '.join(parts)}.\nExpected: on SIGTERM, the web process answers every "
                              "request sent to it before the signal, then exits. (gunicorn's default sync worker "
                              "takes one request at a time and leaves the others waiting; a gthread worker takes "
                              "each one as it comes.)")
        if probe.result == "served":
            raise CheckFailed(f"Seen: a new connection made {REACT:g} s after SIGTERM was served.\nExpected: on "
                              "SIGTERM the web process takes no new connections (they go to the processes that "
                              "keep running), and only finishes the ones it holds.")
        if code is None:
            raise CheckFailed(f"Seen: the web process was still running {GRACE:g} s after it had answered its "
                              f"last request (SIGTERM came {answered - signalled:.1f} s before that)."
                              f"{web.last_words()}\nExpected: once its requests are done, it exits.")
        if code != 0:
            raise CheckFailed(f"Seen: after SIGTERM the web process exited with code {code}.{web.last_words()}\n"
                              "Expected: exit 0, a clean stop (a process manager counts anything else as a "
                              "crash).")
    new = "refused" if probe.result == "refused" else "not served"
    return (f"SIGTERM with {len(held)} request(s) in flight: each answered {listing(sorted({r.outcome() for r in held}))}, "
            f"a new connection {new}, and the process exited 0, {took:.1f} s after the signal")



# -- workers told to stop, and killed ------------------------------------------------------------------------

def _job_in_hand(system: System, page: TestPage, path: str, name: str) -> str:
    """Make a link to path (held) and wait until worker name is fetching it: the link's code."""
    made = system.web.post("/api/links", json={"url": page.url(path)}, timeout=10)
    code = made.json().get("code") if made.status_code == 201 else None
    if not isinstance(code, str):
        raise CheckFailed(f"Seen: POST /api/links answered {made.status_code}.{system.web.last_words()}\n"
                          "Expected: 201 at once, the preview queued for a worker.")
    worker = system.workers[f"worker {name}"]
    page.wait_for(lambda: bool(_hits(page, path)) or not worker.running(), ARRIVE_WITHIN, every=0.25)
    hits = _hits(page, path)
    if not hits:
        raise CheckFailed(f"Seen: {system.ended(f'worker {name}') if not worker.running() else 'no worker fetched the page of a new link within %g s.' % ARRIVE_WITHIN}"
                          "\nExpected: a worker takes the job off the queue and fetches the page.")
    return code


def _restart(system: System, redis, name: str) -> ServingApp:
    worker = system.add_worker(name)
    if not workers_waiting(redis, [worker], START_WITHIN + DONE_WITHIN):
        raise CheckFailed(f"Seen: {system.ended(f'worker {name}') if not worker.running() else 'a new worker was not waiting for jobs within %g s.' % (START_WITHIN + DONE_WITHIN)}"
                          "\nExpected: a worker started after another one stopped takes jobs.")
    return worker


@check("disposability.worker_stop", factor=9, title="SIGTERM: a worker finishes its job (or hands it back) and "
       "exits 0", hint="On SIGTERM every process of the worker gets the signal, also the fork in which RQ runs "
       "the job, and that fork dies of it mid-job. Let the fork ignore SIGTERM (a Worker subclass whose "
       "setup_work_horse_signals() calls super() and then signal.signal(signal.SIGTERM, signal.SIG_IGN)): RQ's "
       "worker then waits for the job to end before it exits.", timeout=120)
def worker_stop(ctx: CheckContext) -> str:
    """A web and a worker process from the Procfile; a link to a page that holds its answer; once the worker is
    fetching it, SIGTERM to the worker (every one of its processes). REACT seconds later the page answers. The
    worker exits 0 within GRACE seconds; a new worker then starts, and within DONE_WITHIN seconds the link has its
    title: done by the first worker, or handed back and done by the second."""
    _need_types(ctx)
    with redis_server() as redis, TestPage() as page:
        page.hold("/stop/")
        system = System(ctx, redis, ["A"])
        system.warm()
        code = _job_in_hand(system, page, "/stop/1", "A")
        worker = system.workers["worker A"]
        worker.terminate()
        wait_until(lambda: not worker.running(), REACT, every=0.05)
        page.release()
        exit_code = worker.exited(GRACE)
        system.retire("worker A")  # stopped on purpose: from here on, its end is no news
        if exit_code is None:
            raise CheckFailed(f"Seen: the worker was still running {GRACE:g} s after SIGTERM and after its job's "
                              "page had answered.\nExpected: it finishes (or hands back) the job in hand and exits.")
        if exit_code != 0:
            raise CheckFailed(f"Seen: after SIGTERM the worker exited with code {exit_code}.\n"
                              "Expected: exit 0, a clean stop.")
        _restart(system, redis, "B")
        title = system.title(code, page.title, DONE_WITHIN)
        if title != page.title:
            raise CheckFailed(f"Seen: the worker got SIGTERM while it fetched a page and exited 0, but the job was "
                              f"lost: {DONE_WITHIN:g} s after a new worker started, the link still shows the title "
                              f"{title!r}.\nExpected: a worker told to stop finishes the job in hand, or puts it "
                              "back on the queue for the next worker.")
        by = listing(sorted({w for _, w in _hits(page, "/stop/")}))
    return f"SIGTERM mid-job: the worker exited 0, and the job was done (the page fetched by {by})"


@check("disposability.worker_killed", factor=9, title="A worker killed mid-job loses nothing: the job is done "
       "once a worker starts", hint="A worker killed with kill -9 leaves its job \"started\" in Redis, and RQ notices "
       "that only a minute or more later, and then fails it. When worker.py starts, put back on the queue every job "
       "of the queue's started_job_registry whose worker is no longer connected to Redis (RQ names each worker's "
       "connection: see CLIENT LIST). Running a job twice must store the same title.", timeout=120)
def worker_killed(ctx: CheckContext) -> str:
    """A web and a worker process from the Procfile; a link to a page that holds its answer; once the worker is
    fetching it, SIGKILL to every process of the worker. The page then answers, and a new worker starts: within
    DONE_WITHIN seconds the link has its title, and the database holds that one link, once, with it."""
    _need_types(ctx)
    with redis_server() as redis, TestPage() as page:
        page.hold("/killed/")
        system = System(ctx, redis, ["A"])
        system.warm()
        code = _job_in_hand(system, page, "/killed/1", "A")
        system.retire("worker A").kill()
        page.release()
        _restart(system, redis, "B")
        title = system.title(code, page.title, DONE_WITHIN)
        if title != page.title:
            raise CheckFailed(f"Seen: a worker was killed (SIGKILL) while it fetched a page; {DONE_WITHIN:g} s after "
                              f"a new worker started, the link still shows the title {title!r}: the job was lost."
                              "\nExpected: the job of a worker that died mid-way goes back on the queue, and the "
                              "next worker does it.")
        rows = _rows(system.env)
        if rows != [(code, page.title)]:
            raise CheckFailed(f"Seen: after the job ran again, the database holds {listing([f'{c} {t!r}' for c, t in rows], 4)}."
                              f"\nExpected: one link, {code}, with the title {page.title!r}: a job that runs twice "
                              "has the effect of running once.")
        fetched = len(_hits(page, "/killed/"))
    return (f"a worker killed mid-job: a new worker did the job ({'the page fetched %d times' % fetched}), and the "
            "link got its title once")


@check("disposability.runbook", factor=9, title="The runbook says processes start fast and can be stopped any "
       "time", hint="OPS.md: take out \"give it a few minutes\" and \"do not restart during the peak\"; say what "
       "SIGTERM does to a web and a worker process, and what happens to the job of a worker that is killed.")
def runbook(ctx: CheckContext) -> str:
    """OPS.md no longer says the app needs minutes to start or must not be restarted when busy, and says what
    SIGTERM and a kill do (the catalogue's `runbook` of 09_disposability)."""
    return runbook_truth(ctx, "09_disposability")
