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
# # Factor X — Dev/prod parity
#
# **What you will learn**
#
# - the three gaps between development and production (of time, of people, of tools), and why the tools gap is
#   the one code can close
# - how a lighter database on a laptop (SQLite) lets a query through that production's PostgreSQL refuses, and
#   why tests on that lighter database do not catch it
# - how to run development, and the app's own tests, on the same kinds of services as production, with one
#   command, and why the app should refuse to start without them rather than fall back
#
# ⏱ About 50 minutes. The factor on 12factor.net: [X. Dev/prod parity](https://12factor.net/dev-prod-parity).
#
# You start where notebook 09 ended: `solutions/09_disposability`.

# %%
import os
import re
import shutil
import subprocess
import sys

from factorlab import notebook as nb

# %% [markdown]
# ## The idea
#
# Development and production drift apart in three ways. There is a gap of **time**: code written today reaches
# production weeks later. There is a gap of **people**: some write the code, others deploy and run it. And there
# is a gap of **tools**: a laptop runs a light stand-in (an SQLite file, an in-memory cache, Flask's development
# server) where production runs PostgreSQL, Redis and gunicorn.
#
# Factors V to IX have shrunk the first two: a release is built, configured and run by the same few commands,
# and can be deployed hours after it was written, by whoever wrote it. This factor closes the third. Adapters
# such as SQLAlchemy make two databases *look* alike, which is exactly why the difference goes unnoticed: the
# same Python code sends each of them the same SQL, and only one of them accepts it. The backing services of
# every deploy, a laptop included, should be of the same kinds and versions, and running them should take one
# command.

# %%
ws = nb.workspace("10")

# %% [markdown]
# ## A change since factor IX: a "top sites" page, with tests
#
# Production moved to PostgreSQL last month (a restore and a new `DATABASE_URL`, as factor IV made possible).
# Laptops stayed on SQLite: nothing to install. Meanwhile a teammate added a page listing the sites Shortly's
# links lead to, ranked by clicks, and the app's first tests. Put their change into your workspace. First, the
# query and the two routes:

# %%
nb.replace(ws / "shortly.py", "RECENT_MAX = 10\n", 'RECENT_MAX = 10\nTOP_MAX = 10  # sites on the "top sites" page\n')
nb.replace(ws / "shortly.py", '''# ---------------------------------------------------------------------------
# Link previews
''', '''def top_sites(limit=TOP_MAX):
    """The sites most clicked through, over the links not expired: url, a title, how many links, their clicks."""
    query = text("SELECT url, title, COUNT(*) AS links, SUM(clicks) AS clicks FROM links "
                 "WHERE expires_at > :now GROUP BY url ORDER BY SUM(clicks) DESC, COUNT(*) DESC, url LIMIT :limit")
    rows = get_db().execute(query, {"now": iso(now()), "limit": limit}).mappings()
    return [{"url": r["url"], "title": r["title"], "links": int(r["links"]), "clicks": int(r["clicks"])}
            for r in rows]


# ---------------------------------------------------------------------------
# Link previews
''')
nb.replace(ws / "shortly.py", '''@app.get("/api/release")''', '''@app.get("/top")
def top():
    return render_template_string(TOP, heading="top sites", sites=top_sites())


@app.get("/api/top")
def api_top():
    return jsonify(sites=top_sites())


@app.get("/api/release")''')

# %% [markdown]
# Then the page itself, and a link to it from the home page:

# %%
nb.replace(ws / "shortly.py", '''@app.get("/")
def index():''', '''TOP = PAGE.replace("{% block content %}{% endblock %}", """
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


@app.get("/")
def index():''')
nb.replace(ws / "shortly.py", '''{% if error %}<p class="error">{{ error }}</p>{% endif %}
<h2>Your recent links</h2>''', '''{% if error %}<p class="error">{{ error }}</p>{% endif %}
<p><a href="{{ url_for('top') }}">Top sites</a></p>
<h2>Your recent links</h2>''')

# %% [markdown]
# The tests live in `tests/`, run with pytest (declared in `requirements.txt`, like every other package) from the
# app's folder, which `pytest.ini` makes their root. `tests/conftest.py` prepares what every test needs, and
# picks the database:

# %%
nb.replace(ws / "requirements.txt", "rq==3.0.0\n", "rq==3.0.0\npytest==9.2.0\n")
nb.replace(ws / ".gitignore", ".venv/\n", ".venv/\n.pytest_cache/\n")
nb.write(ws / "pytest.ini", """[pytest]
# The app's own tests, run from its folder with `python -m pytest`: this file makes the folder their root,
# so no test settings of an enclosing folder apply.
testpaths = tests
""")
(ws / "tests").mkdir()
nb.write(ws / "tests" / "conftest.py", '''"""Shortly's tests. They need nothing installed: each run gets an SQLite database of its own, in memory.

    python -m pytest
"""
import os
import secrets
import sys
import tempfile
from pathlib import Path

import pytest

os.environ["DATABASE_URL"] = "sqlite://"  # an SQLite database in memory: quick, nothing to set up, nothing left
os.environ.setdefault("SHORTLY_SECRET_KEY", secrets.token_hex(16))  # a throwaway key, made for this run
os.environ.pop("REDIS_URL", None)  # no queue: a link's preview is fetched in the request, by the stub below
os.environ["SHORTLY_LOG_FILE"] = os.path.join(tempfile.mkdtemp(prefix="shortly-tests-"), "shortly.log")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import shortly  # noqa: E402  (after the environment above: the app reads it as it is imported)


@pytest.fixture(autouse=True)
def empty_database():
    """Every test starts with the links table there and empty."""
    shortly.migrate()
    with shortly.engine.begin() as conn:
        conn.execute(shortly.text("DELETE FROM links"))


@pytest.fixture
def client(monkeypatch):
    """A test client of the app; a page's title is made up, never fetched from the internet."""
    monkeypatch.setattr(shortly, "fetch_title", lambda url: f"Title of {url}")
    return shortly.app.test_client()
''')

# %% [markdown]
# And the tests, through the app's HTTP API. The last one is the top sites page's: two links to one site and one
# to another, some clicks, an expired link that must not count:

# %%
nb.write(ws / "tests" / "test_shortly.py", '''"""What Shortly does, through its HTTP API, on the database at DATABASE_URL."""
import pytest

import shortly


def create(client, url, **extra):
    response = client.post("/api/links", json={"url": url, **extra})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_a_new_link_has_a_code_a_short_url_and_its_page_s_title(client):
    link = create(client, "https://example.com/a/long/page")
    assert len(link["code"]) == shortly.CODE_LENGTH
    assert link["short_url"].endswith("/" + link["code"])
    assert link["title"] == "Title of https://example.com/a/long/page"


@pytest.mark.parametrize("url", ["", "ftp://example.com/", "example.com"])
def test_only_web_urls_are_shortened(client, url):
    assert client.post("/api/links", json={"url": url}).status_code == 400


def test_following_a_link_redirects_and_counts_the_click(client):
    link = create(client, "https://example.com/")
    for _ in range(3):
        response = client.get(f"/{link['code']}")
        assert response.status_code == 302
        assert response.headers["Location"] == "https://example.com/"
    assert client.get(f"/api/links/{link['code']}").get_json()["clicks"] == 3


def test_an_unknown_or_expired_link_is_not_found(client):
    assert client.get("/nosuch").status_code == 404
    gone = create(client, "https://example.com/old", ttl_seconds=0)
    assert client.get(f"/{gone['code']}").status_code == 404


def test_top_sites_add_up_the_links_and_clicks_of_each_site(client):
    first = create(client, "https://example.com/")
    second = create(client, "https://example.com/")
    other = create(client, "https://example.org/")
    for code, clicks in ((first["code"], 2), (second["code"], 1), (other["code"], 1)):
        for _ in range(clicks):
            client.get(f"/{code}")
    create(client, "https://example.net/", ttl_seconds=0)  # expired: not a top site
    sites = client.get("/api/top").get_json()["sites"]
    assert [(s["url"], s["links"], s["clicks"]) for s in sites] == [
        ("https://example.com/", 2, 3), ("https://example.org/", 1, 1)]
    assert sites[0]["title"] == "Title of https://example.com/"
    page = client.get("/top")
    assert page.status_code == 200 and "Title of https://example.org/" in page.get_data(as_text=True)
''')

# %% [markdown]
# Last, the runbook, as the team wrote it after the move:

# %%
nb.replace(ws / "OPS.md", "| prod-web-1 | the current release under `/srv/shortly-deploy`: two `web` processes behind nginx "
           "as https://shortly.example.com/, two `worker` processes | `DATABASE_URL=sqlite:////var/lib/shortly/shortly.db` |",
           "| prod-web-1 | the current release under `/srv/shortly-deploy`: two `web` processes behind nginx "
           "as https://shortly.example.com/, two `worker` processes | PostgreSQL 15 on prod-db-1, "
           "`DATABASE_URL=postgresql://shortly:…@prod-db-1:5432/shortly` |")
nb.replace(ws / "OPS.md", '''Prod was supposed to move to the PostgreSQL 15 server (`prod-db-1`) "next
sprint"; the reports team already reads from it. Now that the app takes its
database as a URL, the move is a restore and a change to `.env` (see "Backing
services" below), not a code change. Dev stays on SQLite, it's simpler.''', '''Prod moved to the PostgreSQL 15 server (`prod-db-1`): a restore and a change
to `.env` (see "Backing services" below), no code change. Dev stays on SQLite,
it's simpler: nothing to install, and `python -m pytest` runs the app's tests
(`tests/`) on an SQLite file of their own.''')

# %% [markdown]
# ## The symptom: green on every laptop, broken in production
#
# Run the tests, as the teammate did before pushing. (`run_tests` runs `python -m pytest` in a folder, as you
# would in a terminal, with the environment you give it, and prints pytest's summary and any database error.)

# %%
CLEAN = {name: value for name, value in os.environ.items()
         if not name.startswith(("SHORTLY_", "DATABASE_", "REDIS_", "PYTEST_"))}


def run_tests(folder, **env):
    """`python -m pytest -q` in folder with env added: print its summary line, and the first database error it
    shows."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider"], cwd=folder,
                          env={**CLEAN, "PYTHONDONTWRITEBYTECODE": "1", **env}, capture_output=True, text=True,
                          timeout=300)
    lines = done.stdout.strip().splitlines()
    errors = [line for line in lines if re.search(r"\b(psycopg2|sqlite3)\.\S*(Error|errors\.\w+):", line)]
    if errors:
        print(errors[0].lstrip("E").strip()[:160])
    print(lines[-1] if lines else done.stderr.strip()[-300:])


run_tests(ws)

# %% [markdown]
# Seven tests, all green. Now do what production does: start the web process from the Procfile on a PostgreSQL
# database (a private server, started for this notebook), set the database up with the one-off command, and
# make a few links. First the same on SQLite, as on a laptop:

# %%
page = nb.slow_page(0, "A page to rank")
pg = nb.postgres()
laptop = {"SHORTLY_SECRET_KEY": "fake-dev-key", "DATABASE_URL": f"sqlite:///{ws.parent / '10-laptop.db'}"}
production = {"SHORTLY_SECRET_KEY": "fake-prod-key", "DATABASE_URL": pg.url()}


def top_sites_on(env):
    """Start the web process on env's database, make three links to two sites, follow each, ask for the ranking."""
    web = nb.App(ws, env, process_type="web")
    for path in ("/a", "/a", "/b"):
        code = web.post("/api/links", json={"url": page.url(path)}).json()["code"]
        web.get(f"/{code}", allow_redirects=False)
    answer = web.get("/api/top")
    web.stop()
    return answer


print("on the laptop (SQLite):", top_sites_on(laptop).status_code)
print("in production (PostgreSQL):", top_sites_on(production).status_code)

# %% [markdown]
# The same code, the same requests: 200 on SQLite, 500 on PostgreSQL. The reason is in the app's log file
# (factor XI will move it somewhere better):

# %%
log = (ws / "shortly.log").read_text()
print(next(line for line in log.splitlines() if "GroupingError" in line).split(") ", 1)[-1][:160])

# %% [markdown]
# `SELECT url, title, ... GROUP BY url`: for each url there may be many rows, and the query does not say *which*
# title to show. Standard SQL, and PostgreSQL, refuse such a query. SQLite accepts it and quietly takes the title
# of some row of the group. Nobody wrote anything wrong on purpose; the laptop simply ran a different database.
#
# And the tests? They were green because they never ran on PostgreSQL. Point them at the PostgreSQL server:

# %%
run_tests(ws, DATABASE_URL=pg.url())

# %% [markdown]
# Still green: `conftest.py` sets `DATABASE_URL` to an SQLite database in memory, whatever the environment says.
# The tests test SQLite. There is a second trap in `shortly.py` itself: without `DATABASE_URL` it falls back to an
# SQLite file, so a laptop, a CI job or a deploy with a forgotten setting runs on *another kind* of database
# without a word:

# %%
nb.grep(ws / "shortly.py", r'^DATABASE_URL = ')

# %% [markdown]
# ## Checkpoint: where you start

# %%
# NBVAL_IGNORE_OUTPUT
# (the checks' messages quote the app's last output and a port of the check's own: they differ from run to
# run; the next cell says what holds)
report = nb.checkpoint("10", ws)
report

# %%
print("checks that fail:", sum(r.status == "failed" for r in report.results), "of", len(report.results))

# %% [markdown]
# All five checks fail:
#
# - `dev_prod_parity.no_fallback` starts the app without `DATABASE_URL`: the web process, in a plain and in a
#   developer's config, the worker and `init-db` must each refuse to start, naming the variable.
# - `dev_prod_parity.pages_on_postgres` makes links on a brand-new PostgreSQL database, follows them, and asks for
#   every page: all must answer, and the top sites must add up.
# - `dev_prod_parity.app_tests` runs the app's own tests on a brand-new PostgreSQL database: they must pass there,
#   write rows there, and must *not* pass when `DATABASE_URL` names a database that does not answer, or none.
# - `dev_prod_parity.dev_like_prod`: `.env.example`, which every new deploy and laptop copies, must attach
#   PostgreSQL and Redis; and the code must start no development server of its own (`python shortly.py`).
# - `dev_prod_parity.runbook`: `OPS.md` still sends developers to SQLite and Flask's development server.
#
# ## Tests that run where production runs
#
# Start with the tests: they must use the database the environment names, as the app does, and refuse to run
# without one, rather than pick one of their own. Try it on a copy of your workspace (the workspace stays as the
# exercise starts):

# %%
fixed = ws.parent / "10-fixed"
shutil.rmtree(fixed, ignore_errors=True)
shutil.copytree(ws, fixed)
nb.replace(fixed / "tests" / "conftest.py",
           'os.environ["DATABASE_URL"] = "sqlite://"  # an SQLite database in memory: quick, nothing to set up, '
           'nothing left\n',
           'if not os.environ.get("DATABASE_URL"):\n'
           '    pytest.exit("the tests need DATABASE_URL: the URL of a PostgreSQL database they may empty", '
           'returncode=2)\n')
run_tests(fixed, DATABASE_URL=pg.url())

# %% [markdown]
# Now the tests fail where production fails, with PostgreSQL's own words, on the laptop, before any push. The fix
# of the query is yours to write (the hints spell it out); once it is standard SQL, the same run is green.
#
# ## One command for the services
#
# Running PostgreSQL and Redis on a laptop used to be the hard part, and the reason for SQLite. It takes one
# command now. In a terminal, from the course's folder:
#
# ```
# factorlab services up      # a private PostgreSQL and Redis for this checkout; prints their URLs
# factorlab services down    # stops them
# ```
#
# It prints two `export` lines: `DATABASE_URL=postgresql://…` and `REDIS_URL=redis://…`. Put them in your `.env`.
# (With Docker, a `compose.yaml` that starts `postgres:15` and `redis:7` does the same job: `docker compose up
# -d`.) Then develop as production runs: `honcho start` runs the Procfile (gunicorn and the worker, not Flask's
# development server), and `python -m pytest` runs the tests, on those services.
#
# ## Where the walkthrough leaves you
#
# Your workspace holds the code the exercise starts from: `exercises/10_dev_prod_parity` adds only `TODO` notes,
# the part left for you. A quick comparison, with those notes and blank lines left out:

# %%
nb.compare_with_starter(ws, "10")

# %% [markdown]
# ## Quiz

# %%
nb.quiz("The app's tests pass on an SQLite database in memory, and production runs on PostgreSQL. What do the "
        "green tests tell you about production?",
        ["That the code is right: SQLAlchemy makes both databases behave the same",
         "Only what holds on SQLite: a query PostgreSQL refuses passes them",
         "Nothing at all: tests are never about production"],
        answer=1,
        why="SQLAlchemy sends each database the same SQL; whether a database accepts it is up to that database. "
            "Tests prove what they run on.")

# %%
nb.quiz("DATABASE_URL is missing on a new laptop. What should the app do?",
        ["Fall back to an SQLite file, so the developer can start quickly",
         "Fall back to postgresql://localhost/shortly, the usual place",
         "Refuse to start, naming DATABASE_URL"],
        answer=2,
        why="A fallback runs some deploys on a database that nobody chose. Refusing to start costs one line in "
            ".env, and `factorlab services up` gives that line.")

# %% [markdown]
# ## Your turn: the exercise
#
# Now close the gap in **`exercises/10_dev_prod_parity`**. `TODO` comments mark what to do:

# %%
nb.todos("10")

# %% [markdown]
# What is left:
#
# - **Tests on PostgreSQL.** `tests/conftest.py` takes `DATABASE_URL` from the environment and stops
#   (`pytest.exit`) without it. Run them on the PostgreSQL of `factorlab services up`, and fix what fails.
# - **Standard SQL.** Rewrite the top sites query so that PostgreSQL accepts it.
# - **No fallback.** `DATABASE_URL` is required: unset or empty, print its name and exit 1.
# - **No development server.** Take out the `if __name__ == "__main__"` block; laptops run the Procfile.
# - **Development config and runbook.** `.env.example` attaches PostgreSQL; `OPS.md` says how a laptop gets its
#   services (one command) and runs the tests, and no longer sends anyone to SQLite.
#
# When you are done, check your work here or in a terminal:
#
# - `factorlab check 10` runs the same checks as the checkpoint above
# - `factorlab check 10 --runner docker` runs them with each process in a container of its own
# - `factorlab hint 10` reveals one hint at a time
# - `factorlab solution 10` shows the difference to the reference solution, once your check passes
#
# Or press the button:

# %%
nb.check_button("10")

# %% [markdown]
# Next: **[Factor XI — Logs](11_logs.ipynb)**, where the app's log becomes a stream of events.
#
# Finally, stop anything this notebook started (every app above was stopped already, so this prints only the
# test page and the PostgreSQL server):

# %%
nb.stop_all()
