"""Shortly — legacy edition.

A small URL shortener with link previews, run as processes of two types, each a
line of the Procfile: `web` serves the app with gunicorn on whatever $PORT it is
given; `worker` (worker.py) fetches link previews, the slow part, off a queue in
Redis, so that no request waits for another site. Run more of either type to
scale it; a process manager (honcho on a laptop, systemd or a platform on the
servers) runs them all in the foreground. On the servers each runs from a
numbered, read-only release (`python release.py run`, see deploy.sh and OPS.md).
Short URLs are built from the address each request came to, so the app never
needs to know its own.

Backing services are attached by URL, never named in the code: the database at
DATABASE_URL (required: PostgreSQL in every deploy, a laptop's too; SQLAlchemy also
reads an SQLite URL) and, optionally, the Redis at REDIS_URL: the preview cache and
the job queue (RQ). Without REDIS_URL there is no queue, and the web process fetches
each preview itself, slowly: fine for a quick try, never for serving.

Admin tasks are one-off processes, never requests and never a side effect of
starting: `flask --app shortly init-db` creates the table in a freshly attached
database (and is safe to run again), `flask --app shortly purge-expired` deletes
the expired links. Each runs with a release's code and config, like any process
of it (`python release.py run -- flask --app shortly purge-expired`, `honcho run
…` on a laptop), and exits 0 when it did its job. Importing the app, as every web
and worker process does, changes nothing in the database.

Development runs what production runs: the same PostgreSQL and Redis (on a laptop,
`factorlab services up` starts private ones and prints their URLs), the same
Procfile under honcho, and the app's tests (tests/, `python -m pytest`) against the
PostgreSQL at DATABASE_URL. A query that only SQLite accepts fails there, on the
laptop, before it reaches production.

The app writes nothing into its own folder, which is read-only in a release, and no
log file anywhere: its log is an event stream, one JSON object per line on stdout
(time, level, event and its fields), written as it happens. Whatever runs the
process collects the streams (honcho interleaves them on a laptop; journald, a
platform or a log router on the servers). It never forks itself into the background
and keeps no pid file: whoever starts a process watches it.

Every process is disposable: it starts in well under a second, whatever the
data, and stops cleanly when told to (SIGTERM). A web process stops accepting
connections, finishes the requests it holds and exits; a worker finishes the job
it holds. One killed outright (kill -9, a crash) loses nothing either: the next
worker to start puts the job it held back on the queue, and running a job twice
stores the same title.

Each process is stateless: it keeps nothing in memory that a later request needs.
Click counts go straight to the database; a visitor's "recent links" live in the
Redis at REDIS_URL, or without one in the signed session cookie itself. Sessions
expire after SHORTLY_SESSION_LIFETIME seconds without a visit (default: a week).
So any number of processes can serve side by side, and any of them can die.
"""
import html
import logging
import os
import random
import re
import secrets
import string
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import redis
import requests
import structlog
from rq import Queue
from flask import Flask, g, jsonify, redirect, render_template_string, request, session, url_for
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

# ---------------------------------------------------------------------------
# Settings
# Configuration comes from SHORTLY_* environment variables: SHORTLY_SECRET_KEY -> app.config["SECRET_KEY"].
# The backing services come by URL, under the names platforms use: DATABASE_URL and REDIS_URL.
# Every variable is listed in .env.example.
# ---------------------------------------------------------------------------

def env_value(text):
    """Read "true"/"false" as booleans and keep everything else as text (a token of digits stays a token)."""
    return {"true": True, "false": False}.get(text.strip().lower(), text)


app = Flask(__name__)
app.config.from_prefixed_env("SHORTLY", loads=env_value)
if not app.config.get("SECRET_KEY"):
    print("shortly: SHORTLY_SECRET_KEY is not set; set it in the environment and start again", file=sys.stderr)
    raise SystemExit(1)

PREVIEW_API_TOKEN = app.config.get("PREVIEW_TOKEN")  # optional: no token, no Authorization header
DEBUG = app.config["DEBUG"]
# The database is an attached resource, the same kind in every deploy: postgresql://... There is no default:
# a fallback file would be a second kind of database that only some deploys run on.
DATABASE_URL = os.environ.get("DATABASE_URL")
if not DATABASE_URL:
    print("shortly: DATABASE_URL is not set; set it to the URL of the PostgreSQL database (postgresql://…; "
          "on a laptop, `factorlab services up` starts one) and start again", file=sys.stderr)
    raise SystemExit(1)
# The preview cache is optional: no REDIS_URL, no cache (every preview is fetched).
REDIS_URL = os.environ.get("REDIS_URL") or None
# Which release this process runs: release.py writes SHORTLY_RELEASE into each release's config.
RELEASE = app.config.get("RELEASE") or "unreleased"


def session_lifetime(default=7 * 24 * 60 * 60):
    """SHORTLY_SESSION_LIFETIME, in seconds (unset: a week); anything but a whole number above 0 stops the app."""
    value = app.config.get("SESSION_LIFETIME")
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    print(f"shortly: SHORTLY_SESSION_LIFETIME must be a whole number of seconds above 0, not {value!r}",
          file=sys.stderr)
    raise SystemExit(1)


# A session ends after this many seconds without a visit: Flask then refuses its cookie (and browsers drop it),
# and the Redis list of its recent links expires with it.
SESSION_LIFETIME = session_lifetime()
app.permanent_session_lifetime = timedelta(seconds=SESSION_LIFETIME)

# How much the log says: a setting of its own, like every other. The code never asks which deploy it is in.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_LEVEL = str(app.config.get("LOG_LEVEL") or "DEBUG").upper()
if LOG_LEVEL not in LOG_LEVELS:
    print(f"shortly: SHORTLY_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {LOG_LEVEL!r}", file=sys.stderr)
    raise SystemExit(1)

LINK_TTL = timedelta(days=30)
CODE_ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 6
RECENT_MAX = 10
TOP_MAX = 10  # sites on the "top sites" page


# ---------------------------------------------------------------------------
# Logs: an event stream
# One event per line, as JSON, on stdout, unbuffered: {"event": "request", "path": "/", "status": 200,
# "level": "info", "timestamp": "…"}. The app never routes or stores its stream: honcho, journald or a
# platform collects it. Libraries that log through Python's logging (Flask's errors, RQ's worker) join
# the same stream in the same format, so an error is one event too, its traceback inside it.
# ---------------------------------------------------------------------------
def stream_logs(level):
    shared = [structlog.stdlib.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True)]
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)  # flushed after every event
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],  # what Flask, RQ, … log
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


stream_logs(LOG_LEVEL)
log = structlog.get_logger("shortly")
log.info("starting", release=RELEASE)

PREVIEW_TTL = 24 * 60 * 60  # seconds a cached page title is kept
PREVIEW_KEY = "shortly:preview:"  # + the URL: the cache key of a page title
RECENT_KEY = "shortly:recent:"  # + a session id: the Redis list of that session's recent links, newest first
PREVIEW_QUEUE = "previews"  # the RQ queue of preview jobs, which worker.py takes them from


# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------
SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    code TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    clicks INTEGER NOT NULL DEFAULT 0,
    created_at TEXT,
    expires_at TEXT
)
"""


def database_url(url):
    """The URL as SQLAlchemy should read it: a PostgreSQL URL that names no driver gets the one we install."""
    url = make_url(url)
    if url.drivername in ("postgres", "postgresql"):  # else SQLAlchemy 2.1 picks psycopg 3, not psycopg2
        url = url.set(drivername="postgresql+psycopg2")
    return url


engine = create_engine(database_url(DATABASE_URL))  # connects lazily, on the first query


def migrate():
    """Create the table if it is missing; safe to run again. Only `flask init-db` runs it, never an import."""
    with engine.begin() as conn:
        conn.execute(text(SCHEMA))


def purge_expired():
    """Delete the links that have expired; how many went. Safe to run again: a second run finds none."""
    with engine.begin() as conn:
        return conn.execute(text("DELETE FROM links WHERE expires_at <= :now"), {"now": iso(now())}).rowcount


def where():
    return engine.url.render_as_string(hide_password=True)


# One-off admin commands, each run as a process of its own: `flask --app shortly COMMAND`. Run them with the code
# and config of the release they act for (`python release.py run -- flask --app shortly COMMAND`). Each ends with
# exit code 0 when it did its job; a failure (the database does not answer, the table is missing) is one error
# event, with the traceback inside, and exit code 1.
@app.cli.command("init-db")
def init_db():
    """Create Shortly's table in the database at DATABASE_URL: run it once for a freshly attached database."""
    with failing_as("init-db"):
        migrate()
    print(f"shortly: the links table is ready in {where()}")


@app.cli.command("purge-expired")
def purge_expired_command():
    """Delete the expired links from the database at DATABASE_URL (once a week, say); safe to run again."""
    with failing_as("purge-expired"):
        purged = purge_expired()
    log.info("expired links purged", purged=purged)
    print(f"shortly: purged {purged} expired link(s) from {where()}")


@contextmanager
def failing_as(task):
    try:
        yield
    except SQLAlchemyError:
        log.exception("admin task failed", task=task, database=where())
        raise SystemExit(1) from None


def get_db():
    if "db" not in g:
        g.db = engine.connect()
    return g.db


@app.teardown_appcontext
def close_db(exc):
    db = g.pop("db", None)
    if db is not None:
        db.close()


def now():
    return datetime.now(timezone.utc)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def find_link(code):
    """The link row, or None when it is unknown or expired."""
    row = get_db().execute(text("SELECT * FROM links WHERE code = :code"), {"code": code}).mappings().first()
    if row is None or row["expires_at"] <= iso(now()):
        return None
    return row


def new_code():
    db = get_db()
    while True:
        code = "".join(random.choices(CODE_ALPHABET, k=CODE_LENGTH))
        if db.execute(text("SELECT 1 FROM links WHERE code = :code"), {"code": code}).first() is None:
            return code


def count_click(code):
    """Count one click in the database at once. The database adds 1 itself (no read, then write), so
    processes counting side by side never overwrite each other's clicks, and a process that dies owes none."""
    db = get_db()
    db.execute(text("UPDATE links SET clicks = clicks + 1 WHERE code = :code"), {"code": code})
    db.commit()


def top_sites(limit=TOP_MAX):
    """The sites most clicked through, over the links not expired: url, a title, how many links, their clicks.
    Standard SQL, as PostgreSQL checks it: every column either grouped or aggregated."""
    query = text("SELECT url, MAX(title) AS title, COUNT(*) AS links, SUM(clicks) AS clicks FROM links "
                 "WHERE expires_at > :now GROUP BY url ORDER BY SUM(clicks) DESC, COUNT(*) DESC, url LIMIT :limit")
    rows = get_db().execute(query, {"now": iso(now()), "limit": limit}).mappings()
    return [{"url": r["url"], "title": r["title"], "links": int(r["links"]), "clicks": int(r["clicks"])}
            for r in rows]


# ---------------------------------------------------------------------------
# Link previews
# ---------------------------------------------------------------------------
TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


# The Redis at REDIS_URL holds the preview cache and each session's recent links.
# Short timeouts and no retries: a slow or missing Redis must not slow down the app.
cache = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=2, socket_timeout=2,
                             retry=Retry(NoBackoff(), 0)) if REDIS_URL else None  # connects lazily
# The job queue lives in the same Redis. RQ stores jobs as bytes: its connection must not decode them.
jobs = Queue(PREVIEW_QUEUE, connection=redis.Redis.from_url(
    REDIS_URL, socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), 0))) if REDIS_URL else None


def cached_title(url):
    """The cached title of url, or None (not cached, no cache attached, or the cache is unreachable)."""
    if cache is None:
        return None
    try:
        return cache.get(PREVIEW_KEY + url)
    except redis.RedisError as exc:
        log.warning("preview cache unavailable, fetching instead", error=str(exc))
        return None


def cache_title(url, title):
    if cache is None:
        return
    try:
        cache.set(PREVIEW_KEY + url, title, ex=PREVIEW_TTL)
    except redis.RedisError as exc:
        log.warning("preview cache unavailable, title not cached", error=str(exc))


def fetch_title(url):
    title = cached_title(url)
    if title is not None:
        return title
    headers = {"Authorization": f"Bearer {PREVIEW_API_TOKEN}"} if PREVIEW_API_TOKEN else {}
    try:
        response = requests.get(url, headers=headers, timeout=5)
    except requests.RequestException:
        return ""
    match = TITLE_RE.search(response.text)
    title = html.unescape(match.group(1)).strip() if match else ""
    cache_title(url, title)
    return title


def fetch_preview(code):
    """The worker's job: fetch the title of link code's page and store it. Doing it twice stores the same title,
    so a job that runs again (its worker died half-way) does no harm."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT url FROM links WHERE code = :code"), {"code": code}).first()
    if row is None:  # purged since it was queued
        return ""
    title = fetch_title(row.url)  # no database connection held while another site takes its time
    with engine.begin() as conn:
        conn.execute(text("UPDATE links SET title = :title WHERE code = :code"), {"title": title, "code": code})
    log.info("preview stored", code=code, title=title)
    return title


def preview_later(code):
    """Queue the preview of link code for a worker. True if queued; False without a queue, or with one that is
    down: then this process fetches it now (slower, but the link still gets its title)."""
    if jobs is None:
        return False
    try:
        # By name, not by function: the worker imports "shortly" however this process was started.
        jobs.enqueue("shortly.fetch_preview", code, job_timeout=30, result_ttl=0, failure_ttl=24 * 60 * 60)
        return True
    except redis.RedisError as exc:
        log.warning("job queue unavailable, fetching the preview now", error=str(exc))
        return False


# Starting does nothing that grows with the data: no page is fetched and no cache warmed (every link keeps its
# title in the database, and a page missing from the cache is fetched when a worker needs it), so a process is
# serving within a second of its start, however many links there are. Nor does it touch the database: creating
# tables is `flask init-db`'s job, run once per database as a one-off, not by every process that starts.


# ---------------------------------------------------------------------------
# Sessions ("your recent links")
# The session is Flask's cookie, signed with SECRET_KEY: it carries the session id, and it expires after
# SESSION_LIFETIME seconds without a visit. The process keeps nothing: the recent links are in Redis, under
# the session id, or (with no REDIS_URL) in the cookie itself, so every process sees the same ones.
# ---------------------------------------------------------------------------
def session_id():
    """This visitor's session id, made on their first link."""
    session.permanent = True  # the cookie lasts SESSION_LIFETIME, renewed by each visit, not "until the browser quits"
    if "sid" not in session:
        session["sid"] = secrets.token_urlsafe(18)
    return session["sid"]


def recent_links():
    """This session's links, newest first."""
    if cache is None:
        return list(session.get("recent", []))
    sid = session.get("sid")
    if sid is None:
        return []
    key = RECENT_KEY + sid
    try:
        with cache.pipeline() as pipe:  # read the list, and keep it as long as the session the visit renewed
            recent, _ = pipe.lrange(key, 0, RECENT_MAX - 1).expire(key, SESSION_LIFETIME).execute()
        return recent
    except redis.RedisError as exc:
        log.warning("session store unavailable, showing no recent links", error=str(exc))
        return []


def remember(code):
    """Put code first in this session's recent links."""
    sid = session_id()
    if cache is None:  # no Redis: the signed cookie carries the list (a few short codes), the process nothing
        session["recent"] = [code, *session.get("recent", [])][:RECENT_MAX]
        return
    key = RECENT_KEY + sid
    try:
        with cache.pipeline() as pipe:  # one transaction: add the link, keep the newest few, expire with the session
            pipe.lpush(key, code).ltrim(key, 0, RECENT_MAX - 1).expire(key, SESSION_LIFETIME).execute()
    except redis.RedisError as exc:
        log.warning("session store unavailable, link not remembered", error=str(exc))


# ---------------------------------------------------------------------------
# Creating links
# ---------------------------------------------------------------------------
class BadRequest(Exception):
    pass


def is_web_url(url):
    return url.startswith(("http://", "https://")) and bool(urlparse(url).netloc)


def create_link(url, ttl_seconds=None):
    # Pasted links often carry spaces or "HTTPS://": accept them (this fix used to live only in prod's copy).
    if isinstance(url, str):
        url = url.strip()
        scheme, sep, rest = url.partition("://")
        if sep:
            url = scheme.lower() + sep + rest
    if not url:
        raise BadRequest("url is required")
    if not isinstance(url, str) or not is_web_url(url):
        raise BadRequest("url must be an http:// or https:// URL")
    if ttl_seconds is None:
        ttl = LINK_TTL
    elif isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds < 0:
        raise BadRequest("ttl_seconds must be an integer >= 0")
    else:
        ttl = timedelta(seconds=ttl_seconds)
    created = now()
    db = get_db()
    code = new_code()
    db.execute(
        text("INSERT INTO links (code, url, title, clicks, created_at, expires_at) "
             "VALUES (:code, :url, '', 0, :created_at, :expires_at)"),
        {"code": code, "url": url, "created_at": iso(created), "expires_at": iso(created + ttl)},
    )
    db.commit()
    # The title comes later, from a worker: the answer never waits for another site. (It is "" until then.)
    title = "" if preview_later(code) else fetch_preview(code)
    remember(code)
    log.info("link created", code=code, url=url)
    return {"code": code, "url": url, "short_url": request.host_url + code, "title": title}


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Shortly{% if heading %} · {{ heading }}{% endif %}</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 a { color: inherit; text-decoration: none; }
  input[type=url] { width: 70%; padding: .4rem; }
  button { padding: .4rem .8rem; }
  .error { color: #b00020; }
  table { border-collapse: collapse; }
  th, td { text-align: left; padding: .2rem 1rem .2rem 0; vertical-align: top; }
  code { background: #f3f3f3; padding: 0 .2rem; }
</style>
</head>
<body>
<h1><a href="{{ url_for('index') }}">Shortly</a></h1>
{% block content %}{% endblock %}
</body>
</html>
"""

INDEX = PAGE.replace("{% block content %}{% endblock %}", """
<form method="post" action="{{ url_for('shorten') }}">
  <input type="url" name="url" placeholder="https://example.com/a/very/long/link" value="{{ url or '' }}" required>
  <button type="submit">Shorten</button>
</form>
{% if error %}<p class="error">{{ error }}</p>{% endif %}
<p><a href="{{ url_for('top') }}">Top sites</a></p>
<h2>Your recent links</h2>
{% if recent %}
<ul class="recent">
  {% for code in recent %}<li><a href="{{ url_for('stats', code=code) }}"><code>{{ base }}{{ code }}</code></a></li>
  {% endfor %}
</ul>
{% else %}<p>None yet.</p>{% endif %}
""")

STATS = PAGE.replace("{% block content %}{% endblock %}", """
<h2>Stats for <code>{{ base }}{{ link.code }}</code></h2>
<table>
  <tr><th>Target</th><td class="url"><a href="{{ link.url }}">{{ link.url }}</a></td></tr>
  <tr><th>Title</th><td class="title">{{ link.title or "(no title)" }}</td></tr>
  <tr><th>Clicks</th><td class="clicks">{{ clicks }}</td></tr>
  <tr><th>Created</th><td>{{ link.created_at }}</td></tr>
  <tr><th>Expires</th><td>{{ link.expires_at }}</td></tr>
</table>
""")


TOP = PAGE.replace("{% block content %}{% endblock %}", """
<h2>Top sites</h2>
{% if sites %}
<table class="top">
  <tr><th>Site</th><th>Links</th><th>Clicks</th></tr>
  {% for site in sites %}<tr><td><a href="{{ site.url }}">{{ site.title or site.url }}</a></td>
  <td class="links">{{ site.links }}</td><td class="clicks">{{ site.clicks }}</td></tr>
  {% endfor %}
</table>
{% else %}<p>No links yet.</p>{% endif %}
""")


# ---------------------------------------------------------------------------
# One event per request: what was asked, how it was answered, how long it took. (A request that fails gets
# Flask's error event as well, with the traceback inside it.)
# ---------------------------------------------------------------------------
@app.before_request
def start_clock():
    g.started = time.perf_counter()


@app.after_request
def log_request(response):
    took = time.perf_counter() - g.get("started", time.perf_counter())
    log.log(logging.ERROR if response.status_code >= 500 else logging.INFO, "request", method=request.method,
            path=request.path, status=response.status_code, ms=round(took * 1000, 1))
    return response


@app.get("/")
def index():
    recent = recent_links()
    return render_template_string(INDEX, heading=None, recent=recent, base=request.host_url, error=None, url=None)


@app.post("/shorten")
def shorten():
    url = request.form.get("url", "")
    try:
        link = create_link(url)
    except BadRequest as exc:
        recent = recent_links()
        page = render_template_string(INDEX, heading=None, recent=recent, base=request.host_url, error=str(exc), url=url)
        return page, 400
    return redirect(url_for("stats", code=link["code"]), 303)


@app.post("/api/links")
def api_create():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify(error="send a JSON object like {\"url\": \"https://...\"}"), 400
    try:
        link = create_link(data.get("url"), data.get("ttl_seconds"))
    except BadRequest as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(link), 201


@app.get("/api/recent")
def api_recent():
    return jsonify(recent=recent_links())


@app.get("/top")
def top():
    return render_template_string(TOP, heading="top sites", sites=top_sites())


@app.get("/api/top")
def api_top():
    return jsonify(sites=top_sites())


@app.get("/api/release")
def api_release():
    return jsonify(release=RELEASE)


@app.get("/api/links/<code>")
def api_link(code):
    link = find_link(code)
    if link is None:
        return jsonify(error="no such link"), 404
    return jsonify(
        code=link["code"],
        url=link["url"],
        title=link["title"],
        clicks=link["clicks"],
        created_at=link["created_at"],
        expires_at=link["expires_at"],
    )


@app.get("/stats/<code>")
def stats(code):
    link = find_link(code)
    if link is None:
        return "No such link.", 404
    return render_template_string(STATS, heading=code, link=link, clicks=link["clicks"], base=request.host_url)


@app.get("/<code>")
def follow(code):
    link = find_link(code)
    if link is None:
        return "No such link.", 404
    count_click(code)
    return redirect(link["url"], 302)


# ---------------------------------------------------------------------------
# Running
# Every process runs in the foreground and stays the process it was started as: whoever started it (honcho,
# systemd, a platform, a terminal) sees it, signals it and restarts it. The app installs no signal handler of its
# own: on SIGTERM, gunicorn closes its port, lets every request in flight finish (for up to --graceful-timeout
# seconds, 30 by default) and exits 0; worker.py lets the job in hand finish.
# On a laptop too the Procfile runs the app (`honcho start`): the same server, processes and services as
# production, never a development server of its own.
# ---------------------------------------------------------------------------
