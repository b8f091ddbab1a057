"""Factor XII, admin processes: admin tasks run as one-off processes of a release, never behind a URL, never as a
side effect of starting.

The checks act on a real PostgreSQL database each, with links written straight into it (expired ones and live ones,
under the contract's columns), so that what an admin task did, or a process did that should not have, is read
where the data lives:

- `no_admin_in_processes`: the Procfile's web and worker run over a database that holds expired links; every route
  of the app (read from its URL map by a one-off) and the usual admin paths are asked with every method and the
  app's tokens in every place a token travels; the expired links are still there at the end.
- `no_migration_at_start`: web and worker start, and serve, on a database nobody set up: it stays empty until the
  setup command runs as a one-off, which then creates what the app needs and can run again without harm.
- `purge_expired`: `flask --app shortly purge-expired` as a one-off deletes exactly the expired links, twice in a
  row safely, exits 0, and exits non-zero when the database does not answer.
- `one_off_in_release`: `release.py run -- COMMAND` runs a one-off with the release's code and config (its
  release.env's DATABASE_URL, not the caller's), and exits with the command's own exit code.
- `runbook`: OPS.md runs admin tasks as one-offs and sends nobody to a URL; .env.example has no admin token.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timedelta, timezone

from .. import procfile
from ..runners import ServingApp
from . import CheckContext, CheckFailed, check
from .app import REQUIRED_APP_ENV, SETUP, SETUP_TEXT, create_link
from .attached import postgres_database, procfile_types, redis_server, set_up, side_by_side, start_types
from .deploy_root import DeployRoot
from .runbook import EXAMPLE, runbook_truth
from .source import env_values, environment_reads
from .text import ended, listing, tail

VARIABLE = "DATABASE_URL"
PURGE = ["-m", "flask", "--app", "shortly", "purge-expired"]
PURGE_TEXT = "flask --app shortly purge-expired"
PURGE_WITHIN = 30.0  # seconds for a one-off purge to end
# Settings read by the tools that run the app, not by its code: gunicorn's, the platform's, Python's.
TOOL_SETTINGS = {"PORT", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "TZ",
                 "FLASK_APP", "FLASK_DEBUG", "FLASK_RUN_PORT"}
TOKEN_NAME = re.compile(r"TOKEN|SECRET|PASS|KEY|AUTH", re.I)  # settings that might open an admin URL
# Where admin URLs are often put, asked besides the app's own routes (a URL map does not list a WSGI middleware's).
ADMIN_PATHS = ["/admin/purge", "/admin/purge-expired", "/admin/purge_expired", "/admin", "/admin/cleanup",
               "/api/admin/purge", "/api/purge", "/purge", "/purge-expired", "/cron/purge", "/tasks/purge",
               "/maintenance/purge", "/internal/purge"]
METHODS = ("GET", "POST", "DELETE", "PUT")
ROUTES = ("import json, shortly\n"
          "print('FACTORLAB-ROUTES', json.dumps(sorted({r.rule for r in shortly.app.url_map.iter_rules()})))")
WHERE_AM_I = ("import os\nprint('FACTORLAB-RELEASE', os.environ.get('SHORTLY_RELEASE'))\n"
              "print('FACTORLAB-CWD', os.getcwd())")
CONVERTER = re.compile(r"<(?:[^:<>]+:)?[^<>]+>")
# What a converter's part of a path is made: no link's code (a route that acts on one link leaves the check's alone),
# and the words an admin route would take (a task's name, what to purge).
CONVERTED = ("0", "purge-expired", "purge", "expired")
# Asked along with every request: the usual names of an admin call's arguments.
QUERY = {"status": "expired", "expired": "true", "all": "true", "days": "0", "older_than": "0", "confirm": "1",
         "force": "true", "task": "purge-expired"}
TOKEN_HEADERS = ("X-Admin-Token", "X-Token", "X-Api-Key", "X-Auth-Token", "X-Admin-Key", "X-Secret")
PAST = datetime(2020, 1, 1, tzinfo=timezone.utc)
SOON = 30  # seconds: when the soonest live link expires
NOWHERE = "http://127.0.0.1:9/"  # a link's target that answers nothing at once: no preview leaves the machine


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _links(server, url: str, nonce: str) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """Write expired links and live ones straight into the database (the contract's columns): (expired, live),
    each code -> when it expires. One expired a second ago, the others long ago; the live ones expire in half a
    minute (a purge with a margin takes it) and in a year."""
    now = datetime.now(timezone.utc)
    expired = {f"{nonce}x{i}": when for i, when in enumerate([PAST, PAST + timedelta(days=40), now - timedelta(seconds=1)])}
    live = {f"{nonce}l{i}": when for i, when in enumerate([now + timedelta(seconds=SOON), now + timedelta(days=365)])}
    for clicks, (code, expires) in enumerate({**expired, **live}.items()):
        server.execute(url, "INSERT INTO links (code, url, title, clicks, created_at, expires_at) "
                            "VALUES (%s, %s, %s, %s, %s, %s)",
                       (code, f"{NOWHERE}{code}", f"Page {code}", clicks, _iso(PAST), _iso(expires)))
    return expired, live


def _still_live(live: dict[str, datetime]) -> set[str]:
    """The live links that have still not expired, now that a purge has ended (on a slow machine the soonest may
    have expired meanwhile: then it may go or stay)."""
    now = datetime.now(timezone.utc)
    return {code for code, when in live.items() if when > now}


def _codes(server, url: str) -> set[str]:
    return {row[0] for row in server.rows(url, "SELECT code FROM links")}


def _need_table(server, url: str, what: str) -> None:
    if not server.rows(url, "SELECT 1 FROM pg_tables WHERE tablename = 'links'"):
        raise CheckFailed(f"Seen: {what} left no links table in the database.\nExpected: `{SETUP_TEXT}` creates "
                          "the table the app needs.")


def _processes(ctx: CheckContext, env: dict[str, str], redis) -> list[ServingApp]:
    """The Procfile's web and its worker (where it has one), side by side, once the worker waits for jobs."""
    return start_types(ctx, env, redis, procfile_types(ctx, (procfile.WEB,)),
                       "starts, and serves, without running any admin task")


def _routes(ctx: CheckContext, env: dict[str, str]) -> list[str]:
    """The paths of the app's URL map, read by a one-off that imports it, each variable part made every one of
    CONVERTED."""
    done = ctx.runner.run_command(["-c", ROUTES], env)
    found = [line for line in done.output.splitlines() if line.startswith("FACTORLAB-ROUTES ")]
    if done.code != 0 or not found:
        raise CheckFailed(f"Seen: importing the app (`python -c \"import shortly\"`) {ended(done.code)}"
                          f"{tail(done.output)}\nExpected: the app imports, with only its config set.")
    rules = json.loads(found[-1].split(" ", 1)[1])
    return sorted({CONVERTER.sub(value, rule) for rule in rules for value in CONVERTED})


def _secrets(ctx: CheckContext) -> dict[str, str]:
    """A value for every setting the app reads (or .env.example names) that might open an admin URL."""
    names = set(environment_reads(ctx.path))
    path = ctx.path / EXAMPLE
    if path.is_file():
        names |= set(env_values(path.read_text(errors="replace")))
    token = "factorlab-" + secrets.token_hex(8)
    return {name: token for name in sorted(names) if TOKEN_NAME.search(name) and name not in REQUIRED_APP_ENV}


def _ask(app: ServingApp, method: str, path: str, token: str, way: int) -> None:
    """One request as an operator's script would send an admin call, the token everywhere a token travels: in the
    query, and either a bearer token, the usual headers and a JSON body (way 0) or HTTP Basic credentials and a
    form (way 1)."""
    words = {"token": token, "key": token, "password": token, "secret": token}
    if way == 0:
        extra = {"headers": {"Authorization": f"Bearer {token}", **{name: token for name in TOKEN_HEADERS}},
                 "json": {**words, "confirm": True, "all": True}}
    else:
        extra = {"auth": ("admin", token), "data": {**words, "confirm": "1"}}
    if method == "GET":  # no body
        extra = {key: value for key, value in extra.items() if key not in ("json", "data")}
    try:
        app.client.request(app, method, path, params={**QUERY, **words}, allow_redirects=False, **extra)
    except Exception:
        pass  # an answer or none: what counts is what is left in the database


def _first_purge(web: ServingApp, watch, paths: list[str], token: str, expired: set[str]):
    """Ask every path with every method, looking at the database after each: (the expired codes gone, (method,
    path)) at the first request after which some were gone, else (set(), None)."""
    cursor = watch.cursor()
    for path in paths:
        for method, way in ((m, w) for m in METHODS for w in (0, 1)):
            _ask(web, method, path, token, way)
            cursor.execute("SELECT code FROM links")
            gone = expired - {row[0] for row in cursor.fetchall()}
            if gone:
                return gone, (method, path)
    return set(), None


@check("admin_processes.no_admin_in_processes", factor=12, title="No admin task behind a URL or in a running process",
       hint="Take the /admin/purge route out (and SHORTLY_ADMIN_TOKEN with it): no URL may delete data in bulk, "
       "whatever token it is given. The purge becomes a one-off command (see the purge check), and the web and "
       "worker processes never run it themselves, neither as they start nor on a timer.", timeout=90)
def no_admin_in_processes(ctx: CheckContext) -> str:
    """The Procfile's web and worker run over a database that holds expired links, with every token setting the
    app reads given a value; every route of the app (its URL map, read by a one-off, with task-like words in its
    variable parts) and the usual admin paths are asked with GET, POST, DELETE and PUT, the token in the query and
    either as a bearer token, in the usual headers and a JSON body, or as HTTP Basic credentials and a form. The
    expired links are all still in the database at the end: no request, and nothing the processes do by
    themselves, purges."""
    nonce = "fl" + secrets.token_hex(3)
    with postgres_database(ctx, "admin") as (server, url), redis_server() as redis:
        tokens = _secrets(ctx)
        env = {**REQUIRED_APP_ENV, **tokens, VARIABLE: url, "REDIS_URL": redis.url()}
        set_up(ctx, env)
        _need_table(server, url, f"`{SETUP_TEXT}`")
        expired, live = (set(links) for links in _links(server, url, nonce))
        started, routes = side_by_side(lambda part: part(), [lambda: _processes(ctx, env, redis),
                                                             lambda: _routes(ctx, env)])
        web = started[0]
        made = create_link(web, NOWHERE + "expired-at-once", ttl_seconds=0)["code"]
        expired.add(made)
        token = next(iter(tokens.values()), "factorlab-no-token")
        paths = sorted(set(routes) | set(ADMIN_PATHS))
        watch = server.connect(url.rsplit("/", 1)[1])
        try:
            gone, asked = _first_purge(web, watch, paths, token, expired)
        finally:
            watch.close()
        if gone:
            method, path = asked
            raise CheckFailed(f"Seen: after {method} {path} (with the app's token), {len(gone)} of the {len(expired)} "
                              "expired links had gone from the database.\nExpected: no request deletes links in bulk: "
                              f"purging is a one-off process (`{PURGE_TEXT}`), never a URL.")
        left = _codes(server, url)
    if not expired <= left or not live <= left:
        raise CheckFailed(f"Seen: while the web and worker processes ran, {len(expired - left)} expired and "
                          f"{len(live - left)} live links went from the database.\nExpected: the running processes "
                          f"purge nothing by themselves: that is the one-off `{PURGE_TEXT}`.")
    return (f"{len(paths)} paths asked {len(paths) * len(METHODS) * 2} times with the app's token: the "
            f"{len(expired)} expired links were all still there")


def _relations(server, url: str) -> list[str]:
    """What the app's code could have made in a database: every table, view, sequence and schema outside the
    system's."""
    rows = server.rows(url, "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
                            "AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%' "
                            "UNION SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('public', "
                            "'information_schema') AND nspname NOT LIKE 'pg\\_%%'")
    return sorted(row[0] for row in rows)


@check("admin_processes.no_migration_at_start", factor=12, title="Nothing sets the database up as a process starts",
       hint="Take out the `migrate()` call at import: every web and worker process ran the schema's DDL as it "
       "started, all at once on a deploy. Creating the table is the one-off `flask --app shortly init-db`, run once "
       "per database (and safe to run again); the processes only read and write rows.", timeout=90)
def no_migration_at_start(ctx: CheckContext) -> str:
    """On a new database that nobody set up, the Procfile's web and worker start, the web answers, and its pages
    that need the table are asked (they may fail): the database is still empty, no table, view, sequence or schema
    made. Then the setup command, `flask --app shortly init-db`, run as a one-off, creates the links table, the
    running web makes a link in it, and the command run again exits 0 and keeps the link."""
    with postgres_database(ctx, "admin") as (server, url), redis_server() as redis:
        env = {**REQUIRED_APP_ENV, VARIABLE: url, "REDIS_URL": redis.url()}
        started = _processes(ctx, env, redis)
        web = started[0]
        answered = web.client.get(web, "/api/release")
        for method, path, extra in (("GET", "/", {}), ("GET", "/top", {}),
                                    ("POST", "/api/links", {"json": {"url": NOWHERE}})):
            try:
                web.client.request(web, method, path, allow_redirects=False, **extra)
            except Exception:
                pass
        made = _relations(server, url)
        if made:
            raise CheckFailed(f"Seen: starting the web and worker processes on a new database, and asking the web "
                              f"{'' if answered.status_code == 200 else 'a few '}pages, made {listing(made, 4)} in "
                              f"it.\nExpected: no process changes the schema as it starts or serves; setting the "
                              f"database up is the one-off `{SETUP_TEXT}`.")
        for attempt in ("first", "second"):
            done = ctx.runner.run_command(SETUP, env)
            if done.code != 0:
                raise CheckFailed(f"Seen: `{SETUP_TEXT}` run the {attempt} time {ended(done.code)}"
                                  f"{tail(done.output)}\nExpected: exit 0, the database set up (and nothing to do "
                                  "the second time).")
            if attempt == "first":
                _need_table(server, url, f"`{SETUP_TEXT}`")
                code = create_link(web, NOWHERE + "after-setup", where="the running web process, once "
                                   "the database was set up")["code"]
        if code not in _codes(server, url):
            raise CheckFailed(f"Seen: `{SETUP_TEXT}` run a second time lost the link made after the first.\n"
                              "Expected: the setup is safe to run again: it creates what is missing, and keeps the "
                              "data.")
    return (f"the database stayed empty while {len(started)} process(es) started and served; `{SETUP_TEXT}` set "
            "it up, twice without harm")


def _purge(ctx: CheckContext, env: dict[str, str], attempt: str) -> None:
    done = ctx.runner.run_command(PURGE, env, timeout=PURGE_WITHIN)
    if done.code != 0:
        raise CheckFailed(f"Seen: `{PURGE_TEXT}` run as a one-off{attempt} {ended(done.code)}{tail(done.output)}\n"
                          "Expected: a command `purge-expired` of the app (next to init-db) that deletes the expired "
                          "links and exits 0.")


def _purged(server, url: str, expired, live: set[str], what: str) -> None:
    expired = set(expired)
    left = _codes(server, url)
    if expired & left or not live <= left:
        raise CheckFailed(f"Seen: after {what}, {len(expired & left)} of {len(expired)} expired links were still in "
                          f"the database and {len(live - left)} of {len(live)} live ones were gone.\nExpected: "
                          "exactly the expired links deleted (expires_at in the past), the others kept.")


@check("admin_processes.purge_expired", factor=12, title="purge-expired is a one-off command, safe to run twice",
       hint="Add a command next to init-db: `@app.cli.command(\"purge-expired\")`, which deletes the links whose "
       "expires_at has passed, in one statement, and prints how many. Run it as a process of its own: `flask --app "
       "shortly purge-expired` (with the release's config: `python release.py run -- flask --app shortly "
       "purge-expired`). A failure must end it with a non-zero exit code.", timeout=90)
def purge_expired(ctx: CheckContext) -> str:
    """On a database set up with init-db and holding expired and live links, `flask --app shortly purge-expired`,
    run as a one-off, exits 0 having deleted exactly the expired links (the live keep their clicks); run again, it
    exits 0 and changes nothing. With DATABASE_URL naming a database that does not answer, it exits non-zero."""
    nonce = "fl" + secrets.token_hex(3)
    with postgres_database(ctx, "admin") as (server, url):
        env = {**REQUIRED_APP_ENV, VARIABLE: url}
        set_up(ctx, env)
        _need_table(server, url, f"`{SETUP_TEXT}`")
        expired, live = _links(server, url, nonce)
        clicks = dict(server.rows(url, "SELECT code, clicks FROM links"))
        _purge(ctx, env, "")
        _purged(server, url, expired, _still_live(live), f"`{PURGE_TEXT}`")
        _purge(ctx, env, " a second time")
        _purged(server, url, expired, _still_live(live), f"`{PURGE_TEXT}` run a second time")
        after = dict(server.rows(url, "SELECT code, clicks FROM links"))
        if any(after.get(code) != clicks[code] for code in _still_live(live)):
            raise CheckFailed(f"Seen: `{PURGE_TEXT}` changed the clicks of links it kept.\nExpected: the live links "
                              "kept as they were.")
        away = ctx.runner.run_command(PURGE, {**env, VARIABLE: url.rsplit("/", 1)[0] + "/factorlab_no_such_database"},
                                      timeout=PURGE_WITHIN)
    if away.code == 0 or away.code is None:
        raise CheckFailed(f"Seen: `{PURGE_TEXT}` with DATABASE_URL naming a database that does not exist "
                          f"{ended(away.code)}.\nExpected: a non-zero exit code, so that cron, systemd or a deploy "
                          "script can tell it failed.")
    return (f"`{PURGE_TEXT}` deleted the {len(expired)} expired links and kept the {len(live)} live ones, did nothing "
            f"the second time, and {ended(away.code)} without its database")


@check("admin_processes.one_off_in_release", factor=12, title="A one-off runs with the release's code and config",
       hint="Give release.py a way to run any command as a one-off of a release: `python release.py run [ID] -- flask "
       "--app shortly purge-expired` runs the command with the release on PYTHONPATH, its release.env in the "
       "environment (over the caller's) and var/ as the working directory, as `run` does for web, and exits with the "
       "command's exit code (os.execve(sys.executable, …), or sys.exit(subprocess.call([sys.executable, …])))",
       timeout=120)
def one_off_in_release(ctx: CheckContext) -> str:
    """A release is made whose release.env names a new database; the checkout then moves on (its shortly.py no
    longer imports) and the caller's own DATABASE_URL names another database. `release.py run -- flask --app
    shortly init-db` sets up the release's database, not the caller's; `release.py run -- … purge-expired` deletes
    the expired links there, with the release's code; a one-off sees the release's SHORTLY_RELEASE and runs in var/
    of the deploy root, like the release's processes; a release whose database does not answer makes the one-off
    exit non-zero, as the command itself does; and the release named, not the current one, is what a one-off
    runs."""
    nonce = "fl" + secrets.token_hex(3)
    with postgres_database(ctx, "release") as (server, url), postgres_database(ctx, "caller") as (_, caller), \
            DeployRoot(ctx) as deploy:
        build = deploy.build()
        first = deploy.release(build, "admin", DATABASE_URL=url)
        moved = ctx.runner.workspace()
        (moved / "shortly.py").write_text('raise SystemExit("the checkout has moved on: this is not the release\'s '
                                          'code")\n')
        env = {VARIABLE: caller}

        def one_off(*command: str, release: str | None = None) -> tuple[int | None, str]:
            return deploy.tool("run", *([release] if release else []), "--", *command, env=env, workspace=moved,
                               timeout=PURGE_WITHIN)

        def side_by_side_one_offs(*runs: tuple[tuple[str, ...], str | None]) -> list[tuple[int | None, str]]:
            return side_by_side(lambda run: one_off(*run[0], release=run[1]), runs)

        shown = f"python release.py run -- {SETUP_TEXT}"
        code, output = one_off("flask", "--app", "shortly", "init-db")
        if code != 0:
            raise CheckFailed(f"Seen: `{shown}` {ended(code)}{tail(output)}\nExpected: the command run as a one-off "
                              "of the current release (its code, its release.env), and exit 0.")
        if server.rows(caller, "SELECT 1 FROM pg_tables WHERE tablename = 'links'"):
            raise CheckFailed(f"Seen: `{shown}` set up the database of the caller's DATABASE_URL, not the release's."
                              "\nExpected: a one-off of a release runs with the release's config (its release.env).")
        _need_table(server, url, f"`{shown}`")
        expired, live = _links(server, url, nonce)
        shown = f"python release.py run -- {PURGE_TEXT}"
        (code, output), (where_code, where_output) = side_by_side_one_offs(
            (("flask", "--app", "shortly", "purge-expired"), None), (("python", "-c", WHERE_AM_I), None))
        live = _still_live(live)
        if code != 0:
            raise CheckFailed(f"Seen: `{shown}` {ended(code)}{tail(output)}\nExpected: the one-off run with the "
                              "release's code and config, and exit 0.")
        _purged(server, url, expired, live, f"`{shown}`")
        seen = dict(line.split(" ", 1) for line in where_output.splitlines()
                    if line.startswith("FACTORLAB-") and " " in line)
        if where_code != 0 or seen.get("FACTORLAB-RELEASE") != first or seen.get("FACTORLAB-CWD") != "<root>/var":
            said = (f"saw SHORTLY_RELEASE={seen.get('FACTORLAB-RELEASE')!r} and ran in {seen.get('FACTORLAB-CWD')}"
                    if where_code == 0 else f"{ended(where_code)}{tail(where_output)}")
            raise CheckFailed(f"Seen: `python release.py run -- python -c …` (a one-off printing its release and "
                              f"working directory) {said}.\nExpected: a one-off in the environment of the release's "
                              f"own processes: its release.env (SHORTLY_RELEASE={first}) and var/ of the deploy root "
                              "as the working directory.")
        dead = deploy.release(build, "dead", DATABASE_URL=url.rsplit("/", 1)[0] + "/factorlab_no_such_database")
        purge = ("flask", "--app", "shortly", "purge-expired")
        (code, output), (again, again_output) = side_by_side_one_offs((purge, dead), (purge, first))
        if code == 0 or code is None:
            raise CheckFailed(f"Seen: `python release.py run {dead} -- {PURGE_TEXT}`, on a release whose database "
                              f"does not exist, {ended(code)}.\nExpected: the one-off's own exit code, non-zero.")
        if again != 0:
            raise CheckFailed(f"Seen: with {dead} current, `python release.py run {first} -- {PURGE_TEXT}` "
                              f"{ended(again)}{tail(again_output)}\nExpected: the one-off of the release named, {first} "
                              "(its code and config), whichever is current: exit 0.")
    return (f"one-offs of {first} ran with its code and release.env (init-db, then purge-expired), and one of "
            f"{dead} passed on its failure ({ended(code)})")


@check("admin_processes.runbook", factor=12, title="OPS.md runs admin tasks as one-off processes",
       hint="Rewrite OPS.md's purge and database sections: no admin URL and no token; `flask --app shortly "
       "purge-expired` and `init-db` run as one-offs with a release's code and config (`python release.py run -- "
       "…`, `honcho run …` on a laptop), and nothing changes the schema as the app starts. Take SHORTLY_ADMIN_TOKEN "
       "out of .env.example.")
def runbook(ctx: CheckContext) -> str:
    """OPS.md sends nobody to an admin URL (nor to curl an admin task) and no longer says the schema changes as the
    app starts; it says how to run purge-expired as a one-off of a release, with its code and config (the
    catalogue's `runbook` of 12_admin_processes); .env.example has no admin token, and no setting the app does not
    read."""
    said = runbook_truth(ctx, "12_admin_processes")
    path = ctx.path / EXAMPLE
    values = env_values(path.read_text(errors="replace")) if path.is_file() else {}
    tokens = sorted(name for name in values if re.search(r"ADMIN|PURGE", name, re.I))
    if tokens:
        raise CheckFailed(f"Seen: {EXAMPLE} sets {listing(tokens)}.\nExpected: no admin token: no URL runs an admin "
                          "task, so nothing needs one.")
    unread = sorted(set(values) - set(environment_reads(ctx.path)) - TOOL_SETTINGS)
    if unread:
        raise CheckFailed(f"Seen: {EXAMPLE} sets {listing(unread)}, which the app does not read.\nExpected: only the "
                          "settings the app reads (a leftover, such as an old admin URL's key, misleads the operator).")
    return said
