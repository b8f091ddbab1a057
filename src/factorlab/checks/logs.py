"""Factor XI, logs: the app writes its log as an event stream, and never routes or stores it.

An event stream is one event per line on stdout (JSON here: a time, a level, the event's name and its fields),
written as it happens; whoever runs the process collects it (honcho interleaves the processes' streams on a
laptop; journald, a platform or a log router on the servers). The gaps the checks close:
- a log file, anywhere: read as code (a logging FileHandler in any spelling, basicConfig's filename, a dictConfig
  or an ini file naming one, structlog writing to a file, gunicorn's log-file options, a Procfile line that
  redirects its output), and in the run of the event stream's check, where the processes must write no file;
- a stream that is not events: every request the web process serves is exactly one event on its stdout, and so is
  every job a worker runs; a line about the app's work that is not an event (a library's own format, a sentence),
  or an event that only shows up once the process has stopped (buffered), fails;
- an error that is not an event: a request that fails, and a job that fails, each leave an event at error level
  that names the error, with no bare traceback lines around it;
- the runbook: OPS.md says where the stream goes and how to read it, and no longer sends anyone to a log file.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from .. import procfile
from ..process import wait_until
from ..runners import ServingApp
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import REQUIRED_APP_ENV, create_link, queued_title
from .attached import postgres_database, procfile_types, redis_server, set_up, start_types, workers_waiting
from .runbook import EXAMPLE, runbook_truth
from .source import Module, constant_text, env_values, python_files, rel, text_files
from .text import listing, steady

VARIABLE = "DATABASE_URL"
PAGE_TITLE = "A page worth a log line"
EVENT_WITHIN = 5.0  # seconds for an event to reach the stream once what it tells of is done (a buffer holds it)
ERROR_WITHIN = 20.0  # seconds for a failed request and a failed job to show up in the streams
STOP_WITHIN = 15.0  # seconds for a process to exit once told to stop (SIGTERM): its output is then complete
TRACEBACK = "Traceback (most recent call last)"
# What tells of the check's database error outside an event: the error's names, a traceback or its frames.
ERROR_WORDS = (TRACEBACK, "RaiseException", "InternalError")
FRAME = re.compile(r'^\s*File "[^"]+", line \d+')

# Where a log goes to a file: logging's handlers, and the structlog factories that take a file.
FILE_HANDLERS = {"logging.FileHandler", "logging.handlers.RotatingFileHandler",
                 "logging.handlers.TimedRotatingFileHandler", "logging.handlers.WatchedFileHandler"}
STREAM_HANDLERS = {"logging.StreamHandler"}
STRUCTLOG_FILES = {"structlog.PrintLoggerFactory", "structlog.WriteLoggerFactory", "structlog.BytesLoggerFactory",
                   "structlog.PrintLogger", "structlog.WriteLogger", "structlog.BytesLogger",
                   "structlog.processors.PrintLoggerFactory"}
OPENERS = {"open", "builtins.open", "io.open", "codecs.open", "os.open", "os.fdopen"}
STD_STREAMS = {"sys.stdout", "sys.stderr", "sys.__stdout__", "sys.__stderr__", "sys.stdout.buffer",
               "sys.stderr.buffer"}
CONFIG_READERS = {"logging.config.dictConfig", "logging.config.fileConfig", "logging.config.listen"}
# Handlers that send the log somewhere themselves: routing the stream is the environment's job, not the app's.
ROUTING_HANDLERS = {"logging.handlers.SysLogHandler", "logging.handlers.SocketHandler",
                    "logging.handlers.DatagramHandler", "logging.handlers.HTTPHandler", "logging.handlers.SMTPHandler",
                    "logging.handlers.NTEventLogHandler"}
# gunicorn's settings (a config file, any name: `-c`) and options: a path other than the process's own streams.
GUNICORN_FILE_SETTINGS = {"accesslog", "errorlog", "logfile"}
GUNICORN_CONFIG_SETTINGS = {"logconfig", "logconfig_dict", "logconfig_json"}
STREAM_PATHS = {"-", "/dev/stdout", "/dev/stderr", "/proc/self/fd/1", "/proc/self/fd/2", "/dev/fd/1", "/dev/fd/2"}
GUNICORN_FILE_OPTIONS = re.compile(r"(?<!\S)--(access-logfile|error-logfile|log-file)(=|\s+)(\S+)")
REDIRECT = re.compile(r"(?<![<>&|0-9])(&>>?|[12]?>>?)\s*(?!&)(\S+)|\|&?\s*tee\b")
STD_FDS = {1, 2}
FILE_WORDS = re.compile(r"FileHandler\b")
LOG_NAME = re.compile(r"(?i)\.log(\.\d+)?$|(^|/)logs?/")  # a path that is a log file, or in a log folder

# An event: a JSON object on a line of its own, with a time, a level and what happened.
TIME_KEYS = ("timestamp", "time", "ts", "@timestamp", "asctime", "datetime", "date", "t", "created")
NESTED = ("record",)  # where some libraries put the fields (loguru's serialize=True: {"text": …, "record": {…}})
LEVEL_KEYS = ("level", "levelname", "severity", "log.level", "lvl", "loglevel", "log_level", "level_name")
EVENT_KEYS = ("event", "message", "msg", "@message", "event_name")
LEVELS = {"trace": 5, "debug": 10, "info": 20, "notice": 25, "warn": 30, "warning": 30, "error": 40,
          "exception": 40, "err": 40, "critical": 50, "crit": 50, "fatal": 50, "alert": 50, "emergency": 50}
ERROR_LEVEL = 40
HTTP_LINE = re.compile(r"^(GET|POST|HEAD|PUT|PATCH|DELETE|OPTIONS)\s+(\S+)(\s+HTTP/\d(\.\d)?)?$")


# -- reading the code ------------------------------------------------------------------------------------------

def _std_stream(module: Module, node: ast.AST | None) -> bool:
    return node is None or (module.qualified(node) or "") in STD_STREAMS \
        or isinstance(node, ast.Constant) and node.value is None


def _a_std_fd(module: Module, node: ast.AST | None) -> bool:
    """Is node the process's stdout or stderr as a file descriptor or a path (1, sys.stdout.fileno(),
    "/dev/stdout")?"""
    if isinstance(node, ast.Constant):
        return node.value in STD_FDS or node.value in STREAM_PATHS
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "fileno" \
        and _std_stream(module, node.func.value)


def _opened(module: Module, node: ast.AST | None) -> bool:
    """Is node a file opened in the code: open(...) (or Path(...).open(...)), or a name bound to one? Opening the
    process's own stdout (open(sys.stdout.fileno(), "w", buffering=1)) is not a file."""
    if isinstance(node, ast.Call):
        name = module.qualified(node.func) or ""
        if name in OPENERS and node.args and _a_std_fd(module, node.args[0]):
            return False
        return name in OPENERS or isinstance(node.func, ast.Attribute) and node.func.attr in ("open", "open_text")
    if isinstance(node, ast.Name):
        return any(isinstance(n, ast.Assign) and _opened(module, n.value) and
                   any(isinstance(t, ast.Name) and t.id == node.id for t in n.targets)
                   for n in ast.walk(module.tree))
    if isinstance(node, ast.withitem):
        return _opened(module, node.context_expr)
    return False


def _argument(call: ast.Call, position: int, keyword: str) -> ast.AST | None:
    found = next((k.value for k in call.keywords if k.arg == keyword), None)
    if found is None and len(call.args) > position and not isinstance(call.args[position], ast.Starred):
        found = call.args[position]
    return found


def _names_a_file_handler(module: Module, node: ast.AST) -> bool:
    """Does a logging config (a dict, a name bound to one) name a file handler or a filename?"""
    for part in ast.walk(node):
        text = constant_text(part)
        if text is not None and FILE_WORDS.search(text):
            return True
        if isinstance(part, ast.Dict) and any(constant_text(k) == "filename" for k in part.keys if k is not None):
            return True
        if isinstance(part, ast.Call) and any(k.arg == "filename" for k in part.keywords):
            return True
    if isinstance(node, ast.Name):
        for bound in ast.walk(module.tree):
            if isinstance(bound, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id
                                                     for t in bound.targets) and _names_a_file_handler(module, bound.value):
                return True
    return False


def python_log_files(module: Module, path: str) -> list[str]:
    """Where one module sends a log to a file: 'file:line: what'. The deploy tool (release.py) may append to its
    own files."""
    found = []
    tool = path == "release.py"

    def say(node: ast.AST, what: str) -> None:
        found.append(f"{path}:{node.lineno}: {what}")

    for node in ast.walk(module.tree):
        if isinstance(node, ast.Dict):  # a logging config, wherever it is and whoever reads it: by its shape
            keys = {constant_text(k) for k in node.keys if k is not None}
            kind = next((constant_text(v) for k, v in zip(node.keys, node.values)
                         if k is not None and constant_text(k) == "class"), None)
            if kind and FILE_WORDS.search(kind) or "class" in keys and "filename" in keys:
                say(node, f"a logging config's handler {kind or ''} with a file".replace("  ", " "))
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                if (module.qualified(base) or "") in FILE_HANDLERS:
                    say(node, f"class {node.name}({ast.unparse(base)})")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                name = module.qualified(target) if isinstance(target, ast.Attribute) else None
                if name in ("sys.stdout", "sys.stderr") and not _std_stream(module, node.value):
                    say(node, f"{ast.unparse(target)} = {ast.unparse(node.value)[:60]}")
                if isinstance(target, ast.Name) and target.id in GUNICORN_FILE_SETTINGS and node in module.tree.body:
                    value = constant_text(node.value)
                    if not (isinstance(node.value, ast.Constant) and node.value.value is None) \
                            and value not in STREAM_PATHS:
                        say(node, f"{target.id} = {ast.unparse(node.value)[:60]} (gunicorn's setting)")
                if isinstance(target, ast.Name) and target.id in GUNICORN_CONFIG_SETTINGS and node in module.tree.body \
                        and _names_a_file_handler(module, node.value):
                    say(node, f"{target.id} = … (a logging config for gunicorn naming a file)")
        if not isinstance(node, ast.Call):
            continue
        name = module.qualified(node.func) or ""
        opener = name in OPENERS or isinstance(node.func, ast.Attribute) and node.func.attr == "open" \
            and name not in STRUCTLOG_FILES
        if opener and not tool:
            method = name not in OPENERS  # Path(...).open(mode): the path is the owner's, the mode comes first
            owner = node.func.value if method else None
            target = (owner.args[0] if isinstance(owner, ast.Call) and owner.args else None) if method else \
                (node.args[0] if node.args else None)
            mode_node = _argument(node, 0 if method else 1, "mode")
            mode = constant_text(mode_node) if mode_node is not None else None
            paths = module.constant_values(target) if target is not None else []
            if mode and "a" in mode:
                say(node, f"{ast.unparse(node)[:60]}: a file opened for appending, a log by another name")
                continue
            if any(LOG_NAME.search(p) for p in paths):
                say(node, f"{ast.unparse(node)[:60]}")
                continue
        if name in FILE_HANDLERS:
            say(node, f"{ast.unparse(node.func)}(...)")
        elif name in ROUTING_HANDLERS:
            say(node, f"{ast.unparse(node.func)}(...): the app routes its log itself")
        elif name == "os.dup2" and len(node.args) >= 2 and _a_std_fd(module, node.args[1]):
            say(node, f"{ast.unparse(node)[:60]}: the process's stdout or stderr made a file")
        elif name == "os.open" and any((module.qualified(n) or "") == "os.O_APPEND" for n in ast.walk(node)):
            say(node, f"{ast.unparse(node)[:60]}: a file opened for appending, a log by another name")
        elif name in STREAM_HANDLERS and _opened(module, _argument(node, 0, "stream")):
            say(node, f"{ast.unparse(node.func)}({ast.unparse(_argument(node, 0, 'stream'))[:50]})")
        elif name == "logging.basicConfig":
            filename = next((k.value for k in node.keywords if k.arg == "filename"), None)
            stream = next((k.value for k in node.keywords if k.arg == "stream"), None)
            if filename is not None and constant_text(filename) != "" and \
                    not (isinstance(filename, ast.Constant) and filename.value is None):
                say(node, "logging.basicConfig(filename=...)")
            elif stream is not None and _opened(module, stream):
                say(node, "logging.basicConfig(stream=<a file>)")
        elif name in CONFIG_READERS and node.args:
            if name != "logging.config.dictConfig" or _names_a_file_handler(module, node.args[0]):
                say(node, f"{ast.unparse(node.func)}(...) naming a file handler" if name.endswith("dictConfig")
                    else f"{ast.unparse(node.func)}(...)")
        elif name in STRUCTLOG_FILES:
            target = _argument(node, 0, "file")
            if target is not None and not _std_stream(module, target):
                say(node, f"{ast.unparse(node.func)}(file={ast.unparse(target)[:50]})")
        elif name in ("contextlib.redirect_stdout", "contextlib.redirect_stderr") and node.args \
                and not _std_stream(module, node.args[0]):
            say(node, f"{ast.unparse(node.func)}({ast.unparse(node.args[0])[:50]})")
    return found


def log_files(root: Path) -> list[str]:
    """Where the app's code, config and Procfile send a log to a file, read (never run): 'file:line: what'."""
    found = []
    for path in python_files(root):
        module = Module.read(path, root)
        if module is not None:
            found += python_log_files(module, rel(path, root))
    for path, text in text_files(root):
        name = rel(path, root)
        if path.suffix in (".ini", ".cfg", ".conf", ".toml", ".yaml", ".yml", ".json") and FILE_WORDS.search(text):
            line = text.count("\n", 0, FILE_WORDS.search(text).start()) + 1
            found.append(f"{name}:{line}: a logging config with a file handler")
    try:
        lines = procfile.read(root)
    except procfile.ProcfileError:
        lines = {}
    for kind, command in lines.items():
        for option in GUNICORN_FILE_OPTIONS.finditer(command):
            if option[3] not in STREAM_PATHS:
                found.append(f"Procfile ({kind}): --{option[1]} {option[3]}")
        redirect = REDIRECT.search(command)
        if redirect:
            found.append(f"Procfile ({kind}): `{redirect.group(0).strip()}`, its output sent away from the stream")
    return found


# -- reading the stream ----------------------------------------------------------------------------------------

def _leaves(value) -> list:
    """Every value inside an event (nested objects and lists opened)."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _field(event: dict, keys: tuple[str, ...]):
    for place in [event, *(event[n] for n in NESTED if isinstance(event.get(n), dict))]:
        for key in keys:
            if key in place:
                return place[key]
            head, _, rest = key.partition(".")
            if rest and isinstance(place.get(head), dict) and rest in place[head]:
                return place[head][rest]
    return None


def level_of(event: dict) -> int | None:
    value = _field(event, LEVEL_KEYS)
    if isinstance(value, dict):  # {"name": "INFO", "no": 20}
        value = value.get("name", value.get("no"))
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    return LEVELS.get(str(value).strip().lower()) if value is not None else None


def event_of(line: str) -> tuple[dict | None, str]:
    """(the event a line is, or None; what is missing when it is JSON but not an event)."""
    text = line.strip()
    if not text.startswith("{"):
        return None, ""
    try:
        event = json.loads(text)
    except ValueError:
        return None, ""
    if not isinstance(event, dict):
        return None, ""
    missing = [what for what, keys in (("a time", TIME_KEYS), ("an event or message", EVENT_KEYS))
               if _field(event, keys) in (None, "")]
    if level_of(event) is None:
        missing.append("a level")
    return (None, " and ".join(missing)) if missing else (event, "")


class Stream:
    """What one process printed, read as an event stream: the events, and the lines that are not events."""

    def __init__(self, name: str, output: str):
        self.name = name
        self.events: list[dict] = []
        self.lines: list[tuple[str, dict | None]] = []
        self.incomplete: list[tuple[str, str]] = []  # (line, what it lacks): JSON, but not an event
        for line in output.splitlines():
            event, missing = event_of(line)
            self.lines.append((line, event))
            if event is not None:
                self.events.append(event)
            elif missing:
                self.incomplete.append((line, missing))

    def about_path(self, path: str) -> list[dict]:
        """The events with a field that is the request's path (/x, /x?q, a URL of it, or 'GET /x HTTP/1.1')."""
        return [e for e in self.events if any(_is_path(v, path) for v in _leaves(e))]

    def about(self, value: str) -> list[dict]:
        """The events with a field that is value itself (a link's code, as a field of its own)."""
        return [e for e in self.events if any(v == value for v in _leaves(e))]

    def mentioning(self, text: str) -> list[dict]:
        return [e for e in self.events if text in json.dumps(e, ensure_ascii=False)]

    def not_events(self, *texts: str, pattern: re.Pattern | None = None) -> list[str]:
        """The lines that are not events and mention any of texts (or match pattern)."""
        return [line for line, event in self.lines if event is None
                and (any(t in line for t in texts) or pattern is not None and pattern.search(line))]


def _is_path(value, path: str) -> bool:
    """Is value the request's path: itself, with a query, as a URL, or a word of a text ('GET /x HTTP/1.1', an
    access log's request line)?"""
    if not isinstance(value, str):
        return False
    for word in value.split():
        if "://" in word:
            word = urlsplit(word).path or "/"
        if word == path or word.split("?", 1)[0] == path:
            return True
    return False


def _quote(line: str, named: dict[str, str] | None = None, limit: int = 160) -> str:
    """A line as a message quotes it: what varies from run to run (times, ids, pids, the check's codes) named."""
    line = line.strip()
    for value, name in (named or {}).items():
        line = line.replace(value, name)
    line = steady(line)
    return line if len(line) <= limit else line[:limit] + "…"


# -- running the app -------------------------------------------------------------------------------------------

def _processes(ctx: CheckContext, env: dict[str, str], redis) -> list[ServingApp]:
    """The Procfile's web and worker, side by side, on env; once the worker waits for jobs."""
    return start_types(ctx, env, redis, [procfile.WEB, procfile.WORKER],
                       "starts with only what requirements.txt installs")


def _stop(*apps: ServingApp) -> None:
    """SIGTERM, as a process manager stops them, and wait: what they printed is then complete. The check's idle
    keep-alive connections are closed first (gunicorn would wait for them)."""
    for app in apps:
        app.client.close()
        app.terminate()
    for app in apps:
        if app.exited(STOP_WITHIN) is None:
            app.kill()


def _written(web: ServingApp, worker: ServingApp) -> None:
    for name, app in (("web", web), ("worker", worker)):
        files = sorted(app.written())
        if files:
            raise CheckFailed(f"Seen: the {name} process wrote {listing(files)} while it ran.\nExpected: no file "
                              "at all: the log is a stream on stdout, collected by whatever runs the process.")


def _env(url: str, redis) -> dict[str, str]:
    return {**REQUIRED_APP_ENV, VARIABLE: url, "REDIS_URL": redis.url(), "SHORTLY_LOG_LEVEL": "INFO"}


@check("logs.no_log_file", factor=11, title="No log file in the code, its config or the Procfile",
       hint="Take out the RotatingFileHandler (and SHORTLY_LOG_FILE): give the logging a single StreamHandler on "
       "sys.stdout instead, set on the root logger so that every library's messages join it. Nothing in the code, "
       "its config or the Procfile may send the log to a file (gunicorn's --access-logfile, a `>> file` in a "
       "Procfile line): collecting the stream is the job of whatever runs the process.")
def no_log_file(ctx: CheckContext) -> str:
    """Read as code, nothing sends a log to a file: logging's file handlers in any spelling (a subclass too),
    basicConfig's filename, a logging config naming a file handler, a StreamHandler or structlog writing to a file
    the code opened, a file opened for appending or named like a log, stdout replaced by a file, gunicorn's
    log-file options and settings, a Procfile line redirecting its output. (logs.event_stream runs the processes:
    they must write no file at all.)"""
    found = log_files(ctx.path)
    if found:
        raise CheckFailed(f"Seen: the log sent to a file: {listing(found)}.\nExpected: no log file anywhere: the "
                          "app writes its events to stdout, and whatever runs it collects them.")
    return "no log file in the code, its config or the Procfile"


def _requests(web: ServingApp, page: TestPage, nonce: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The requests the check makes, each with a path of its own: [(method, path, as a message shows it)], and the
    codes of the links made."""
    codes = [create_link(web, page.url(f"/{nonce}/{n}"))["code"] for n in range(2)]
    asked = [("GET", f"/stats/{codes[0]}", "/stats/<code>"), ("GET", f"/{codes[1]}", "/<code>"),
             ("GET", f"/api/links/{nonce}", "/api/links/<unknown>"), ("GET", f"/stats/{nonce}", "/stats/<unknown>")]
    for method, path, _ in asked:
        web.request(method, path)
    return asked, codes


@check("logs.event_stream", factor=11, title="Every request and every job is one event on stdout, as it happens",
       hint="Log each request once, at level info, when it is answered (Flask's after_request: method, path, status, "
       "time taken), and each job once (the link's code as a field of its own: log.info(\"preview stored\", "
       "code=code)). Write every event as one JSON line on stdout (structlog's JSONRenderer, through its "
       "ProcessorFormatter), from the root logger, so RQ's own lines join the stream as events too; a StreamHandler "
       "flushes after each event.",
       timeout=90)
def event_stream(ctx: CheckContext) -> str:
    """Run from the Procfile (web and worker, on PostgreSQL and Redis), the app makes two links, shows one,
    follows the other and answers two unknown paths; then each request is exactly one event on the web process's
    stdout (a JSON object on a line of its own, with a time, a level and an event, and a field that is the
    request's path), each job exactly one event on the worker's (with the link's code as a field), each one there
    while the process still runs, and no line about that work is anything but an event. Neither process writes
    any file: the stream is the log."""
    procfile_types(ctx)
    nonce = "fl" + secrets.token_hex(4)
    with postgres_database(ctx, "logs") as (_, url), redis_server() as redis, TestPage(PAGE_TITLE) as page:
        env = _env(url, redis)
        set_up(ctx, env)
        web, worker = _processes(ctx, env, redis)
        asked, codes = _requests(web, page, nonce)
        for code in codes:
            queued_title(web, code, PAGE_TITLE)

        def arrived() -> bool:
            streams = Stream("web", web.output()), Stream("worker", worker.output())
            return all(streams[0].about_path(p) for _, p, _ in asked) and all(streams[1].about(c) for c in codes)

        live = wait_until(arrived, EVENT_WITHIN, every=0.1)
        _stop(web, worker)
        web_stream, worker_stream = Stream("web", web.output()), Stream("worker", worker.output())
    expected = ("Expected: one event per request on the web process's stdout, and one per job on the worker's: a "
                "JSON object on a line of its own with a time, a level and an event, its facts as fields (the path "
                "of the request; the link's code), written as it happens.")
    named = {nonce: "<nonce>", **{code: "<code>" for code in codes}}
    for stream in (web_stream, worker_stream):
        if stream.incomplete:
            line, missing = stream.incomplete[0]
            raise CheckFailed(f"Seen: the {stream.name} process printed JSON without {missing}: "
                              f"{_quote(line, named)}\n{expected}")
    for method, path, shown in [*asked, ("POST", "/api/links", "/api/links")]:
        count = len(web_stream.about_path(path))
        wanted = 2 if path == "/api/links" else 1  # two links made
        if count != wanted:
            said = f"{method} {shown}" + (" (twice)" if wanted == 2 else "")
            raise CheckFailed(f"Seen: {said} left {count} event(s) with its path on the web process's stdout"
                              f"{_last_events(web_stream)}.\n{expected}")
    for code in codes:
        count = len(worker_stream.about(code))
        if count != 1:
            raise CheckFailed(f"Seen: the job that fetched a link's preview left {count} event(s) with "
                              f"the code as a field on the worker's stdout{_last_events(worker_stream)}.\n{expected}")
    for stream in (web_stream, worker_stream):
        loose = stream.not_events(nonce, *(c for c in codes if not c.isdigit()))
        if loose:
            raise CheckFailed(f"Seen: the {stream.name} process printed a line about its work that is not an event: "
                              f"{_quote(loose[0], named)}\n{expected} Libraries' lines too (route their logging "
                              "through the same handler).")
    if not live:
        raise CheckFailed("Seen: some events reached the stream only when the processes stopped: they waited in a "
                          f"buffer.\n{expected}")
    _written(web, worker)
    return (f"{len(asked) + 2} requests were {len(asked) + 2} events on the web's stdout, {len(codes)} jobs "
            f"{len(codes)} events on the worker's, each as it happened")


def _last_events(stream: Stream) -> str:
    """How many events the stream had in all (a count: its lines hold times and process ids)."""
    return f" ({len(stream.events)} event(s) in all)"


# Every table of the app refuses every write (whatever the app's schema), with an error the check words.
REFUSE = """CREATE FUNCTION factorlab_refuse() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION '{message}'; END $$ LANGUAGE plpgsql;
DO $$ DECLARE t record; BEGIN
  FOR t IN SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
  LOOP
    EXECUTE format('CREATE TRIGGER factorlab_refuse BEFORE INSERT OR UPDATE OR DELETE ON %I.%I '
                   'FOR EACH ROW EXECUTE FUNCTION factorlab_refuse()', t.schemaname, t.tablename);
  END LOOP;
END $$"""


@check("logs.errors_are_events", factor=11, title="An error is an event too, traceback and all",
       hint="Let errors go through the same logging as everything else: Flask logs a failed request's exception "
       "and RQ a failed job's through Python's logging, so one JSON handler on the root logger makes each of them "
       "one event at level error, the traceback a field inside it (structlog's format_exc_info, or the "
       "formatter's exc_info). A bare traceback spread over lines of its own is not an event.", timeout=90)
def errors_are_events(ctx: CheckContext) -> str:
    """A link is made and its preview job started (its page holds it); then the database refuses every write (a
    trigger raises an error the check words) and the page answers: the job fails to store the title, and a second
    link cannot be made. Each failure leaves an event at level error, naming the error, on the stdout of the
    process that failed; no line of either stream tells of it outside an event (no bare traceback)."""
    procfile_types(ctx)
    message = f"factorlab-{secrets.token_hex(4)}: every write refused by factorlab"
    with postgres_database(ctx, "logs") as (server, url), redis_server() as redis, TestPage(PAGE_TITLE) as page:
        env = _env(url, redis)
        set_up(ctx, env)
        page.hold("/held/")
        web, worker = _processes(ctx, env, redis)
        create_link(web, page.url("/held/refused"))
        if not page.wait_for(lambda: "/held/refused" in page.paths(), ERROR_WITHIN):
            raise CheckFailed(f"Seen: no process fetched a new link's page within {ERROR_WITHIN:g} s.\nExpected: the "
                              "worker fetches it.")
        server.execute(url, REFUSE.format(message=message))
        # (its connection closed with the answer: left open after a failed request, gunicorn waits for it to stop)
        refused = web.post("/api/links", json={"url": page.url("/refused-too")}, headers={"Connection": "close"})
        page.release()
        # The job has ended once the worker waits on the queue again: by then it has logged (or dropped) its error.
        workers_waiting(redis, [worker], ERROR_WITHIN, give_up=lambda: message in worker.output())
        _stop(web, worker)
        streams = Stream("web", web.output()), Stream("worker", worker.output())
    expected = ("Expected: each error is one event at level error (a JSON line, the traceback a field inside it), "
                "on the stdout of the process where it happened.")
    for stream, what in zip(streams, (f"a new link (POST /api/links, answered {refused.status_code})",
                                      "the title the preview job fetched")):
        if stream.incomplete:
            line, missing = stream.incomplete[0]
            raise CheckFailed(f"Seen: the {stream.name} process printed JSON without {missing}: "
                              f"{_quote(line, {message: '<the error>'})}\n{expected}")
        loose = stream.not_events(message, *ERROR_WORDS, pattern=FRAME)
        if loose:
            raise CheckFailed(f"Seen: the database refused {what}, and the {stream.name} process printed it outside "
                              f"an event: {_quote(loose[0], {message: '<the error>'})}\n{expected}")
        errors = [e for e in stream.mentioning(message) if (level_of(e) or 0) >= ERROR_LEVEL]
        if not errors:
            others = stream.mentioning(message)
            seen = (f"only at level {_field(others[0], LEVEL_KEYS)!r}" if others else "no event of it")
            raise CheckFailed(f"Seen: the database refused {what}, and the {stream.name} process's stdout had {seen}"
                              f"{_last_events(stream)}.\n{expected}")
    return "a failed request and a failed job were each an error event, with the database's error inside it"


LOG_SETTING = re.compile(r"(?i)LOG_?(FILE|DIR|PATH|FOLDER|OUTPUT|DEST|DESTINATION|TARGET|LOCATION)|LOGFILE|LOGDIR")


@check("logs.runbook", factor=11, title="The runbook says where the stream goes and how to read it",
       hint="OPS.md: take out shortly.log, its rotation and `tail -f`; say that every process writes JSON events to "
       "stdout, and how to read them (honcho start on a laptop, journalctl on the servers, jq to pick events). "
       ".env.example: no setting for a log file.")
def runbook(ctx: CheckContext) -> str:
    """OPS.md no longer sends anyone to a log file, and says the log is a stream on stdout and how to read it
    (the catalogue's `runbook` of 11_logs); .env.example has no setting for a log file."""
    said = runbook_truth(ctx, "11_logs")
    path = ctx.path / EXAMPLE
    values = env_values(path.read_text(errors="replace")) if path.is_file() else {}
    settings = sorted(n for n, v in values.items() if LOG_SETTING.search(n) or LOG_NAME.search(v.strip()))
    if settings:
        raise CheckFailed(f"Seen: {EXAMPLE} sets {listing(settings)}.\nExpected: no setting for a log file: the log "
                          "is the process's stdout.")
    return said
