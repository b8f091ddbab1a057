"""Factor X, dev/prod parity: development runs on what production runs, so what passes there holds here.

Production is PostgreSQL (factor IV attached it by URL); the gaps the checks close are the ones that let a
query reach production untried on it:
- a fallback: without DATABASE_URL a process runs anyway, on a file of its own (or on any default), so a
  laptop, a test run or a forgotten config runs another database than production does. Every process (web in a
  plain and in a developer's config, the worker, the setup command) must refuse to start, naming the variable;
- the app's own pages on PostgreSQL: links made, followed and ranked on a brand-new PostgreSQL database, every
  page answers, and the "top sites" ranking adds up;
- the app's own tests: run as a one-off with the app's own manifest, they pass on a brand-new PostgreSQL
  database, and fail when DATABASE_URL names a database that does not answer (tests that pass there never
  used the database they were given: an SQLite file of their own, a mock, or nothing);
- the development config (.env.example) attaches the same kinds of services as production, the code starts no
  development server of its own (a laptop runs the Procfile), and the runbook says how a laptop gets the
  services with one command, and how the tests run on them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from urllib.parse import urlsplit

from ..process import free_port, wait_until
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import REQUIRED_APP_ENV, SETUP, SETUP_TEXT, create_link, follow
from .attached import postgres_database, redis_server, serve, side_by_side, start_worker, workers_waiting
from .config import LAX_ENV
from .runbook import EXAMPLE, runbook_truth
from .source import Module, env_values, python_files, rel, text_files
from .text import listing, tail

VARIABLE = "DATABASE_URL"
REFUSE_WITHIN = 20.0  # seconds for a process started without DATABASE_URL to exit (an import, a container)
TESTS = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
TESTS_TEXT = "python -m pytest"
TESTS_WITHIN = 120.0  # seconds for the app's own test suite, as a one-off
STATS_WITHIN = 10.0  # seconds for PostgreSQL to count what the suite's connections did, once they have ended
PAGE_TITLE = "A page to rank"
SITES = ("/first", "/second", "/third")  # three sites, ranked by their clicks over their links
PLAN = ((0, 2), (0, 1), (1, 2), (2, 0))  # (site, clicks) of each link made: site 0 has 2 links and 3 clicks
EXPECTED = [(0, 2, 3), (1, 1, 2), (2, 1, 0)]  # (site, links, clicks) as the top sites list them
TOP_PAGES = ("/", "/top", "/api/top", "/api/recent")
SUMMARY = re.compile(r"\b(\d+) (passed|failed|errors?)\b")
PG_SCHEMES = ("postgres", "postgresql")
REDIS_SCHEMES = ("redis", "rediss")


def _refused(said: str, done) -> str | None:
    """What is wrong with how a process started without DATABASE_URL ended, or None when it refused to start
    with a non-zero code, naming the variable."""
    if done.serving:
        return f"{said} the process started and served requests"
    if getattr(done, "waited", False):
        return f"{said} the worker started and waited for jobs"
    if done.code is None:
        return f"{said} the process was still running {REFUSE_WITHIN:g} s later"
    if done.code == 0:
        return f"{said} the process exited with code 0, as if all was well{tail(done.output)}"
    if VARIABLE not in done.output:
        return f"{said} the process exited with code {done.code} without naming {VARIABLE}{tail(done.output)}"
    return None


def _worker_without_database(ctx: CheckContext, env: dict[str, str]):
    """Start the Procfile's worker without DATABASE_URL (a Redis of its own, so that the queue is not what stops
    it): how it ended (waited: it started, and blocked on the queue), or None when the Procfile has no worker."""
    with redis_server() as redis:
        worker = start_worker(ctx, {**env, "REDIS_URL": redis.url()})
        if worker is None:
            return None
        # A worker that started anyway blocks on the queue: no need to wait for the time to run out.
        waited = workers_waiting(redis, [worker], REFUSE_WITHIN)
        code = None if waited else worker.exited(REFUSE_WITHIN)
        output = worker.output()
        if code is None:
            worker.kill()
    return _Ended(code, output, waited=waited)


class _Ended:
    def __init__(self, code, output, serving=False, waited=False):
        self.code, self.output, self.serving, self.waited = code, output, serving, waited


@check("dev_prod_parity.no_fallback", factor=10, title="Without DATABASE_URL no process starts: there is no "
       "second kind of database", hint=f"Make {VARIABLE} required, as SHORTLY_SECRET_KEY is: unset or empty, print "
       "its name and exit non-zero, in every process (web, worker, init-db) and in every mode (debug too). A "
       "fallback to an SQLite file (or to any URL of the code's own) is a database that only laptops and tests run "
       "on, where queries pass that production's PostgreSQL refuses.", timeout=90)
def no_fallback(ctx: CheckContext) -> str:
    """Started without DATABASE_URL, the app refuses to start (non-zero exit naming the variable) however it is
    started: its web process in a plain config and in a developer's (SHORTLY_DEBUG=true, SHORTLY_ENV=development,
    …), empty, the Procfile's worker, and the one-off setup command."""
    plain, lax = dict(REQUIRED_APP_ENV), {**REQUIRED_APP_ENV, **LAX_ENV}
    runs = [
        (f"without {VARIABLE}, the web process:", lambda: ctx.runner.run_to_exit(plain, timeout=REFUSE_WITHIN)),
        (f"with {VARIABLE} empty, the web process:",
         lambda: ctx.runner.run_to_exit({**plain, VARIABLE: ""}, timeout=REFUSE_WITHIN)),
        (f"without {VARIABLE}, in a developer's config (SHORTLY_DEBUG=true, FLASK_DEBUG=1, SHORTLY_ENV=development, "
         "…), the web process:", lambda: ctx.runner.run_to_exit(lax, timeout=REFUSE_WITHIN)),
        (f"without {VARIABLE}, `{SETUP_TEXT}`:", lambda: ctx.runner.run_command(SETUP, lax, timeout=REFUSE_WITHIN)),
        (f"without {VARIABLE}, the Procfile's worker (in a developer's config):",
         lambda: _worker_without_database(ctx, lax)),
    ]
    ended = side_by_side(lambda run: (run[0], run[1]()), runs)
    for said, done in ended:
        if done is None:
            continue
        wrong = _refused(said, done)
        if wrong:
            raise CheckFailed(f"Seen: {wrong}.\nExpected: no process starts without {VARIABLE}: each exits at once "
                              f"with a non-zero code and a message naming {VARIABLE}, whatever mode it is in.")
    return (f"without {VARIABLE} (or with it empty, or in a developer's config) the web process, the worker and "
            f"`{SETUP_TEXT}` each exit non-zero, naming {VARIABLE}")


DATABASE_ERROR = re.compile(r"\b(psycopg2?|sqlalchemy|sqlite3)\.\S*(Error|errors\.\w+)\b.*")


def _database_error(app) -> str:
    """The first database error the app printed or logged (its log may be a file until factor XI), or ""."""
    texts = [app.output(), *(data.decode(errors="replace") for data in app.written().values())]
    for text in texts:
        found = DATABASE_ERROR.search(text)
        if found:
            return found.group(0).strip()[:300]
    return ""


def _sites(page: TestPage) -> list[str]:
    return [page.url(path) for path in SITES]


def _top(answer) -> list[tuple] | None:
    """(url, links, clicks, title) of each site of GET /api/top, or None when it is not that JSON."""
    try:
        sites = answer.json()["sites"]
        return [(s["url"], s["links"], s["clicks"], s.get("title")) for s in sites]
    except (ValueError, KeyError, TypeError):
        return None


@check("dev_prod_parity.pages_on_postgres", factor=10, title="Every page works on PostgreSQL, as in production",
       hint="Run the app (and its tests) on PostgreSQL, as production does, and look at what fails: SQLite accepts "
       "SQL that PostgreSQL refuses. In the top sites query every column must be grouped or aggregated (GROUP BY "
       "url with a bare `title` is SQLite's leniency: use MAX(title), or group by it too). Write standard SQL, and "
       "try it where it will run.", timeout=90)
def pages_on_postgres(ctx: CheckContext) -> str:
    """On a brand-new PostgreSQL database (set up with init-db), the web process (the Procfile's, without
    REDIS_URL: previews fetched in the request) makes links to three sites, follows them, and then every page
    answers 2xx: the home page, the top sites page, /api/top, /api/recent and each link's stats; /api/top ranks
    the sites by their clicks, with their number of links and their page's title."""
    with postgres_database(ctx, "parity") as (_, url), TestPage(PAGE_TITLE) as page:
        app = serve(ctx, {VARIABLE: url}, process_type="web")
        sites = _sites(page)
        codes = []
        for site, clicks in PLAN:
            code = create_link(app, sites[site], where="PostgreSQL")["code"]
            codes.append(code)
            for _ in range(clicks):
                follow(app, code, where="PostgreSQL")
        broken = []
        for path in [*TOP_PAGES, *(f"/stats/{code}" for code in codes[:1]), *(f"/api/links/{c}" for c in codes[:1])]:
            answer = app.get(path)
            if not 200 <= answer.status_code < 300:
                broken.append(f"GET {path} answered {answer.status_code}")
        if broken:
            error = _database_error(app)
            said = f"\nThe app's error: {error}" if error else app.last_words()
            raise CheckFailed(f"Seen: on PostgreSQL, {'; '.join(broken)}.{said}\nExpected: every page answers on "
                              "PostgreSQL, the database production runs on.")
        top = _top(app.get("/api/top"))
        expected = [(sites[s], links, clicks) for s, links, clicks in EXPECTED]
        if top is None or [row[:3] for row in top] != expected:
            shown = "no list of sites" if top is None else repr([row[:3] for row in top])
            raise CheckFailed(f"Seen: on PostgreSQL, GET /api/top listed {shown}.\nExpected: each site once, "
                              f"with its links and their clicks added up, most clicked first: {expected!r}.")
        untitled = [row[0] for row in top if row[3] != PAGE_TITLE]
        if untitled:
            raise CheckFailed(f"Seen: on PostgreSQL, GET /api/top gave no title (or another one) for {untitled[0]}."
                              f"\nExpected: each site with its page's title, {PAGE_TITLE!r}.")
    return ("on a new PostgreSQL database every page answered, and /api/top ranked three sites by clicks, with "
            "their links and titles")


def _rows_touched(server, url: str) -> int:
    """Rows inserted, updated or deleted in the tables of a PostgreSQL database, as its statistics have them so
    far (0 when they cannot be read). Scans are not counted: making a table with a primary key scans it once. The
    database is brand-new, so a suite that tests anything writes rows."""
    try:
        found = server.rows(url, "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables")
        return int(found[0][0])
    except Exception:
        return 0


def _counts(output: str) -> dict[str, int]:
    """pytest's summary, read from its last line that has one: {"passed": 7, "failed": 1, "error": 0}."""
    counts = {"passed": 0, "failed": 0, "error": 0}
    for line in reversed(output.splitlines()):
        found = SUMMARY.findall(line)
        if found:
            for number, word in found:
                counts["error" if word.startswith("error") else word] += int(number)
            break
    return counts


@check("dev_prod_parity.app_tests", factor=10, title="The app's own tests pass on PostgreSQL, and need it",
       hint="Give the app tests of its own (tests/, run with `python -m pytest`; pytest declared in "
       "requirements.txt) that run on the database at DATABASE_URL, as the app does: not on an SQLite file of "
       "their own. In tests/conftest.py, refuse to start without DATABASE_URL (pytest.exit), and let the app read "
       "it. Then run them on PostgreSQL (`factorlab services up`) and fix what they find.", timeout=300)
def app_tests(ctx: CheckContext) -> str:
    """`python -m pytest` run as a one-off in the app's folder, with the packages of its requirements.txt alone:
    with DATABASE_URL naming a brand-new PostgreSQL database, at least one test passes and none fails; with
    DATABASE_URL naming a PostgreSQL that does not answer, and without DATABASE_URL, the suite does not pass
    (tests that pass there never used the database they were given, or fall back to one of their own)."""
    env = {**REQUIRED_APP_ENV, "PYTHONDONTWRITEBYTECODE": "1"}
    with postgres_database(ctx, "apptests") as (server, url):
        done = ctx.runner.run_command(TESTS, {**env, VARIABLE: url}, timeout=TESTS_WITHIN, clean=True)
        # Rows the suite wrote there: PostgreSQL counts them per table, and a backend reports its
        # counts as it ends (the suite's connections end with it), so wait for them rather than read them once.
        used = {"rows": 0}
        if done.code == 0:
            wait_until(lambda: used.update(rows=_rows_touched(server, url)) or used["rows"] > 0, STATS_WITHIN,
                       every=0.1)
    counts = _counts(done.output)
    if "No module named pytest" in done.output:
        raise CheckFailed(f"Seen: `{TESTS_TEXT}` could not run: pytest is not installed by requirements.txt."
                          "\nExpected: the app's test runner declared, pinned, with the app's other packages.")
    if done.code != 0 or counts["failed"] or counts["error"] or not counts["passed"]:
        said = ("no test passed" if done.code in (0, 5) and not counts["passed"]
                else f"{counts['failed']} failed, {counts['error']} error(s)" if counts["failed"] or counts["error"]
                else done.ended())
        raise CheckFailed(f"Seen: `{TESTS_TEXT}` with {VARIABLE} naming a new PostgreSQL database: {said}"
                          f"{tail(done.output, 8)}\nExpected: the app's tests pass on PostgreSQL, the database "
                          "production runs on (at least one test, none failing).")
    if not used["rows"]:
        raise CheckFailed(f"Seen: `{TESTS_TEXT}` passed ({counts['passed']} test(s)), but PostgreSQL saw no row of "
                          f"theirs: no row of the database at {VARIABLE} was written.\nExpected: tests "
                          f"that run on the database at {VARIABLE}, as the app does (not on an engine, a file or a "
                          "mock of their own).")
    dead = f"postgresql://factorlab@127.0.0.1:{free_port()}/nothing"
    away, unset = side_by_side(lambda extra: ctx.runner.run_command(TESTS, {**env, **extra}, timeout=TESTS_WITHIN,
                                                                    clean=True), [{VARIABLE: dead}, {}])
    for said, done in ((f"with {VARIABLE} naming a PostgreSQL that does not answer ({dead})", away),
                       (f"without {VARIABLE}", unset)):
        if done.code == 0:
            raise CheckFailed(f"Seen: `{TESTS_TEXT}` also passed {said}{tail(done.output, 3)}\nExpected: tests that "
                              f"run on the database at {VARIABLE}, as the app does, and do not pass without it (not "
                              "on an SQLite database of their own, a mock, or no database at all).")
    return (f"{counts['passed']} test(s) passed on a new PostgreSQL database, and the suite did not pass with "
            f"{VARIABLE} naming a database that does not answer, nor without it")


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.split("+", 1)[0].lower() if "://" in url else ""


def _flask_names(module: Module, app: str) -> set[str]:
    """Names a module binds to a Flask app: made here (NAME = Flask(...)), imported from the app's module (from
    shortly import app as application; app, dotted, is "shortly.app"), and names bound to one of those."""
    made = {name for name, target in module.aliases.items() if target == app}
    for _ in range(3):  # app = Flask(...); application = app; server = application
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Assign):
                value = node.value
                makes = (isinstance(value, ast.Call) and (module.qualified(value.func) or "").split(".")[-1] == "Flask"
                         or isinstance(value, ast.Name) and value.id in made
                         or module.qualified(value) == app)
                if makes:
                    made.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return made


def dev_servers(root: Path, app: str = "shortly:app") -> list[str]:
    """Where the code starts a development server of its own: app.run(...) on a Flask app (made in that file or
    imported from the app's module), werkzeug's run_simple; and `flask run` or `python <app module>` in a script,
    a Makefile or a Procfile. 'file:line: what'."""
    module_name, _, variable = app.partition(":")
    found = []
    for path in python_files(root):
        module = Module.read(path, root)
        if module is None:
            continue
        local = _flask_names(module, f"{module_name}.{variable}")
        own = path.resolve() == (root / (module_name.replace(".", "/") + ".py")).resolve()
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call):
                continue
            called = module.qualified(node.func) or ""
            if called.split(".")[-1] == "run_simple":
                found.append(f"{rel(path, root)}:{node.lineno}: {ast.unparse(node.func)}(...)")
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "run":
                owner = node.func.value
                name = owner.id if isinstance(owner, ast.Name) else None
                if name in local or (own and name == variable) or module.qualified(owner) == f"{module_name}.{variable}":
                    found.append(f"{rel(path, root)}:{node.lineno}: {ast.unparse(node.func)}(...)")
    script = re.compile(rf"(?i)\bflask\b[^\n#]*\brun\b|\bpython3?\s+(\./)?{re.escape(module_name)}\.py\b")
    for path, text in text_files(root):
        if path.suffix in (".py", ".md", ".txt", ".rst") or path.name.startswith(".env"):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if not line.lstrip().startswith("#") and script.search(line):
                found.append(f"{rel(path, root)}:{number}: {line.strip()[:80]}")
    return found


@check("dev_prod_parity.dev_like_prod", factor=10, title="Development runs what production runs: the same "
       "services, the same server", hint=f"In {EXAMPLE}, the config every deploy (a laptop's too) starts from, set "
       "DATABASE_URL to a postgresql:// URL and REDIS_URL to a redis:// URL (placeholders, no real password): "
       "`factorlab services up` prints a laptop's own. And start no development server in the code (`app.run`, "
       "`flask run`): a laptop runs the Procfile, with honcho, as production does.")
def dev_like_prod(ctx: CheckContext) -> str:
    """The example config (.env.example), which a new deploy and a new laptop copy, sets DATABASE_URL to a
    PostgreSQL URL and REDIS_URL to a Redis URL, the kinds of services production runs; and nothing in the code
    or its scripts starts a development server (app.run, werkzeug's run_simple, `flask run`)."""
    path = ctx.path / EXAMPLE
    if not path.is_file():
        raise CheckFailed(f"Seen: no {EXAMPLE}.\nExpected: an example config, with DATABASE_URL and REDIS_URL.")
    values = env_values(path.read_text(errors="replace"))
    wrong = []
    for name, schemes, kind in ((VARIABLE, PG_SCHEMES, "PostgreSQL"), ("REDIS_URL", REDIS_SCHEMES, "Redis")):
        value = values.get(name)
        if not value:
            wrong.append(f"{name} is {'missing' if value is None else 'empty'}")
        elif _scheme(value) not in schemes:
            wrong.append(f"{name}={value} is not a {kind} URL")
    if wrong:
        raise CheckFailed(f"Seen: in {EXAMPLE}, {'; '.join(wrong)}.\nExpected: the development config attaches what "
                          "production runs: DATABASE_URL=postgresql://…, REDIS_URL=redis://….")
    servers = dev_servers(ctx.path, ctx.catalogue.app if ctx.catalogue else "shortly:app")
    if servers:
        raise CheckFailed(f"Seen: a development server of the app's own: {listing(servers)}.\nExpected: one way to "
                          "run the app, everywhere: the Procfile's processes (gunicorn and the worker), under honcho "
                          "on a laptop.")
    return (f"{EXAMPLE} attaches PostgreSQL (DATABASE_URL) and Redis (REDIS_URL), and the code starts no development "
            "server: a laptop runs what production runs")


@check("dev_prod_parity.runbook", factor=10, title="The runbook sends developers to production's services, with "
       "one command", hint="OPS.md: take out \"Dev stays on SQLite\" and the development server; say how a laptop "
       "gets PostgreSQL and Redis with one command (`factorlab services up`, or a compose file), and how the "
       "tests run on them (`python -m pytest`).")
def runbook(ctx: CheckContext) -> str:
    """OPS.md no longer sends development to SQLite or Flask's development server, and says how a laptop gets
    the backing services with one command and runs the tests on them (the catalogue's `runbook` of
    10_dev_prod_parity)."""
    return runbook_truth(ctx, "10_dev_prod_parity")
