"""Factor IV, backing services: treat them as attached resources, named by URL in the config.

The checks attach real servers and look at the data where it lives: SQLite files, a PostgreSQL database made
for the check (in the cluster of `factorlab services up`, or a private one), private Redis servers that want
a password and are reached at a database number other than 0. Every route that touches a service is
exercised, and each instance runs in a working directory of its own.
"""

from __future__ import annotations

import ast
import html
import posixpath
import re
from pathlib import Path

from ..http import Client, json_of
from ..process import free_port
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import REQUIRED_APP_ENV, SETUP, SETUP_TEXT, create_link, follow, queued_title, shorten
from .attached import postgres_codes, postgres_database, redis_server, serve, set_up, start_worker, workers_waiting
from .config import sqlite_codes
from .runbook import runbook_truth
from .source import Module, python_files, rel
from .text import listing, tail

SERVICE_URL = re.compile(r"\b(postgres(?:ql)?|mysql|mariadb|redis|rediss|amqp|mongodb|memcached?)(\+\w+)?://", re.I)
DB_FILE = re.compile(r"^(sqlite:///)?/.+\.(db|sqlite3?)$")
DSN = re.compile(r"\b(host|hostaddr|dbname|port)=[^\s\x00]", re.I)
HOST_LITERAL = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\d+\.\d+\.\d+\.\d+|[a-z0-9-]+(\.[a-z0-9-]+)*\.(internal|local|lan))$"
                          r"|^[a-z]+-(db|redis|cache|pg|postgres|mysql)-?\d*$", re.I)
CONNECT_KEYWORDS = {"host", "hostaddr", "port", "password", "user", "username", "dbname", "database", "db",
                    "unix_socket_path", "unix_socket"}
DATABASE_KEYWORDS = {"dbname", "database", "db"}
CONNECTORS = {"connect", "Redis", "StrictRedis", "create_engine", "ConnectionPool", "MongoClient", "Connection",
              "from_url", "sessionmaker", "create_pool"}
SERVICE_PORTS = {5432, 6379, 3306, 27017, 11211, 5672}
ADMIN = "factorlab-check-admin-token"
CLICKS = 10
LOCAL_DATA = (".db", ".sqlite", ".sqlite3", ".db-journal")


def _local_data(app) -> list[str]:
    """Database files the app wrote into its working directory."""
    return sorted(name for name in app.written() if name.endswith(LOCAL_DATA))


def _every_path(app, page: TestPage, kind: str) -> tuple[list[str], str, list[str]]:
    """Make links through the API and the form, follow one, make an expired one and purge, then read the two
    links back through every route that shows a link: the codes made (the expired one last), how the purge went
    ("" when the state no longer has the endpoint), and what the routes got wrong."""
    where = f"a {kind} DATABASE_URL"
    with Client() as client:
        targets = [page.url(f"/{kind}/api"), page.url(f"/{kind}/form")]
        made = [create_link(app, targets[0], client=client, where=where)["code"],
                shorten(app, targets[1], client=client, where=where)]
        for _ in range(CLICKS):
            follow(app, made[0], client=client, where=where)
        expired = create_link(app, page.url(f"/{kind}/expired"), client=client, ttl_seconds=0)["code"]
        purged = client.get(app, f"/admin/purge?token={ADMIN}")
        outcome = "" if purged.status_code == 404 else f"{purged.status_code} {purged.text.strip()[:40]}"
        wrong = [problem for code, target, clicks in zip(made, targets, (CLICKS, 0))
                 for problem in _read_back(app, client, code, target, clicks)]
    return [*made, expired], outcome, list(dict.fromkeys(wrong))


def _read_back(app, client: Client, code: str, target: str, clicks: int) -> list[str]:
    """What GET /api/links/<code> and GET /stats/<code> got wrong about a link just made (no codes in the words:
    messages stay stable)."""
    wrong = []
    shown = client.get(app, f"/api/links/{code}")
    data = json_of(shown) if shown.status_code == 200 else {}
    if shown.status_code != 200:
        wrong.append(f"GET /api/links/<code> answered {shown.status_code}")
    elif data.get("url") != target:
        wrong.append("GET /api/links/<code> showed another target")
    elif data.get("clicks") != clicks:
        wrong.append(f"GET /api/links/<code> reported {data.get('clicks')!r} clicks, not {clicks}")
    page = client.get(app, f"/stats/{code}")
    if page.status_code != 200:
        wrong.append(f"GET /stats/<code> answered {page.status_code}")
    elif html.escape(target) not in page.text and target not in page.text:
        wrong.append("GET /stats/<code> did not show the link's target")
    return wrong


@check("backing_services.database_by_url", factor=4, title="The database is attached by DATABASE_URL",
       hint="Read DATABASE_URL and open it with SQLAlchemy's create_engine(): the same code then serves on "
            "sqlite:///… and on postgresql://…, for every query it makes.", timeout=60)
def database_by_url(ctx: CheckContext) -> str:
    """The same code serves on a SQLite URL and on a PostgreSQL URL (each set up with the documented command):
    links made through the API and the form, clicks and the purge of an expired link all land in the database
    the URL names (queried directly), GET /api/links/<code> and GET /stats/<code> read each link back from it,
    and no database file appears in the app's working directory."""
    shared = ctx.runner.shared_dir()
    sqlite_file = shared / "attached.db"
    with postgres_database(ctx, "links") as (postgres, pg_url), TestPage() as page:
        for kind, url in (("SQLite", f"sqlite:///{sqlite_file}"), ("PostgreSQL", pg_url)):
            env = {**REQUIRED_APP_ENV, "DATABASE_URL": url, "SHORTLY_ADMIN_TOKEN": ADMIN}
            app = serve(ctx, env)
            (*made, expired), purged, wrong = _every_path(app, page, kind)
            app.stop()
            codes = sqlite_codes(sqlite_file) if kind == "SQLite" else postgres_codes(postgres, url)
            missing = [code for code in made if code not in codes]
            if missing:
                raise CheckFailed(f"Seen: DATABASE_URL named a {kind} database, but {len(missing)} of the {len(made)} "
                                  "new links (made through the API and the form) are not in it.\nExpected: the app "
                                  "stores its data in the database DATABASE_URL names, on every route.")
            if purged and expired in codes:
                raise CheckFailed(f"Seen: with a {kind} DATABASE_URL, the admin purge answered {purged!r}, and the "
                                  "expired link is still in the database.\nExpected: the purge deletes it from the "
                                  "database DATABASE_URL names.")
            if wrong:
                raise CheckFailed(f"Seen: with a {kind} DATABASE_URL, links made a moment before were read back "
                                  f"wrong: {listing(wrong, 3)}.\nExpected: every route that shows a link (GET "
                                  "/api/links/<code>, GET /stats/<code>) reads it from the database DATABASE_URL "
                                  "names.")
            clicks = _clicks_in(postgres, url, made[0]) if kind == "PostgreSQL" else None
            if kind == "PostgreSQL" and not clicks:
                raise CheckFailed(f"Seen: a link was followed {CLICKS} times, and the PostgreSQL database at "
                                  "DATABASE_URL holds no click.\nExpected: the clicks counted in the attached database.")
            local = _local_data(app)
            if kind == "PostgreSQL" and local:
                raise CheckFailed(f"Seen: with a PostgreSQL DATABASE_URL, the app wrote {listing(local)} into its "
                                  "working directory: part of its data went to a local file.\nExpected: all of it in "
                                  "the database DATABASE_URL names.")
    return ("the same code kept links, clicks and purges in SQLite and in PostgreSQL, and read them back on every "
            "route, chosen by DATABASE_URL alone")


def _clicks_in(postgres, url: str, code: str) -> int:
    try:
        rows = postgres.rows(url, "SELECT clicks FROM links WHERE code = %s", (code,))
    except Exception:
        return 0
    return rows[0][0] if rows else 0


@check("backing_services.fresh_resource", factor=4, title="A fresh database works after the setup command",
       hint=f"Add a `{SETUP_TEXT}` command (@app.cli.command) that creates the tables in the database DATABASE_URL "
            "names, and document it in OPS.md.", timeout=60)
def fresh_resource(ctx: CheckContext) -> str:
    """A brand-new PostgreSQL database, attached by config alone, is set up by `flask --app shortly init-db`
    and then serves, with its data in that database."""
    with postgres_database(ctx, "fresh") as (postgres, url):
        env = {**REQUIRED_APP_ENV, "DATABASE_URL": url}
        done = ctx.runner.run_command(SETUP, env)
        if done.code != 0:
            raise CheckFailed(f"Seen: `{SETUP_TEXT}` on a new database {done.ended()}{tail(done.output)}\n"
                              "Expected: exit 0, with the tables created.")
        tables = {row[0] for row in postgres.rows(url, "SELECT table_name FROM information_schema.tables "
                                                       "WHERE table_schema = 'public'")}
        if "links" not in tables:
            raise CheckFailed(f"Seen: after `{SETUP_TEXT}`, the new database has no links table.\n"
                              "Expected: the setup command creates the schema in the database DATABASE_URL names.")
        app = ctx.runner.start(env)
        with TestPage() as page:
            made = create_link(app, page.url("/fresh"), where="a freshly set-up database")
        if made.get("code") not in postgres_codes(postgres, url):
            raise CheckFailed("Seen: the new link is not in the freshly attached database.\n"
                              "Expected: it lands in the database DATABASE_URL names.")
    return f"a new PostgreSQL database, attached by DATABASE_URL and set up by `{SETUP_TEXT}`, serves"


def _fetches(app, page: TestPage, path: str, where: str, times: int = 1, queued: bool = False) -> tuple[int, str]:
    """Make a link to the test page's path `times` times on one instance: how often the page was fetched meanwhile,
    and the last title. queued: a worker process fetches the previews (factor VIII on): wait for each title."""
    before = len(page.headers_for(path))
    for _ in range(times):
        made = create_link(app, page.url(path), where=where)
        title = made.get("title", "")
        if queued and not title:
            title = queued_title(app, made["code"], page.title)
    return len(page.headers_for(path)) - before, title


@check("backing_services.cache_by_url", factor=4, title="The preview cache is an attached Redis (REDIS_URL)",
       hint="Keep fetched titles in the Redis REDIS_URL names (redis.Redis.from_url, password and database number "
            "included), and only there, not in the process; without REDIS_URL, no cache at all and nothing to warm "
            "at start-up; a Redis that is down costs a fetch, never an error.", timeout=60)
def cache_by_url(ctx: CheckContext) -> str:
    """Instances given the same REDIS_URL (a Redis with a password, database 3) share the preview cache, which
    lives in that database and only there: flushed, each instance (the one that fetched the page, the one that
    found it in the cache) fetches again. A Redis that is down costs a fetch for each new link. Without REDIS_URL
    there is no cache: start-up fetches nothing, and each new link fetches its page."""
    database = {**REQUIRED_APP_ENV, "DATABASE_URL": f"sqlite:///{ctx.runner.shared_dir() / 'links.db'}"}
    set_up(ctx, database)  # one database for every instance, as deploys of one app share theirs
    where = "an instance with REDIS_URL set"
    with redis_server(password="factorlab-check-redis") as redis, TestPage() as page:
        env = {**database, "REDIS_URL": redis.url(3)}
        first = ctx.runner.start(env)
        worker = start_worker(ctx, env)  # from factor VIII on, a worker fetches the previews
        queued = worker is not None
        if queued:
            workers_waiting(redis, [worker])
        fetched, title = _fetches(first, page, "/cached", where, queued=queued)
        if fetched != 1 or title != page.title:
            raise CheckFailed("Seen: the first instance did not fetch the page's title.\n"
                              f"Expected: {page.title!r}, fetched and then kept in the cache.")
        with redis.client(3) as db3, redis.client(0) as db0:
            if not db3.dbsize() or db0.dbsize():
                raise CheckFailed("Seen: after a preview was fetched, the Redis at REDIS_URL holds "
                                  + ("nothing in database 3, the one the URL names" if not db3.dbsize()
                                     else "keys in database 0 rather than 3, the one the URL names")
                                  + ".\nExpected: the cache in the Redis REDIS_URL names: host, port, password and "
                                  "database number, all from the URL.")
            second = ctx.runner.start(env)
            fetched, title = _fetches(second, page, "/cached", where, queued=queued)
            if fetched or title != page.title:
                raise CheckFailed(f"Seen: a second instance attached to the same REDIS_URL fetched the page again "
                                  f"({fetched} request(s); title {title!r}).\nExpected: it finds the title in the "
                                  "shared cache: a cache kept inside one process is lost to every other process.")
            for label, app in (("the second instance, which had found the title in Redis", second),
                               ("the first instance, which had fetched the page", first)):
                db3.flushdb()
                fetched, _ = _fetches(app, page, "/cached", where, queued=queued)
                if fetched != 1:
                    raise CheckFailed(f"Seen: after the Redis at REDIS_URL was flushed, {label} made another link "
                                      "to the page without fetching it: the titles are kept somewhere else as well."
                                      "\nExpected: the cache lives in the Redis REDIS_URL names, and only there.")
        first.stop()
        second.stop()
    with TestPage() as page:
        down = {**database, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
        app = ctx.runner.start(down)
        queued = start_worker(ctx, down) is not None  # a queue kept elsewhere (the database) still has its workers
        fetched, title = _fetches(app, page, "/redis-down", "an instance whose Redis is down", times=2, queued=queued)
        app.stop()
        if title != page.title:
            raise CheckFailed(f"Seen: with REDIS_URL naming a Redis that is down, a new link got the title {title!r}."
                              "\nExpected: the page fetched instead: a cache that is down only costs a fetch.")
        if fetched != 2:
            raise CheckFailed(f"Seen: with REDIS_URL naming a Redis that is down, two new links to one page fetched "
                              f"it {fetched} time(s).\nExpected: twice: while the cache is down there is no cache, not "
                              "one kept in the process instead.")
        before = len(page.requests)
        app = ctx.runner.start(database)  # its database holds links: without a cache there is nothing to warm
        warmed = len(page.requests) - before
        if warmed:
            raise CheckFailed(f"Seen: started without REDIS_URL, with links in its database, the app fetched "
                              f"{warmed} page(s) before serving.\nExpected: no cache, nothing to warm: start-up "
                              "stays fast.")
        fetched, _ = _fetches(app, page, "/no-cache", "an instance without REDIS_URL", times=2)
        app.stop()
    if fetched != 2:
        raise CheckFailed(f"Seen: started without REDIS_URL, an instance made two new links to one page and "
                          f"fetched it {fetched} time(s).\nExpected: twice: without REDIS_URL there is no cache at all (a "
                          "cache kept inside one process is lost to every other process).")
    return ("instances sharing a REDIS_URL share the preview cache, which lives in that Redis and only there; "
            "without one (or with one that is down), every link fetches its page")


def _call_name(node: ast.Call) -> str:
    return node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")


class _Folder:
    """Text the code builds from constants alone, folded as Python would: "a" + "b", f-strings, os.path.join,
    pathlib's / and joinpath, sep.join([...]), "...".format(...), str(...), and names the module binds once to
    such an expression. In `partial` mode a part that depends on anything else reads as HOLE."""

    def __init__(self, module: Module):
        self.module = module
        bound: dict[str, list[ast.AST]] = {}
        for node in ast.walk(module.tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            bound.setdefault(name.id, []).append(
                                node.value if isinstance(node, ast.Assign) and target is name else None)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.setdefault(node.name, []).append(None)
            elif isinstance(node, ast.arg):
                bound.setdefault(node.arg, []).append(None)
        # a name bound once, to a value: its value; any other name is not a constant
        self.values = {name: values[0] for name, values in bound.items() if len(values) == 1 and values[0] is not None}

    def text(self, node: ast.AST | None, partial: bool = False, depth: int = 0) -> str | None:
        if node is None or depth > 20:
            return HOLE if partial else None
        fold = lambda part: self.text(part, partial, depth + 1)  # noqa: E731
        folded = self._fold(node, fold)
        return HOLE if folded is None and partial else folded

    def _fold(self, node: ast.AST, fold) -> str | None:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bytes):
                return node.value.decode(errors="replace")
            return node.value if isinstance(node.value, str) else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Div)):
            left, right = fold(node.left), fold(node.right)
            if left is None or right is None:
                return None
            return left + right if isinstance(node.op, ast.Add) else posixpath.join(left, right)
        if isinstance(node, ast.JoinedStr):
            parts = [fold(value.value if isinstance(value, ast.FormattedValue) else value) for value in node.values]
            return "".join(parts) if None not in parts else None
        if isinstance(node, ast.Name):
            return fold(self.values[node.id]) if node.id in self.values else None
        if isinstance(node, ast.Call) and not node.keywords:
            called = self.module.qualified(node.func) or ""
            args = [fold(arg) for arg in node.args]
            if None in args or any(isinstance(arg, ast.Starred) for arg in node.args):
                return None
            if called in PATH_JOINS and args:
                return posixpath.join(*args)
            if called in ("str", "os.fspath") and len(args) == 1:
                return args[0]
            if isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if node.func.attr == "joinpath":
                    base = fold(owner)
                    return posixpath.join(base, *args) if base is not None else None
                if node.func.attr == "join" and len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple)):
                    sep, parts = fold(owner), [fold(element) for element in node.args[0].elts]
                    return sep.join(parts) if sep is not None and None not in parts else None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            template = fold(node.func.value)
            if template is None or any(isinstance(a, ast.Starred) for a in node.args) or \
                    any(k.arg is None for k in node.keywords):
                return None
            args = [fold(arg) for arg in node.args]
            named = {k.arg: fold(k.value) for k in node.keywords}
            if None in args or None in named.values():
                return None
            try:
                return template.format(*args, **named)
            except (IndexError, KeyError, ValueError):
                return None
        return None


HOLE = "\x00"  # a part of a text that the code does not spell out
PATH_JOINS = {"os.path.join", "posixpath.join", "pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath",
              "pathlib.PurePosixPath"}
ADDRESS_PART = re.compile(r"[^\s'\"`,;()\[\]]*")
PLACEHOLDER = re.compile(r"\x00|<[^<>\s]*>|\{[^{}\s]*\}|…|\.\.\.")


def _service_url(text: str) -> bool:
    """Does the text hold a service URL with some address in it? A scheme alone ("postgresql://", in a message
    or a startswith), or one whose parts are all placeholders ("redis://…", "postgresql://{user}@{host}/{db}"),
    names no service."""
    for found in SERVICE_URL.finditer(text):
        rest = ADDRESS_PART.match(text, found.end()).group(0).split("?")[0]
        if re.search(r"[A-Za-z0-9]", PLACEHOLDER.sub("", rest)):
            return True
    return False


# Clients that, given no address at all, connect to one of their own choosing: localhost and the service's port.
DEFAULTING_CLIENTS = {"redis": {"Redis", "StrictRedis", "ConnectionPool", "BlockingConnectionPool"},
                      "pymongo": {"MongoClient"}, "motor": {"AsyncIOMotorClient", "MotorClient"}}
ADDRESS_KEYWORDS = {"host", "unix_socket_path", "connection_pool", "url", "path"}


def _keywords_given(folder: _Folder, call: ast.Call) -> set[str] | None:
    """The keyword names a call passes, those of a **options included when the module builds options once as a
    dict(...) or {...} with names it spells out; None when some come from elsewhere."""
    names = set()
    for keyword in call.keywords:
        if keyword.arg is not None:
            names.add(keyword.arg)
            continue
        value = keyword.value
        value = folder.values.get(value.id) if isinstance(value, ast.Name) else value
        if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "dict" and not value.args and \
                all(k.arg for k in value.keywords):
            names |= {k.arg for k in value.keywords}
        elif isinstance(value, ast.Dict) and all(k is not None and folder.text(k) for k in value.keys):
            names |= {folder.text(k) for k in value.keys}
        else:
            return None
    return names


def _default_address(module: Module, folder: _Folder, call: ast.Call) -> str | None:
    """`redis.Redis()` (or another client above) made with no address at all: the client's name."""
    name = module.qualified(call.func) or (ast.unparse(call.func) if isinstance(call.func, ast.Attribute) else "")
    parts = name.split(".")
    if len(parts) < 2 or parts[-1] not in DEFAULTING_CLIENTS.get(parts[0], ()) or call.args:
        return None
    given = _keywords_given(folder, call)
    return name if given is not None and not given & ADDRESS_KEYWORDS else None


def _embedded_default(value: object) -> bool:
    """A relative SQLite file, the one default a database may have in the code."""
    return isinstance(value, str) and not value.startswith("/") and value.endswith(LOCAL_DATA)


def _serves_the_app(module: Module, name: str) -> bool:
    """Is every use of a module-level name an argument of the app's own server (app.run(host=NAME), run_simple,
    make_server, serve): the address the app binds, not one of a backing service?"""
    uses = [node for node in ast.walk(module.tree)
            if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)]
    inside = {id(node) for call in ast.walk(module.tree) if isinstance(call, ast.Call) and _call_name(call) in BIND_CALLS
              for argument in [*call.args, *(k.value for k in call.keywords)] for node in ast.walk(argument)}
    return bool(uses) and all(id(node) in inside for node in uses)


BIND_CALLS = {"run", "run_simple", "make_server", "serve"}


def _is_connector(module: Module, call: ast.Call) -> bool:
    name = module.qualified(call.func) or ""
    return _call_name(call) in CONNECTORS or name.endswith("URL.create") or \
        (isinstance(call.func, ast.Attribute) and ast.unparse(call.func).endswith("URL.create"))


def _details(module: Module, where: str) -> list[str]:
    folder = _Folder(module)
    found = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.expr) and not isinstance(node, (ast.Name, ast.Attribute)):
            text = folder.text(node, partial=True)
            if text is not None and text != HOLE:
                shown = text.replace(HOLE, "…").strip()
                whole = HOLE not in text and text.strip()
                if _service_url(text) or (whole and DB_FILE.match(whole)) or \
                        (DSN.search(text) and "=" in text and " " in text.strip()):
                    found.append(f"{shown[:60]!r} at {where}:{getattr(node, 'lineno', '?')}")
                    return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(module.tree)
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call) and _is_connector(module, node):
            for keyword in node.keywords:
                value = folder.text(keyword.value)
                if value is None and isinstance(keyword.value, ast.Constant):
                    value = keyword.value.value
                if keyword.arg in CONNECT_KEYWORDS and value not in (None, "") and not isinstance(value, bool) \
                        and not (keyword.arg in DATABASE_KEYWORDS and _embedded_default(value)):
                    found.append(f"{keyword.arg}={value!r} at {where}:{node.lineno}")
            for arg in node.args:
                text = folder.text(arg)
                port = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, int) else None
                if (text and HOST_LITERAL.match(text)) or port in SERVICE_PORTS:
                    found.append(f"{text or port!r} at {where}:{node.lineno}")
        if isinstance(node, ast.Call):
            client = _default_address(module, folder, node)
            if client:
                found.append(f"{client}() with no address (its own default, on localhost) at {where}:{node.lineno}")
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            text = folder.text(node.value)
            port = node.value.value if isinstance(node.value, ast.Constant) and isinstance(node.value.value, int) \
                else None
            if (any(re.search(r"(?i)(HOST|SERVER)$", n) for n in names) and text and HOST_LITERAL.match(text) or
                    any(re.search(r"(?i)PORT$", n) for n in names) and port in SERVICE_PORTS) and \
                    not all(_serves_the_app(module, n) for n in names):
                found.append(f"{names[0]} = {text or port!r} at {where}:{node.lineno}")
    return found


def connection_details(root: Path) -> list[str]:
    """Addresses of backing services written in the code: service URLs, database files, DSNs, hosts, ports and
    sockets, whether spelled out or built from constants, and clients left to their own default address."""
    found = []
    for path in python_files(root):
        module = Module.read(path)
        if module is not None:
            found += _details(module, rel(path, root))
    return list(dict.fromkeys(found))


@check("backing_services.no_connection_details", factor=4, title="No connection details in the code",
       hint="Every address of a database or cache comes from DATABASE_URL or REDIS_URL, with no default address "
            "in the code; only the embedded default, a relative sqlite:/// file, may stay.")
def no_connection_details(ctx: CheckContext) -> str:
    """No service URL, database file path, DSN, host or port of a backing service is written into the code,
    not even as a default."""
    found = connection_details(ctx.path)
    if found:
        raise CheckFailed(f"Seen: {listing(found)}.\nExpected: backing services named only by their URLs in the "
                          "config, so that attaching another one needs no code change.")
    return "no connection details in the code: every backing service is named by config"


@check("backing_services.runbook", factor=4, title="The runbook says how to attach a resource",
       hint="In OPS.md and .env.example: REDIS_URL, and in OPS.md how to set up a fresh database (flask --app "
            "shortly init-db) and how to restore a backup into a new one and point the app at it by config.")
def runbook(ctx: CheckContext) -> str:
    """OPS.md and .env.example name every variable the app reads (REDIS_URL among them), and OPS.md tells how to
    set up a freshly attached database and how to restore a backup."""
    return runbook_truth(ctx, "04_backing_services")
