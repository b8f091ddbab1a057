"""Shortly — legacy edition.

A small URL shortener with link previews. Run it with `python3 shortly.py`
(or `python3 shortly.py --daemon` on the servers, see deploy.sh and OPS.md).

Backing services are attached by URL, never named in the code: the database at
DATABASE_URL (SQLite or PostgreSQL, through SQLAlchemy) and, optionally, the
preview cache at REDIS_URL. A freshly attached database gets its table with
`flask --app shortly init-db`.
"""
import html
import logging
import os
import random
import re
import string
import sys
from datetime import datetime, timedelta, timezone
from logging.handlers import RotatingFileHandler
from urllib.parse import urlparse

import redis
import requests
from flask import Flask, g, jsonify, redirect, render_template_string, request, session, url_for
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine, make_url, text

HERE = os.path.dirname(os.path.abspath(__file__))

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
ADMIN_TOKEN = app.config.get("ADMIN_TOKEN")  # optional: no token, the purge endpoint refuses everyone
DEBUG = app.config["DEBUG"]
# The database is an attached resource: sqlite:///shortly.db, postgresql://..., whatever the URL says.
# Unset, it is an SQLite file in the working directory.
DATABASE_URL = os.environ.get("DATABASE_URL") or "sqlite:///shortly.db"
# The preview cache is optional: no REDIS_URL, no cache (every preview is fetched).
REDIS_URL = os.environ.get("REDIS_URL") or None
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
FLUSH_EVERY = 10  # write click counts in batches, to spare the disk
PID_FILE = os.path.join(HERE, "shortly.pid")

log = logging.getLogger("shortly")
log.setLevel(LOG_LEVEL)
_log_handler = RotatingFileHandler(os.path.join(HERE, "shortly.log"), maxBytes=1_000_000, backupCount=5)
_log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
log.addHandler(_log_handler)

SESSIONS = {}  # sid -> {"recent": [code, ...]}
PENDING_CLICKS = {}  # code -> clicks not yet written to the database
PREVIEW_TTL = 24 * 60 * 60  # seconds a cached page title is kept
PREVIEW_KEY = "shortly:preview:"  # + the URL: the cache key of a page title


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
    """Create the table if it is missing; safe to run again (at import, and by `flask init-db`)."""
    with engine.begin() as conn:
        conn.execute(text(SCHEMA))


@app.cli.command("init-db")
def init_db():
    """Create Shortly's table in the database at DATABASE_URL: run it once for a freshly attached database."""
    migrate()
    print(f"shortly: the links table is ready in {engine.url.render_as_string(hide_password=True)}")


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


def clicks_of(row):
    return row["clicks"] + PENDING_CLICKS.get(row["code"], 0)


def count_click(code):
    PENDING_CLICKS[code] = PENDING_CLICKS.get(code, 0) + 1
    if sum(PENDING_CLICKS.values()) >= FLUSH_EVERY:
        flush_clicks()


def flush_clicks():
    db = get_db()
    for code, n in PENDING_CLICKS.items():
        db.execute(text("UPDATE links SET clicks = clicks + :n WHERE code = :code"), {"n": n, "code": code})
    db.commit()
    PENDING_CLICKS.clear()


# ---------------------------------------------------------------------------
# Link previews
# ---------------------------------------------------------------------------
TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


# Short timeouts and no retries: a slow or missing cache must not slow down the app.
cache = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=2, socket_timeout=2,
                             retry=Retry(NoBackoff(), 0)) if REDIS_URL else None  # connects lazily


def cached_title(url):
    """The cached title of url, or None (not cached, no cache attached, or the cache is unreachable)."""
    if cache is None:
        return None
    try:
        return cache.get(PREVIEW_KEY + url)
    except redis.RedisError as exc:
        log.warning("preview cache unavailable, fetching instead: %s", exc)
        return None


def cache_title(url, title):
    if cache is None:
        return
    try:
        cache.set(PREVIEW_KEY + url, title, ex=PREVIEW_TTL)
    except redis.RedisError as exc:
        log.warning("preview cache unavailable, title not cached: %s", exc)


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


def warm_cache():
    """Fetch the preview of every stored link that is not cached yet, so stats pages are fast from the first hit."""
    try:
        cache.ping()
    except redis.RedisError as exc:
        log.warning("preview cache unavailable, not warming it: %s", exc)
        return
    with engine.connect() as conn:
        urls = [row.url for row in conn.execute(text("SELECT DISTINCT url FROM links"))]
    for url in urls:
        if cached_title(url) is None:
            fetch_title(url)


migrate()
if cache is not None:  # without a cache there is nothing to warm
    warm_cache()
engine.dispose()  # keep no connection from import time: a process forked later opens its own


# ---------------------------------------------------------------------------
# Sessions ("your recent links")
# ---------------------------------------------------------------------------
def user_session():
    sid = session.get("sid")
    if sid not in SESSIONS:
        sid = "".join(random.choices(CODE_ALPHABET, k=24))
        session["sid"] = sid
        SESSIONS[sid] = {"recent": []}
    return SESSIONS[sid]


def remember(code):
    recent = user_session()["recent"]
    recent.insert(0, code)
    del recent[RECENT_MAX:]


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
    title = fetch_title(url)
    created = now()
    db = get_db()
    code = new_code()
    db.execute(
        text("INSERT INTO links (code, url, title, clicks, created_at, expires_at) "
             "VALUES (:code, :url, :title, 0, :created_at, :expires_at)"),
        {"code": code, "url": url, "title": title, "created_at": iso(created), "expires_at": iso(created + ttl)},
    )
    db.commit()
    remember(code)
    log.info("created %s -> %s", code, url)
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


@app.get("/")
def index():
    recent = user_session()["recent"]
    return render_template_string(INDEX, heading=None, recent=recent, base=request.host_url, error=None, url=None)


@app.post("/shorten")
def shorten():
    url = request.form.get("url", "")
    try:
        link = create_link(url)
    except BadRequest as exc:
        recent = user_session()["recent"]
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
    return jsonify(recent=list(user_session()["recent"]))


@app.get("/api/links/<code>")
def api_link(code):
    link = find_link(code)
    if link is None:
        return jsonify(error="no such link"), 404
    return jsonify(
        code=link["code"],
        url=link["url"],
        title=link["title"],
        clicks=clicks_of(link),
        created_at=link["created_at"],
        expires_at=link["expires_at"],
    )


@app.get("/stats/<code>")
def stats(code):
    link = find_link(code)
    if link is None:
        return "No such link.", 404
    return render_template_string(STATS, heading=code, link=link, clicks=clicks_of(link), base=request.host_url)


@app.get("/admin/purge")
def purge():
    if not ADMIN_TOKEN or request.args.get("token") != ADMIN_TOKEN:
        return jsonify(error="forbidden"), 403
    db = get_db()
    purged = db.execute(text("DELETE FROM links WHERE expires_at <= :now"), {"now": iso(now())}).rowcount
    db.commit()
    log.warning("purged %d expired links", purged)
    return jsonify(purged=purged)


@app.get("/<code>")
def follow(code):
    link = find_link(code)
    if link is None:
        return "No such link.", 404
    count_click(code)
    log.info("redirect %s -> %s", code, link["url"])
    return redirect(link["url"], 302)


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------
def daemonize():
    """Detach from the terminal and write our pid to shortly.pid."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    with open(PID_FILE, "w") as f:
        f.write(str(os.getpid()))
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


if __name__ == "__main__":
    if "--daemon" in sys.argv:
        daemonize()
        DEBUG = False  # the reloader would fork a second server behind our back
    app.run(host="127.0.0.1", port=5000, debug=DEBUG)
