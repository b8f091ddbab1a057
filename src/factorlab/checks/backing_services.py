"""Factor IV, backing services: treat them as attached resources, named by URL in the config.

The checks attach real servers: SQLite files, a PostgreSQL cluster (the one `factorlab services up`
runs, or a private one) with a new database per check, and private Redis servers.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .. import services
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import REQUIRED_APP_ENV, SETUP, SETUP_TEXT
from .config import sqlite_codes
from .source import parse, python_files
from .text import tail

SERVICE_URL = re.compile(r"\b(postgres(?:ql)?|mysql|mariadb|redis|rediss|amqp|mongodb)(\+\w+)?://", re.I)
DB_FILE = re.compile(r"^(sqlite:///)?/.+\.(db|sqlite3?)$")
CONNECT_KEYWORDS = {"host", "port", "password", "user", "dbname", "database"}
CONNECTORS = {"connect", "Redis", "StrictRedis", "create_engine", "ConnectionPool", "MongoClient"}


def _create(app, url: str, what: str):
    created = app.post("/api/links", json={"url": url})
    if created.status_code != 201:
        raise CheckFailed(f"Seen: with {what}, POST /api/links answered {created.status_code}.{app.last_words()}\n"
                          "Expected: 201 and the new link.")
    return created.json()


def _postgres_codes(postgres: services.Postgres, url: str) -> set[str]:
    try:
        return {row[0] for row in postgres.rows(url, "SELECT code FROM links")}
    except Exception:
        return set()


@check("backing_services.database_by_url", factor=4, title="The database is attached by DATABASE_URL",
       hint="Read DATABASE_URL and open it with SQLAlchemy's create_engine(): the same code then serves on "
            "sqlite:///… and on postgresql://…", timeout=60)
def database_by_url(ctx: CheckContext) -> str:
    """The same code serves on a SQLite URL and on a PostgreSQL URL, and each new link is in the database
    the URL names (queried directly)."""
    shared = ctx.runner.shared_dir()
    sqlite_file = shared / "attached.db"
    postgres = services.shared_postgres(ctx.course_root)
    pg_url = postgres.create_database("links")
    try:
        with TestPage() as page:
            for kind, url in (("SQLite", f"sqlite:///{sqlite_file}"), ("PostgreSQL", pg_url)):
                app = ctx.runner.start({**REQUIRED_APP_ENV, "DATABASE_URL": url})
                code = _create(app, page.url(f"/{kind.lower()}"), f"DATABASE_URL set to a {kind} URL").get("code")
                shown = app.get(f"/api/links/{code}")
                app.stop()
                if shown.status_code != 200:
                    raise CheckFailed(f"Seen: with a {kind} DATABASE_URL, the new link {code!r} answered "
                                      f"{shown.status_code} at /api/links/{code}.\nExpected: 200.")
                found = sqlite_codes(sqlite_file) if kind == "SQLite" else _postgres_codes(postgres, url)
                if code not in found:
                    raise CheckFailed(f"Seen: DATABASE_URL named a {kind} database, but the new link is not in it.\n"
                                      "Expected: the app stores its data in the database DATABASE_URL names.")
    finally:
        postgres.drop_database(pg_url)
    return "the same code stored its links in SQLite and in PostgreSQL, chosen by DATABASE_URL alone"


@check("backing_services.fresh_resource", factor=4, title="A fresh database works after the setup command",
       hint=f"Add a `{SETUP_TEXT}` command (@app.cli.command) that creates the tables, and document it in OPS.md.",
       timeout=60)
def fresh_resource(ctx: CheckContext) -> str:
    """A brand-new PostgreSQL database, attached by config alone, is set up by `flask --app shortly init-db`
    and then serves."""
    postgres = services.shared_postgres(ctx.course_root)
    url = postgres.create_database("fresh")
    try:
        env = {**REQUIRED_APP_ENV, "DATABASE_URL": url}
        done = ctx.runner.run_command(SETUP, env)
        if done.code != 0:
            raise CheckFailed(f"Seen: `{SETUP_TEXT}` on a new database {done.ended()}{tail(done.output)}"
                              "\nExpected: exit 0, with the tables created.")
        tables = {row[0] for row in postgres.rows(url, "SELECT table_name FROM information_schema.tables "
                                                       "WHERE table_schema = 'public'")}
        if "links" not in tables:
            raise CheckFailed(f"Seen: after `{SETUP_TEXT}`, the new database has no links table.\n"
                              "Expected: the setup command creates the schema.")
        app = ctx.runner.start(env)
        with TestPage() as page:
            made = _create(app, page.url("/fresh"), "a freshly set-up database")
        if made.get("code") not in _postgres_codes(postgres, url):
            raise CheckFailed("Seen: the new link is not in the freshly attached database.\n"
                              "Expected: it lands in the database DATABASE_URL names.")
    finally:
        postgres.drop_database(url)
    return f"a new PostgreSQL database, attached by DATABASE_URL and set up by `{SETUP_TEXT}`, serves"


@check("backing_services.cache_by_url", factor=4, title="The preview cache is an attached Redis (REDIS_URL)",
       hint="Keep fetched titles in Redis at REDIS_URL (redis.Redis.from_url), not in a dict inside the process.",
       timeout=60)
def cache_by_url(ctx: CheckContext) -> str:
    """Two instances given the same REDIS_URL share the preview cache (the second does not fetch the page
    again), and the cache is in the Redis that REDIS_URL names (queried directly)."""
    shared = ctx.runner.shared_dir()
    redis = services.Redis.start()
    try:
        with TestPage() as page:
            target = page.url("/cached")

            def create(name: str) -> str:
                env = {**REQUIRED_APP_ENV, "DATABASE_URL": f"sqlite:///{shared / name}.db", "REDIS_URL": redis.url()}
                app = ctx.runner.start(env)
                title = _create(app, target, "REDIS_URL set").get("title")
                app.stop()
                return title

            if create("one") != page.title:
                raise CheckFailed("Seen: the first instance did not fetch the page's title.\n"
                                  f"Expected: {page.title!r}, fetched and then kept in the cache.")
            fetched = len(page.headers_for("/cached"))
            with redis.client() as client:
                if not client.dbsize():
                    raise CheckFailed("Seen: the Redis at REDIS_URL holds no keys after a preview was fetched.\n"
                                      "Expected: the preview cache lives in the Redis that REDIS_URL names.")
            title = create("two")
            again = len(page.headers_for("/cached")) - fetched
            if again or title != page.title:
                raise CheckFailed(f"Seen: a second instance attached to the same REDIS_URL fetched the page again "
                                  f"({again} request(s); title {title!r}).\nExpected: it finds the title in the shared "
                                  "cache: a cache kept inside one process is lost to every other process.")
    finally:
        redis.stop()
    return "instances sharing a REDIS_URL share the preview cache, which lives in that Redis"


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _connection_details(root: Path) -> list[str]:
    found = []
    for file in python_files(root):
        tree = parse(file)
        rel = file.relative_to(root).as_posix()
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value.strip()
                if SERVICE_URL.search(text) or DB_FILE.match(text):
                    found.append(f"{text[:60]!r} at {rel}:{node.lineno}")
            elif isinstance(node, ast.Call) and _name(node.func) in CONNECTORS:
                for keyword in node.keywords:
                    if keyword.arg in CONNECT_KEYWORDS and isinstance(keyword.value, ast.Constant) \
                            and keyword.value.value not in (None, ""):
                        found.append(f"{keyword.arg}={keyword.value.value!r} at {rel}:{node.lineno}")
    return found


@check("backing_services.no_connection_details", factor=4, title="No connection details in the code",
       hint="Every address of a database or cache comes from DATABASE_URL or REDIS_URL; "
            "only the embedded default, a relative sqlite:/// file, may stay.")
def no_connection_details(ctx: CheckContext) -> str:
    """No service URL, database file path, host, port or password is written into the code."""
    found = _connection_details(ctx.path)
    if found:
        shown = "; ".join(found[:4]) + (f"; and {len(found) - 4} more" if len(found) > 4 else "")
        raise CheckFailed(f"Seen: {shown}.\nExpected: backing services named only by their URLs in the config, "
                          "so that attaching another one needs no code change.")
    return "no connection details in the code: every backing service is named by config"
