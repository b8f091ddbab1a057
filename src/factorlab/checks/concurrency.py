"""Factor VIII, concurrency: the app scales out as processes of two types, `web` and `worker`, with a queue between.

The checks run the app as a process manager does: every line of its Procfile a process of its own (runners:
`process_type`), sharing one database and a private Redis of the check's. The slow part of the work (fetching a
link's preview) must leave the request: the check's test page holds its answer for as long as the check likes,
and each process gets its own SHORTLY_PREVIEW_TOKEN (required since factor III), so the page knows which process
fetched it, on either runner. A web process that answers only once the page has, or that fetches the page itself
(inline, in a thread, in a fork), fails; so do two workers that take the same job, or one that leaves the second
idle. Every process must stay in the foreground: no fork-and-exit, no pid file, by what it does and by a reading
of the code, the scripts and the Procfile.
"""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

from .. import files, procfile
from ..process import port_open, wait_until
from ..runners import AppFailed, ServingApp
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import REQUIRED_APP_ENV, create_link, link
from .attached import database_env, redis_server, set_up, side_by_side, workers_waiting
from .port_binding import SCRIPT_SUFFIXES, _shebang_shell
from .runbook import EXAMPLE, runbook_truth
from .shell import commands
from .source import Module, app_files, env_file_names, environment_reads, python_files, rel
from .text import listing

WEB, WORKER = procfile.WEB, procfile.WORKER
TOKEN = "SHORTLY_PREVIEW_TOKEN"
TOKEN_PREFIX = "factorlab-"
ANSWER_WITHIN = 5.0  # seconds a POST /api/links may take while its page is slow (the page holds it far longer)
PICKUP_WITHIN = 25.0  # seconds for a worker to take a queued job
TITLE_WITHIN = 25.0  # seconds for a title to be stored once its page has answered
SETTLE = 2.0  # seconds every process must keep running once the workers are ready (a daemon's parent exits)
QUIET = 0.5  # seconds the check keeps watching for a job done twice, once every title is in
SHARED_JOBS = 4

# What puts a process in the background, in Python: (qualified name, what it is).
FORKING_CALLS = {
    "os.fork": "os.fork()", "os.forkpty": "os.forkpty()", "os.setsid": "os.setsid()", "os.setpgrp": "os.setpgrp()",
    "os.daemon": "os.daemon()", "pty.fork": "pty.fork()", "daemon.DaemonContext": "daemon.DaemonContext",
    "daemonize.Daemonize": "daemonize.Daemonize",
}
WRITES = {"write", "write_text", "write_bytes", "writelines", "dump"}
PID_TEXT = re.compile(r"(?i)(\.pid|\bpid[-_]?file)$")
# gunicorn's settings that daemonize or write a pid file, in a config file (gunicorn.conf.py) or on a command line.
CONFIG_NAMES = {"daemon": "daemon = True", "pidfile": "a pidfile setting"}
BACKGROUND_PROGRAMS = {"nohup", "setsid", "daemonize", "start-stop-daemon", "disown", "daemon"}
BACKGROUND_OPTIONS = re.compile(r"^(--daemon(ize)?|-D|--pid(file|-file)?(=.*)?|--background|--detach|-d)$")
PID_WORD = re.compile(r"(?i)\.pid\b|\$!")
PID_NAME = re.compile(r"(?i)(^|_)PID(_|$)|PIDFILE")
TRAILING_AMP = re.compile(r"(?<![&>|<])&(?![&>])")


def _types(ctx: CheckContext) -> dict[str, str]:
    try:
        return procfile.read(ctx.path)
    except procfile.ProcfileError as exc:
        raise CheckFailed(f"Seen: {exc}.\nExpected: a Procfile with a `web:` line and a `worker:` line.") from None


def _need_types(ctx: CheckContext) -> dict[str, str]:
    types = _types(ctx)
    missing = [name for name in (WEB, WORKER) if name not in types]
    if missing:
        raise CheckFailed(f"Seen: the Procfile has {listing([f'`{t}:`' for t in types], 4) or 'no'} line(s), and no "
                          f"{' or '.join(f'`{m}:`' for m in missing)} line.\nExpected: one line per process type: "
                          "`web:` serves HTTP on $PORT, `worker:` takes the slow jobs off a queue.")
    return types


@check("concurrency.process_types", factor=8, title="The Procfile names the process types: web and worker",
       hint="Give the slow work a process type of its own: a `worker:` line in the Procfile next to `web:`, e.g. "
            "`worker: python worker.py`, which takes jobs off a queue in the Redis at REDIS_URL (RQ).")
def process_types(ctx: CheckContext) -> str:
    """The Procfile declares a `web` and a `worker` process type, with different commands."""
    types = _need_types(ctx)
    if types[WEB].strip() == types[WORKER].strip():
        raise CheckFailed(f"Seen: the Procfile's web and worker lines run the same command, `{types[WEB]}`.\n"
                          "Expected: two process types with two jobs: web serves HTTP, worker runs queued jobs.")
    return f"the Procfile names {len(types)} process type(s), web and worker among them: web serves, worker runs the queued jobs"


# -- the app as processes ------------------------------------------------------------------------------------------

def _token(name: str) -> str:
    return TOKEN_PREFIX + name.replace(" ", "-")


def _who(headers: dict[str, str]) -> str:
    """Which of the check's processes made a request, from its bearer token: "web", "worker A", …, or "?"."""
    auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
    token = auth.split()[-1] if auth.split() else ""
    return token[len(TOKEN_PREFIX):].replace("-", " ") if token.startswith(TOKEN_PREFIX) else "?"


class System:
    """One web process and named workers from the Procfile, sharing a database and a private Redis."""

    def __init__(self, ctx: CheckContext, redis, workers: list[str], prepare=None):
        """prepare(env): called once the database is set up, before any process starts (to store data)."""
        self.ctx = ctx
        self.redis = redis
        self.env = {**REQUIRED_APP_ENV, **database_env(ctx, "queue"), "REDIS_URL": redis.url()}
        set_up(ctx, self.env)  # one database for all, as the processes of one deploy share theirs
        if prepare is not None:
            prepare(self.env)
        names = [WEB, *(f"worker {name}" for name in workers)]
        started = side_by_side(self._start, names)
        self.web: ServingApp = started[0]
        self.workers: dict[str, ServingApp] = dict(zip(names[1:], started[1:]))

    def _start(self, name: str) -> ServingApp:
        kind = WEB if name == WEB else WORKER
        try:
            return self.ctx.runner.start({**self.env, TOKEN: _token(name)}, process_type=kind, listens=kind == WEB)
        except AppFailed as exc:
            raise CheckFailed(f"{exc}\n(the {name} process, from the Procfile's `{kind}:` line)\nExpected: the "
                              f"{kind} process starts with only what requirements.txt installs.") from None

    def add_worker(self, name: str) -> ServingApp:
        """Start one more worker (a restart, as a process manager does: same config, a process of its own)."""
        app = self._start(f"worker {name}")
        self.workers[f"worker {name}"] = app
        return app

    def retire(self, name: str) -> ServingApp:
        """Take a worker out of the system (the check stops or kills it on purpose): dead() no longer counts it.
        The runner still stops it with the check."""
        return self.workers.pop(name)

    def dead(self) -> list[str]:
        """The processes that have exited (each one's name)."""
        return [name for name, app in [(WEB, self.web), *self.workers.items()] if not app.running()]

    def ended(self, name: str, before: str = "") -> str:
        """How a process that exited ended, as a sentence (after the words before), and its last words."""
        app = self.web if name == WEB else self.workers[name]
        code = app.stop()
        background = " (so does a process that forks itself into the background)" if code == 0 else ""
        return f"{before}the {name} process exited with code {code}{background}.{app.last_words()}"

    def warm(self) -> None:
        """The web process's first request (a server may import the app only then), and workers that have started:
        each waiting on the queue, once the app's import (and whatever it does at start) is behind it. A worker
        blocked on a Redis command (RQ's BLPOP, a home-made BRPOP) says so; one that polls does not, and the
        check goes on after a while (attached.workers_waiting)."""
        answer = self.web.get("/", timeout=30)
        if answer.status_code != 200:
            raise CheckFailed(f"Seen: GET / answered {answer.status_code}.{self.web.last_words()}\n"
                              "Expected: 200, the app serving.")
        workers_waiting(self.redis, list(self.workers.values()))

    def title(self, code: str, wanted: str, timeout: float = TITLE_WITHIN) -> str:
        """Wait until the link shows the wanted title: what it shows in the end."""
        seen = {"title": None}

        def done() -> bool:
            seen["title"] = (link(self.web, code) or {}).get("title")
            return seen["title"] == wanted or bool(self.dead())

        wait_until(done, timeout, every=0.1)
        return seen["title"]


def _hits(page: TestPage, prefix: str) -> list[tuple[str, str]]:
    """(path, who) of every request to the page under prefix, in order."""
    with page.arrived:
        return [(path, _who(headers)) for path, headers in page.requests if path.startswith(prefix)]


def _not_the_web(hits: list[tuple[str, str]], how: str) -> None:
    by_web = [path for path, who in hits if who == WEB]
    if by_web:
        raise CheckFailed(f"Seen: the web process fetched the preview page itself ({how}).\nExpected: the web "
                          "process only queues the job; a worker process, started from the Procfile's `worker:` "
                          "line, fetches the page.")
    strangers = [path for path, who in hits if who not in (WEB, "?") and not who.startswith(WORKER)]
    unknown = [path for path, who in hits if who == "?"] + strangers
    if unknown:
        raise CheckFailed("Seen: the preview page was fetched without the SHORTLY_PREVIEW_TOKEN of the process "
                          "that fetched it.\nExpected: each process sends the token its own environment holds "
                          "(factor III), so the check can tell which process did the work.")


@check("concurrency.slow_preview", factor=8, title="A slow preview page never holds up the request: a worker "
       "fetches it", hint="Do not fetch the preview while the request waits. Queue a job instead (RQ: "
       "`Queue(connection=redis.Redis.from_url(REDIS_URL)).enqueue(\"shortly.fetch_preview\", code)`), answer at "
       "once with an empty title, and let the worker process fetch the page and store the title.", timeout=90)
def slow_preview(ctx: CheckContext) -> str:
    """With one web and one worker process from the Procfile (a database and a Redis they share), a link is made to
    a page that holds its answer back: POST /api/links answers 201 within ANSWER_WITHIN seconds while the page has
    not answered yet; the page was fetched by the worker (its token), never by the web process; once the page
    answers, the link gets its title, and both processes are still running."""
    _need_types(ctx)
    with redis_server() as redis, TestPage() as page:
        page.hold("/slow/")
        system = System(ctx, redis, ["A"])
        system.warm()
        started = time.monotonic()
        try:
            made = system.web.post("/api/links", json={"url": page.url("/slow/1")}, timeout=ANSWER_WITHIN)
        except Exception:  # requests' timeout (or the connection dropped): the request waited on the page
            made = None
        took = time.monotonic() - started
        _not_the_web(_hits(page, "/slow/"), "while the request waited" if made is None else "in the background")
        if made is None or made.status_code != 201:
            raise CheckFailed(f"Seen: POST /api/links to a slow page {'did not answer within %g s' % ANSWER_WITHIN if made is None else 'answered %d' % made.status_code}."
                              f"{system.web.last_words()}\nExpected: 201 at once, the preview left to a worker.")
        code = made.json().get("code") if "json" in made.headers.get("Content-Type", "") else None
        if not isinstance(code, str):
            raise CheckFailed("Seen: POST /api/links answered 201 without the new link's code.\nExpected: the new "
                              "link as JSON, with its code.")
        page.wait_for(lambda: _hits(page, "/slow/") or system.dead(), PICKUP_WITHIN, every=0.25)
        hits = _hits(page, "/slow/")
        _not_the_web(hits, "after answering")
        if not hits:
            why = system.ended(system.dead()[0]) if system.dead() else \
                f"no process fetched the page within {PICKUP_WITHIN:g} s."
            raise CheckFailed(f"Seen: {why}\nExpected: the worker takes the job off the queue and fetches the page.")
        page.release()
        title = system.title(code, page.title)
        if title != page.title:
            dead = system.dead()
            raise CheckFailed(f"Seen: {system.ended(dead[0]) if dead else f'the link still shows the title {title!r}.'}"
                              f"\nExpected: the worker stores the title {page.title!r} once the page answers.")
        dead = system.dead()
        if dead:
            raise CheckFailed(f"Seen: {system.ended(dead[0], 'once the job was done, ')}\nExpected: every process "
                              "keeps running, in the foreground, until it is stopped.")
    return (f"the link was made in {took:.2f} s while its page held back; the worker fetched it, and the title "
            "followed once the page answered")


@check("concurrency.workers_share", factor=8, title="Two workers share the queue: each job done once, by one of "
       "them", hint="Use a real queue (RQ on the Redis at REDIS_URL), not a loop that looks for links without a "
       "title: a queue hands each job to exactly one free worker, so two workers never fetch the same page and "
       "neither waits while the other is busy.", timeout=120)
def workers_share(ctx: CheckContext) -> str:
    """With one web and two worker processes (A and B) from the Procfile, four links are made to pages that hold
    their answers: while A is busy with a page, B takes another (both tokens seen within PICKUP_WITHIN); once the
    pages answer, every link gets its title, and each page was fetched exactly once, by a worker (also for QUIET
    seconds after)."""
    _need_types(ctx)
    with redis_server() as redis, TestPage() as page:
        page.hold("/share/")
        system = System(ctx, redis, ["A", "B"])
        system.warm()
        codes = [create_link(system.web, page.url(f"/share/{n}"), where="the web process")["code"]
                 for n in range(1, SHARED_JOBS + 1)]

        def both() -> bool:
            return {who for _, who in _hits(page, "/share/")} >= set(system.workers) or bool(system.dead())

        page.wait_for(both, PICKUP_WITHIN, every=0.25)
        hits = _hits(page, "/share/")
        _not_the_web(hits, "while the request waited or after")
        _done_once(hits)
        dead = system.dead()
        if dead:
            raise CheckFailed(f"Seen: {system.ended(dead[0])}\nExpected: both workers keep taking jobs.")
        busy = sorted({who for _, who in hits})
        if len(busy) < 2:
            raise CheckFailed(f"Seen: with {SHARED_JOBS} jobs queued and the first page slow, "
                              f"{listing(busy) or 'no worker'} fetched pages within {PICKUP_WITHIN:g} s and "
                              f"{listing(sorted(set(system.workers) - set(busy)))} none.\nExpected: while one "
                              "worker waits on a page, the other takes the next job off the queue.")
        page.release()
        for code in codes:
            title = system.title(code, page.title)
            if title != page.title:
                dead = system.dead()
                raise CheckFailed(f"Seen: {system.ended(dead[0]) if dead else f'a link still shows the title {title!r}.'}"
                                  f"\nExpected: every queued job is done: each link gets the title {page.title!r}.")
        page.wait_for(lambda: len(_hits(page, "/share/")) > SHARED_JOBS, QUIET)
        hits = _hits(page, "/share/")
        _not_the_web(hits, "after answering")
        _done_once(hits)
        spread = {who: sum(1 for _, w in hits if w == who) for who in sorted(system.workers)}
    return (f"{SHARED_JOBS} jobs, each done once: " + ", ".join(f"{who} did {n}" for who, n in spread.items()))


def _done_once(hits: list[tuple[str, str]]) -> None:
    seen: dict[str, list[str]] = {}
    for path, who in hits:
        seen.setdefault(path, []).append(who)
    twice = {path: whos for path, whos in seen.items() if len(whos) > 1}
    if twice:
        path, whos = next(iter(twice.items()))
        raise CheckFailed(f"Seen: the page of one link was fetched {len(whos)} times, by {listing(whos)}.\n"
                          "Expected: each job done once: a queue hands a job to one worker, never to two.")


# -- the foreground ------------------------------------------------------------------------------------------------

def _writes(module: Module, node: ast.Call) -> bool:
    """Does the call write to a file: f.write(…), path.write_text(…), json.dump(…), print(…, file=f)?"""
    name = node.func.attr if isinstance(node.func, ast.Attribute) else (module.qualified(node.func) or "")
    if name.rsplit(".", 1)[-1] == "print":
        return any(k.arg == "file" for k in node.keywords)
    return name.rsplit(".", 1)[-1] in WRITES


def background_in_python(module: Module, path: str) -> list[str]:
    """Where Python code forks itself into the background or writes a pid file, in the order of its lines."""
    found: list[tuple[int, str]] = []
    for node, name in module.calls():
        if name in FORKING_CALLS:
            found.append((node.lineno, f"{FORKING_CALLS[name]} at {path}:{node.lineno}"))
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call) and _writes(module, node) and any(
                isinstance(inner, ast.Call) and module.qualified(inner.func) == "os.getpid" for inner in ast.walk(node)):
            found.append((node.lineno, f"its pid written to a file at {path}:{node.lineno}"))
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and PID_TEXT.search(node.value.strip()):
            found.append((node.lineno, f"a pid file ({node.value.strip()!r}) at {path}:{node.lineno}"))
        if isinstance(node, ast.Assign) and node in module.tree.body:
            for target in node.targets:
                name = getattr(target, "id", None)
                if name == "daemon" and isinstance(node.value, ast.Constant) and node.value.value is True \
                        or name == "pidfile" and not (isinstance(node.value, ast.Constant) and not node.value.value):
                    found.append((node.lineno, f"gunicorn's {CONFIG_NAMES[name]} at {path}:{node.lineno}"))
    return list(dict.fromkeys(text for _, text in sorted(found)))


def background_in_script(text: str, path: str) -> list[str]:
    """Where a shell script or a Procfile puts a process in the background or keeps a pid file."""
    found = []
    for command in commands(text):
        where = f"{path}:{command.line}"
        words = [w.strip("'\"") for w in command.argv]
        programs = [w.rsplit("/", 1)[-1] for w in words]
        wrapper = next((p for p in programs[:3] if p in BACKGROUND_PROGRAMS), None)
        if wrapper:
            found.append(f"{wrapper} at {where}")
        option = next((w for w in words[1:] if BACKGROUND_OPTIONS.match(w)), None)
        if option and not (option == "-d" and programs[0] not in ("gunicorn", "rq", "uwsgi", "waitress-serve")):
            found.append(f"{option} at {where}")
        pid = next((w for w in [*words, *command.writes] if PID_WORD.search(w)), None)
        if pid:
            found.append(f"a pid file ({pid}) at {where}")
    for number, line in enumerate(text.splitlines(), 1):
        code = re.sub(r"'[^']*'|\"(\\.|[^\"\\])*\"", "''", line)
        code = re.sub(r"(^|\s)#.*$", "", code)
        if TRAILING_AMP.search(code):
            found.append(f"a command sent to the background (&) at {path}:{number}")
    return list(dict.fromkeys(found))


def background_code(root: Path) -> list[str]:
    """Every place the app's code, scripts or Procfile fork into the background or keep a pid file."""
    found = []
    for path in python_files(root):
        module = Module.read(path, root)
        if module is not None:
            found += background_in_python(module, rel(path, root))
    for path in app_files(root):
        if path.name == procfile.NAME or path.suffix in SCRIPT_SUFFIXES or _shebang_shell(path):
            found += background_in_script(path.read_text(errors="replace"), rel(path, root))
    return found


def _pid_files(app: ServingApp) -> list[str]:
    """Files the process wrote in its folder that are pid files: named so, or holding a number alone."""
    return sorted(name for name, content in app.written().items()
                  if name.endswith(".pid") or re.fullmatch(rb"\s*\d{1,8}\s*", content))


@check("concurrency.foreground", factor=8, title="Every process runs in the foreground: no daemon, no pid file",
       hint="Take out --daemon, the double fork, nohup … & and the pid file: a process manager (honcho, systemd, a "
            "platform) starts each process, watches it and stops it. The Procfile's commands run in the "
            "foreground and print to the terminal.", timeout=90)
def foreground(ctx: CheckContext) -> str:
    """Read: no Python file forks or detaches (os.fork, os.setsid, daemon.DaemonContext, …) or writes a pid file;
    no script or Procfile line uses nohup, setsid, a trailing &, --daemon or a pid file. Run: the web and the
    worker process, started from the Procfile, serve and do a job, and are still the running processes after it,
    having written no pid file."""
    found = background_code(ctx.path)
    if found:
        raise CheckFailed(f"Seen: the app puts itself in the background or keeps a pid file: {listing(found, 3)}.\n"
                          "Expected: every process runs in the foreground, as its process manager started it.")
    _need_types(ctx)
    with redis_server() as redis, TestPage() as page:
        system = System(ctx, redis, ["A"])
        forked = system.dead()
        if not forked:
            system.warm()
            ready = time.monotonic()
            code = create_link(system.web, page.url("/fg/1"), where="the web process")["code"]
            system.title(code, page.title)
            # A process that forks into the background exits soon after its child is ready: keep watching until
            # SETTLE seconds have passed since then (the work above usually took most of them).
            wait_until(lambda: bool(system.dead()), max(0.0, SETTLE - (time.monotonic() - ready)), every=0.1)
            forked = system.dead()
        if forked:
            app = system.web if forked[0] == WEB else system.workers[forked[0]]
            serving = forked[0] == WEB and port_open(app.port)
            still = "while its port still served (it forked into the background), " if serving else ""
            raise CheckFailed(f"Seen: {system.ended(forked[0], still)}\n"
                              "Expected: the process the Procfile's line started keeps running in the foreground.")
        processes = [(WEB, system.web), *system.workers.items()]
        for _, app in processes:
            app.stop()
        pid_files = [f"{f} (the {name} process)" for name, app in processes for f in _pid_files(app)]
    if pid_files:
        raise CheckFailed(f"Seen: a pid file was written: {listing(pid_files, 3)}.\nExpected: no pid file: the "
                          "process manager knows the processes it started.")
    return "web and worker ran in the foreground from start to stop, and wrote no pid file"


@check("concurrency.runbook", factor=8, title="The runbook says how the processes are run and scaled",
       hint="OPS.md: describe the web and worker process types, how a process manager (honcho: "
            "`honcho start -c web=2,worker=2`; systemd on a box) runs and scales them, and take out --daemon, "
            "nohup and the pid file.")
def runbook(ctx: CheckContext) -> str:
    """OPS.md no longer runs the app with --daemon, nohup or a pid file, and says how the processes are run: the
    worker process type and a process manager (the catalogue's `runbook` of 08_concurrency); .env.example sets no
    pid file the app does not read."""
    said = runbook_truth(ctx, "08_concurrency")
    example = ctx.path / EXAMPLE
    names = env_file_names(files.text_of(example) or "") if example.is_file() else set()
    stale = sorted(name for name in names if PID_NAME.search(name) and name not in environment_reads(ctx.path))
    if stale:
        raise CheckFailed(f"Seen: {EXAMPLE} still sets {listing(stale)}, a pid file that nothing reads.\n"
                          f"Expected: {EXAMPLE} lists what the app reads now: no pid file.")
    return said

