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
# # Factor XII — Admin processes
#
# **What you will learn**
#
# - what a one-off admin process is: a task such as setting up a database or deleting old data, run once as a
#   process of its own, with the same code and config as the app's long-running processes, that ends with an exit
#   code
# - why an admin task behind a URL, or run by every process as it starts, goes wrong in ways nobody planned
# - how to run a one-off against a release: `release.py run -- …` on a server, `honcho run` on a laptop,
#   `docker run --rm` with an image
#
# ⏱ About 65 minutes. The factor on 12factor.net: [XII. Admin processes](https://12factor.net/admin-processes).
#
# You start where notebook 11 ended: `solutions/11_logs`.

# %%
import os
import re
import subprocess
import sys

from factorlab import notebook as nb

# %% [markdown]
# ## The idea
#
# Besides serving, an app needs chores: creating the tables of a new database, changing the schema, deleting data
# nobody needs, fixing a record by hand in a console. The twelve-factor answer is to run each chore as a *one-off
# process*: started by someone (or a timer) when it is needed, in the same environment as the app's web and worker
# processes (the same release: the same code, the same dependencies, the same config), and ended when the chore is
# done, with an exit code that says whether it worked. The chore's code ships in the codebase with the app, so it
# can never drift from the code it acts on.
#
# Platforms have a command for this: `heroku run`, `kubectl run`, `docker run --rm` with the app's image. On a
# laptop, `honcho run` runs a command with the app's `.env`.
#
# Shortly does its two chores otherwise. Deleting expired links is a URL, `GET /admin/purge?token=…`, and creating
# the table is a `migrate()` call that runs whenever any process imports the app. Both seem handy. Here is what
# they do in practice.

# %%
ws = nb.workspace("12")

# %% [markdown]
# ## The symptom: a URL that deletes
#
# Start the app from its Procfile, on a PostgreSQL and a Redis of this notebook's own, with an admin token
# (obviously fake, like every secret in this course), and make two links: one that expires at once, one that
# lives.

# %%
pg, queue = nb.postgres(), nb.redis()
env = {"SHORTLY_SECRET_KEY": "fake-dev-key", "DATABASE_URL": pg.url(), "REDIS_URL": queue.url(),
       "SHORTLY_ADMIN_TOKEN": "FAKE-admin-token", "SHORTLY_LOG_LEVEL": "INFO"}
web = nb.App(ws, env, process_type="web")
web.get("/")  # answered: the web process has imported the app, and made its table; the worker is next
worker = nb.App(ws, env, process_type="worker")
page = nb.slow_page(0, "A page that lives")
for ttl in (0, None):
    web.post("/api/links", json={"url": page.url(f"/ttl-{ttl}"), "ttl_seconds": ttl})
LINKS = ("SELECT CASE WHEN url LIKE '%/admin/purge%' THEN 'the admin URL, shortened' WHEN expires_at = created_at "
         "THEN 'expired at once' ELSE 'lives' END AS link, clicks FROM links ORDER BY 1")
nb.rows(pg.url(), LINKS)

# %% [markdown]
# An operator wants a colleague to run next week's purge, and pastes the admin URL into the team's chat... where
# a link preview bot opens it to show a preview. Shortly itself makes previews, so here the bot is Shortly's own
# worker: someone shortens the URL.

# %%
admin_url = f"http://127.0.0.1:{web.port}/admin/purge?token=FAKE-admin-token"
web.post("/api/links", json={"url": admin_url})
nb.wait_for(lambda: "purged" in web.running.output(), 20)
nb.rows(pg.url(), LINKS)

# %% [markdown]
# The purge ran, because a robot fetched a page: the link that had expired is gone. A `GET` is supposed to be safe to repeat and to prefetch, and
# browsers, proxies, chat bots and crawlers rely on that. The token did not help: it travels in the URL, which ends
# up in browser histories, proxies' access logs and, here, a chat. The web process's stream shows who did it, a
# request like any other:

# %%
seen = [re.sub(r'"ms": [0-9.]+', '"ms": …', nb.mask(line)) for line in web.running.output().splitlines()
        if "purge" in line]
print(*sorted(seen), sep="\n")  # sorted: two threads of the web process wrote them, in either order

# %% [markdown]
# And the purge runs inside a web request: with a few million expired links it would be killed by the server's
# timeout halfway through, and it competes with visitors for the web process's threads.
#
# ## The symptom: every process changes the schema
#
# `migrate()` runs `CREATE TABLE IF NOT EXISTS` each time the app is imported: in every web process, every worker,
# every one-off, at every start. Scale to `web=2,worker=2` and four processes run DDL at the same moment on every
# deploy (on PostgreSQL two of them creating the same table at once can fail). And it needs a right the app should
# not have. A careful production gives the app a database role that reads and writes rows and does nothing else;
# changing the schema is for the owner, during a deploy:

# %%
conn = pg.connect(pg.url().rsplit("/", 1)[1])
conn.cursor().execute("CREATE ROLE shortly_app LOGIN; GRANT SELECT, INSERT, UPDATE, DELETE ON links TO shortly_app")
conn.close()
app_url = pg.url().replace("://factorlab@", "://shortly_app@")
started = subprocess.run([sys.executable, "-c", "import shortly"], cwd=ws, capture_output=True, text=True,
                         env={**os.environ, **env, "DATABASE_URL": app_url}, timeout=60)
print("exit code", started.returncode)
print(next(line for line in started.stderr.splitlines() if "InsufficientPrivilege" in line))

# %% [markdown]
# The app cannot even start with a role that has every right it needs to serve, because starting includes a chore
# that only the owner may do. Stop both processes:

# %%
web.stop()
worker.stop()

# %% [markdown]
# ## Checkpoint: where you start

# %%
# NBVAL_IGNORE_OUTPUT
# (the checks' messages quote the app's own lines: they differ from run to run; the next cell says what holds)
report = nb.checkpoint("12", ws)
report

# %%
print("checks that fail:", sum(r.status == "failed" for r in report.results), "of", len(report.results))

# %% [markdown]
# All five checks fail:
#
# - `admin_processes.no_admin_in_processes` runs the web and the worker over a database that holds expired links,
#   and asks every route of the app, and the usual admin paths, with every method and the app's tokens: the
#   expired links must all still be there at the end.
# - `admin_processes.no_migration_at_start` starts the web and the worker on a database nobody set up: it must stay
#   empty until `flask --app shortly init-db` runs, which must then set it up, and can run again without harm.
# - `admin_processes.purge_expired` runs `flask --app shortly purge-expired` as a one-off: it must delete exactly
#   the expired links, twice in a row safely, exit 0, and exit non-zero when its database does not answer.
# - `admin_processes.one_off_in_release` makes a release and runs `python release.py run -- flask --app shortly …`
#   against it: the one-off must use the release's code and its `release.env`, not the caller's, and exit with the
#   command's exit code.
# - `admin_processes.runbook`: `OPS.md` still tells the operator to `curl` the admin URL, and `.env.example` still
#   has the token.
#
# ## One-off processes
#
# A one-off is a process like the others, started with the app's code and config, that ends. Shortly already has
# one: `flask --app shortly init-db`, a command of Flask's command line, which imports the app and runs one
# function. Here it runs in the workspace, as a process of its own, on a brand-new database:

# %%
conn = pg.connect(pg.url().rsplit("/", 1)[1])
conn.cursor().execute("CREATE DATABASE fresh")
conn.close()
fresh = pg.url("fresh")


def one_off(*words, database=fresh, showing=None):
    """Run `python WORDS` in the workspace as a process of its own; print its last line (or the first line that
    says showing) and its exit code."""
    done = subprocess.run([sys.executable, *words], cwd=ws, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env, "DATABASE_URL": database})
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    said = [line for line in lines if showing in line] if showing else lines[-1:]
    print("   ", re.sub(r"port \d+", "port <port>", nb.mask(said[0] if said else "(nothing printed)"))[:160])
    print("    exit code", done.returncode)


for attempt in ("first", "second"):
    print(f"init-db, the {attempt} time:")
    one_off("-m", "flask", "--app", "shortly", "init-db")

# %% [markdown]
# It sets the database up, and running it again does no harm: a one-off must be safe to repeat, since an operator
# who is not sure whether it ran will run it again. Its exit code is what cron, systemd and deploy scripts read.
# Against a database that does not exist, it fails, and says so with its exit code:

# %%
one_off("-m", "flask", "--app", "shortly", "init-db", database=pg.url("no_such_database"), showing="does not exist")

# %% [markdown]
# Flask lists the commands an app has. The purge belongs here, next to `init-db`, as `purge-expired`:

# %%
done = subprocess.run([sys.executable, "-m", "flask", "--app", "shortly", "--help"], cwd=ws, capture_output=True,
                      text=True, timeout=60, env={**os.environ, **env, "DATABASE_URL": fresh})
print(done.stdout[done.stdout.index("Commands:"):].rstrip())

# %% [markdown]
# On a server, a one-off must run with the code and config of the release it acts for, not with whatever the
# checkout or the operator's shell holds. Shortly's releases are folders made by `release.py` (factor V): the
# code, and `release.env`. So `release.py` gets a way to run a command as a one-off of a release, as it runs the
# release's web and worker:
#
# | where | a one-off |
# |---|---|
# | a server, with `release.py` | `python release.py run [v7] -- flask --app shortly purge-expired` |
# | a laptop, with `.env` | `honcho run flask --app shortly purge-expired` |
# | a container image | `docker run --rm --env-file .env IMAGE flask --app shortly purge-expired` |
# | Heroku | `heroku run flask --app shortly purge-expired` |
#
# A weekly purge is then a timer (cron, a systemd timer, a platform's scheduler) that starts that one-off, and a
# schema change is a one-off run with the new release before its processes restart. Stop the servers:

# %%
nb.stop(pg)
nb.stop(queue)

# %% [markdown]
# ## Where the walkthrough leaves you
#
# Your workspace holds the code the exercise starts from: `exercises/12_admin_processes` adds only `TODO` notes,
# the part left for you. A quick comparison, with those notes and blank lines left out:

# %%
nb.compare_with_starter(ws, "12")

# %% [markdown]
# ## Quiz

# %%
nb.quiz("How should a twelve-factor app delete its expired data once a week?",
        ["A URL with a secret token, called by cron with curl",
         "A one-off process of the current release, started by a timer, that exits with a code saying how it went",
         "A thread in each web process that wakes up once a week"],
        answer=1,
        why="A one-off runs the release's code with its config, outside any request, and ends; a URL is "
            "fetched by anything that sees it, and a thread in the web process runs in every copy of it.")

# %%
nb.quiz("Where does a schema change run?",
        ["In every process, at import, so the schema is always up to date",
         "By hand in a database console, whenever someone remembers",
         "As a one-off of the release that needs it, before that release's processes start"],
        answer=2,
        why="The schema belongs to a release: its one-off sets it up once, with the release's code and the owner's "
            "rights, and the processes that then start only read and write rows.")

# %% [markdown]
# ## Your turn: the exercise
#
# Now make the chores one-offs in **`exercises/12_admin_processes`**. `TODO` comments mark what to do:

# %%
nb.todos("12")

# %% [markdown]
# What is left:
#
# - **No admin URL.** Take out the `/admin/purge` route and `SHORTLY_ADMIN_TOKEN`.
# - **A purge command.** Add `purge-expired` next to `init-db`: it deletes the links whose `expires_at` has passed,
#   says how many, can run twice, and exits non-zero when it fails.
# - **Nothing at import.** Take out the `migrate()` call at import: `init-db` sets a database up, once.
# - **One-offs of a release.** `python release.py run [ID] -- COMMAND …` runs the command with the release's code,
#   its `release.env` and `var/` as the working directory, and exits with the command's exit code.
# - **Runbook.** `OPS.md` says how to run the chores as one-offs; `.env.example` loses the token.
#
# When you are done, check your work here or in a terminal:
#
# - `factorlab check 12` runs the same checks as the checkpoint above
# - `factorlab check 12 --runner docker` runs them with each process in a container of its own
# - `factorlab hint 12` reveals one hint at a time
# - `factorlab solution 12` shows the difference to the reference solution, once your check passes
#
# Or press the button:

# %%
nb.check_button("12")

# %% [markdown]
# Next: [Capstone — Shortly as a twelve-factor system](13_capstone.ipynb), where your app runs as a small
# production system, and all twelve factors are checked at once.
#
# Finally, stop anything this notebook started (every app and server above was stopped already, so this prints
# only the test page):

# %%
nb.stop_all()
