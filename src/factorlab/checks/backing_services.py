"""Factor IV, backing services: treat them as attached resources, named by URL in the config.

The checks attach real servers and look at the data where it lives: SQLite files, a PostgreSQL database made
for the check (in the cluster of `factorlab services up`, or a private one), private Redis servers that want
a password and are reached at a database number other than 0. Every route that touches a service is
exercised, and each instance runs in a working directory of its own.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ..http import Client
from ..process import free_port
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import REQUIRED_APP_ENV, SETUP, SETUP_TEXT, create_link, follow, shorten
from .attached import postgres_codes, postgres_database, redis_server, serve, set_up
from .config import sqlite_codes
from .runbook import runbook_truth
from .source import Module, constant_text, python_files, rel, strings
from .text import listing, tail

SERVICE_URL = re.compile(r"\b(postgres(?:ql)?|mysql|mariadb|redis|rediss|amqp|mongodb|memcached?)(\+\w+)?://", re.I)
DB_FILE = re.compile(r"^(sqlite:///)?/.+\.(db|sqlite3?)$")
DSN = re.compile(r"\b(host|hostaddr|dbname|port)=\S+", re.I)
HOST_LITERAL = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\d+\.\d+\.\d+\.\d+|[a-z0-9-]+(\.[a-z0-9-]+)*\.(internal|local|lan))$"
                          r"|^[a-z]+-(db|redis|cache|pg|postgres|mysql)-?\d*$", re.I)
CONNECT_KEYWORDS = {"host", "port", "password", "user", "username", "dbname", "database", "db"}
CONNECTORS = {"connect", "Redis", "StrictRedis", "create_engine", "ConnectionPool", "MongoClient", "Connection",
              "from_url", "sessionmaker", "create_pool"}
SERVICE_PORTS = {5432, 6379, 3306, 27017, 11211, 5672}
ADMIN = "factorlab-check-admin-token"
CLICKS = 10
LOCAL_DATA = (".db", ".sqlite", ".sqlite3", ".db-journal")


def _local_data(app) -> list[str]:
    """Database files the app wrote into its working directory."""
    return sorted(name for name in app.written() if name.endswith(LOCAL_DATA))


def _every_path(app, page: TestPage, kind: str) -> tuple[list[str], str]:
    """Make links through the API and the form, follow one, make an expired one and purge: the codes made (the
    expired one last), and how the purge went ("" when the state no longer has the endpoint)."""
    with Client() as client:
        made = [create_link(app, page.url(f"/{kind}/api"), client=client, where=f"a {kind} DATABASE_URL")["code"],
                shorten(app, page.url(f"/{kind}/form"), client=client, where=f"a {kind} DATABASE_URL")]
        for _ in range(CLICKS):
            follow(app, made[0], client=client, where=f"a {kind} DATABASE_URL")
        expired = create_link(app, page.url(f"/{kind}/expired"), client=client, ttl_seconds=0)["code"]
        purged = client.get(app, f"/admin/purge?token={ADMIN}")
        outcome = "" if purged.status_code == 404 else f"{purged.status_code} {purged.text.strip()[:40]}"
    return [*made, expired], outcome


@check("backing_services.database_by_url", factor=4, title="The database is attached by DATABASE_URL",
       hint="Read DATABASE_URL and open it with SQLAlchemy's create_engine(): the same code then serves on "
            "sqlite:///… and on postgresql://…, for every query it makes.", timeout=60)
def database_by_url(ctx: CheckContext) -> str:
    """The same code serves on a SQLite URL and on a PostgreSQL URL (each set up with the documented command):
    links made through the API and the form, clicks and the purge of an expired link all land in the database
    the URL names (queried directly), and no database file appears in the app's working directory."""
    shared = ctx.runner.shared_dir()
    sqlite_file = shared / "attached.db"
    with postgres_database(ctx, "links") as (postgres, pg_url), TestPage() as page:
        for kind, url in (("SQLite", f"sqlite:///{sqlite_file}"), ("PostgreSQL", pg_url)):
            env = {**REQUIRED_APP_ENV, "DATABASE_URL": url, "SHORTLY_ADMIN_TOKEN": ADMIN}
            app = serve(ctx, env)
            (*made, expired), purged = _every_path(app, page, kind)
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
            clicks = _clicks_in(postgres, url, made[0]) if kind == "PostgreSQL" else None
            if kind == "PostgreSQL" and not clicks:
                raise CheckFailed(f"Seen: a link was followed {CLICKS} times, and the PostgreSQL database at "
                                  "DATABASE_URL holds no click.\nExpected: the clicks counted in the attached database.")
            local = _local_data(app)
            if kind == "PostgreSQL" and local:
                raise CheckFailed(f"Seen: with a PostgreSQL DATABASE_URL, the app wrote {listing(local)} into its "
                                  "working directory: part of its data went to a local file.\nExpected: all of it in "
                                  "the database DATABASE_URL names.")
    return "the same code kept links, clicks and purges in SQLite and in PostgreSQL, chosen by DATABASE_URL alone"


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


def _title_with(ctx: CheckContext, env: dict[str, str], url: str) -> str:
    app = ctx.runner.start(env)
    title = create_link(app, url, where="an instance with REDIS_URL set").get("title", "")
    app.stop()
    return title


@check("backing_services.cache_by_url", factor=4, title="The preview cache is an attached Redis (REDIS_URL)",
       hint="Keep fetched titles in the Redis REDIS_URL names (redis.Redis.from_url, password and database number "
            "included), not in the process; without REDIS_URL, no cache and nothing to warm at start-up; a Redis "
            "that is down costs a fetch, never an error.", timeout=60)
def cache_by_url(ctx: CheckContext) -> str:
    """Instances given the same REDIS_URL (a Redis with a password, database 3) share the preview cache, which
    lives in that database: flushed, the next instance fetches again. A Redis that is down only costs a fetch.
    Without REDIS_URL there is no cache, and start-up fetches nothing."""
    database = {**REQUIRED_APP_ENV, "DATABASE_URL": f"sqlite:///{ctx.runner.shared_dir() / 'links.db'}"}
    set_up(ctx, database)  # one database for every instance, as deploys of one app share theirs
    with redis_server(password="factorlab-check-redis") as redis, TestPage() as page:
        target = page.url("/cached")

        def fetches(name: str) -> tuple[int, str]:
            """Start another instance with the shared REDIS_URL; make a link to the target."""
            before = len(page.headers_for("/cached"))
            title = _title_with(ctx, {**database, "REDIS_URL": redis.url(3)}, target)
            return len(page.headers_for("/cached")) - before, title

        first, title = fetches("one")
        if first != 1 or title != page.title:
            raise CheckFailed("Seen: the first instance did not fetch the page's title.\n"
                              f"Expected: {page.title!r}, fetched and then kept in the cache.")
        with redis.client(3) as db3, redis.client(0) as db0:
            if not db3.dbsize() or db0.dbsize():
                raise CheckFailed("Seen: after a preview was fetched, the Redis at REDIS_URL holds "
                                  + ("nothing in database 3, the one the URL names" if not db3.dbsize()
                                     else "keys in database 0 rather than 3, the one the URL names")
                                  + ".\nExpected: the cache in the Redis REDIS_URL names: host, port, password and "
                                  "database number, all from the URL.")
            second, title = fetches("two")
            if second or title != page.title:
                raise CheckFailed(f"Seen: a second instance attached to the same REDIS_URL fetched the page again "
                                  f"({second} request(s); title {title!r}).\nExpected: it finds the title in the "
                                  "shared cache: a cache kept inside one process is lost to every other process.")
            db3.flushdb()
        third, _ = fetches("three")
        if third != 1:
            raise CheckFailed("Seen: after the Redis at REDIS_URL was flushed, another instance still did not fetch "
                              "the page: the titles are kept somewhere else as well.\nExpected: the cache lives in "
                              "the Redis REDIS_URL names, and only there.")
    with TestPage() as page:
        app = ctx.runner.start({**database, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
        title = create_link(app, page.url("/redis-down"), where="an instance whose Redis is down").get("title")
        app.stop()
        if title != page.title:
            raise CheckFailed(f"Seen: with REDIS_URL naming a Redis that is down, a new link got the title {title!r}."
                              "\nExpected: the page fetched instead: a cache that is down only costs a fetch.")
        before = len(page.requests)
        ctx.runner.start(database).stop()  # its database holds links: without a cache there is nothing to warm
        warmed = len(page.requests) - before
    if warmed:
        raise CheckFailed(f"Seen: started without REDIS_URL, with links in its database, the app fetched {warmed} "
                          "page(s) before serving.\nExpected: no cache, nothing to warm: start-up stays fast.")
    return "instances sharing a REDIS_URL share the preview cache, which lives in that Redis and only there"


def _call_name(node: ast.Call) -> str:
    return node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")


def connection_details(root: Path) -> list[str]:
    """Addresses of backing services written in the code: service URLs, database files, DSNs, hosts and ports."""
    found = []
    for path in python_files(root):
        module = Module.read(path)
        if module is None:
            continue
        where = rel(path, root)
        for value, node in strings(module.tree):
            text = (value or "").strip()
            if SERVICE_URL.search(text) or DB_FILE.match(text) or (DSN.search(text) and "=" in text and " " in text):
                found.append(f"{text[:60]!r} at {where}:{getattr(node, 'lineno', '?')}")
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Call) and _call_name(node) in CONNECTORS:
                for keyword in node.keywords:
                    value = keyword.value.value if isinstance(keyword.value, ast.Constant) else None
                    if keyword.arg in CONNECT_KEYWORDS and value not in (None, "") and not isinstance(value, bool):
                        found.append(f"{keyword.arg}={value!r} at {where}:{node.lineno}")
                for arg in node.args:
                    text = constant_text(arg)
                    port = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, int) else None
                    if (text and HOST_LITERAL.match(text)) or port in SERVICE_PORTS:
                        found.append(f"{text or port!r} at {where}:{node.lineno}")
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                text = constant_text(node.value)
                port = node.value.value if isinstance(node.value, ast.Constant) and isinstance(node.value.value, int) \
                    else None
                if any(re.search(r"(?i)(HOST|SERVER)$", n) for n in names) and text and HOST_LITERAL.match(text) or \
                        any(re.search(r"(?i)PORT$", n) for n in names) and port in SERVICE_PORTS:
                    found.append(f"{names[0]} = {text or port!r} at {where}:{node.lineno}")
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
