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
# # Factor VI — Processes
#
# **What you will learn**
#
# - what a *stateless* process is, and why a twelve-factor app runs as one or more of them
# - where state belongs instead: the database, a Redis, or the signed cookie the browser carries
# - why any process must be free to die, or to be joined by another, at any moment, without losing anything
# - why *sticky sessions* (one user, always the same process) hide the problem instead of fixing it
# - how to count clicks with one atomic `UPDATE`, so that any number of processes count the same clicks
#
# ⏱ About 60 minutes. The factor on 12factor.net: [VI. Processes](https://12factor.net/processes).
#
# You start where notebook 05 ended: `solutions/05_build_release_run`.

# %%
from factorlab import notebook as nb
from factorlab.testpage import TestPage

# %% [markdown]
# ## The idea
#
# A twelve-factor app runs as one or more *processes*, and each of them shares nothing with the others. A process
# may use its memory or its disk while it handles a request, as scratch space; but it never counts on finding
# anything there for a later request. That request may well land on another process, or on a new one that started
# a second ago.
#
# So everything that has to outlive a request goes to a backing service (factor IV): the database, a Redis. What
# belongs to one visitor and is small can travel with them, in a cookie the app signs, so it cannot be forged.
#
# The payoff: processes become interchangeable. You can run two, or twenty, behind a load balancer; you can kill
# one, restart it, or add three more for the evening peak, and nobody notices. That is what factor VIII
# (concurrency) and factor IX (disposability) will build on.
#
# A common workaround is the *sticky session*: the load balancer sends each user back to the process that served
# them before, so that process's memory keeps working. It is a smell. It only hides the problem until that
# process restarts or crashes, and then the user's data goes with it.

# %%
ws = nb.workspace("06")

# %% [markdown]
# ## The symptom: two processes, two different stories
#
# Shortly keeps two kinds of state in the memory of its process:

# %%
nb.grep(ws, r"SESSIONS|PENDING_CLICKS|FLUSH_EVERY")

# %% [markdown]
# - `SESSIONS` holds each visitor's "recent links", under a session id kept in the signed session cookie.
# - `PENDING_CLICKS` holds clicks not yet written to the database: `count_click()` writes them in batches, once
#   the process has seen `FLUSH_EVERY` (10) clicks, "to spare the disk".
#
# One process alone gets away with it, mostly. Prod has more than one. To see what happens, start a PostgreSQL
# and two instances of Shortly, **A** and **B**, with the same config: the same `DATABASE_URL`, and the same
# `SHORTLY_SECRET_KEY`, so each accepts the cookies the other signs.

# %%
pg = nb.postgres()
ENV = {"SHORTLY_SECRET_KEY": "fake-dev-key", "DATABASE_URL": pg.url()}

A = nb.App(ws, env=ENV)
B = nb.App(ws, env=ENV)

# %% [markdown]
# `nb.Browser()` plays one user with one cookie jar. It can talk to A or to B: browsers send a cookie to a *host*,
# whatever the port, so both instances get the same session cookie, just as they would behind a load balancer
# that spreads the requests.
#
# The user makes two links on A (to a small local test page, for the previews to fetch), and A lists them as
# "recent":

# %%
browser = nb.Browser()
with TestPage() as page:
    made = browser.post(A, "/api/links", json={"url": page.url("/first")})
    browser.post(A, "/api/links", json={"url": page.url("/second")})
code = made.json()["code"]
print(made)
browser.get(A, "/api/recent")

# %% [markdown]
# The next request happens to land on B:

# %%
browser.get(B, "/api/recent")

# %% [markdown]
# Empty: B has never seen this session id, its `SESSIONS` dict knows nothing about it. Worse, B made up a new
# session and sent a new cookie, which replaced the old one in the browser. So back on A:

# %%
browser.get(A, "/api/recent")

# %% [markdown]
# A has the links in its memory, but the cookie now names a session only B knows. Behind a load balancer, the
# user's recent links vanish and come back at random. (That is what sticky sessions would paper over.)
#
# ### Clicks: two counts, both wrong
#
# The user follows the first link 12 times; the load balancer alternates between A and B. Each click is a
# redirect:

# %%
for i in range(12):
    followed = browser.get([A, B][i % 2], f"/{code}")
followed


# %% [markdown]
# How many clicks does each instance report, and what does the database hold?

# %%
def clicks(app):
    return browser.get(app, f"/api/links/{code}").json()["clicks"]


print("A says", clicks(A), "- B says", clicks(B))
nb.rows(pg.url(), "SELECT code, clicks FROM links ORDER BY url")

# %% [markdown]
# Twelve clicks happened. Each instance saw 6 of them, kept them in `PENDING_CLICKS` (6 is fewer than 10, so
# nothing was written yet), and reports the database's 0 plus its own 6. Neither number is right, and the
# database, the only place other instances could see, holds nothing.
#
# ### A process dies
#
# Processes die: a crash, the out-of-memory killer, a box that reboots, a deploy. `A.kill()` sends SIGKILL, which
# gives the process no chance to clean up. Then a new A starts with the same config:

# %%
A.kill()
A = nb.App(ws, env=ENV)
print("the new A says", clicks(A), "- B says", clicks(B))
browser.get(A, "/api/recent")

# %% [markdown]
# A's 6 clicks are gone for good, and so are the recent links it kept. Even a polite stop loses B's share: there is
# nothing in Shortly that writes pending clicks at exit, and with `kill -9` nothing could.

# %%
B.stop()
A.stop()
nb.rows(pg.url(), "SELECT code, clicks FROM links ORDER BY url")

# %% [markdown]
# Twelve clicks, zero counted. `OPS.md` knows, in its "Known quirks": *Running a second copy of the app makes both
# show different numbers. Don't.* A twelve-factor app turns that around: running another copy must always be safe.
#
# ## Checkpoint: where you start

# %%
nb.checkpoint("06", ws)

# %% [markdown]
# All five checks fail:
#
# - `processes.shared_state` runs two instances on one database (and one Redis) and alternates between them, as
#   above. Its links were made on A and on B, and A lists none of them: each answer from the other instance
#   replaced the session cookie.
# - `processes.survives_kill` makes links and clicks on one instance, kills it, and asks a new one: the recent
#   links went with the killed process.
# - `processes.session_expiry` sets `SHORTLY_SESSION_LIFETIME=1`: Shortly does not read it, so its sessions never
#   end.
# - `processes.no_process_state` reads `shortly.py` and finds the two module-level dicts that request handlers
#   fill, `SESSIONS` and `PENDING_CLICKS`.
# - `processes.runbook` reads `OPS.md`, whose "Known quirks" still say the recent links live in the memory of
#   the process.
#
# The walkthrough fixes the clicks. The sessions will be yours.
#
# ## Step 1: one click, one `UPDATE`
#
# The batching was meant to spare the database some writes. But a click counted only in memory is not counted
# yet: the process that holds it may die at any moment. So each click goes to the database as it happens.
#
# One detail matters. The obvious way, read the count then write it back plus one, breaks with two processes: A
# and B both read 41, both write 42, and a click is lost. Instead, the database adds 1 itself, in one statement:
#
# ```sql
# UPDATE links SET clicks = clicks + 1 WHERE code = :code
# ```
#
# The database runs each such statement as a whole, one after another for the same row, so no click can slip
# between a read and a write. And it is committed at once, before the redirect goes out.

# %%
nb.replace(ws / "shortly.py", """\
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
""", """\
def count_click(code):
    \"\"\"Count one click in the database at once. The database adds 1 itself (no read, then write), so
    processes counting side by side never overwrite each other's clicks, and a process that dies owes none.\"\"\"
    db = get_db()
    db.execute(text("UPDATE links SET clicks = clicks + 1 WHERE code = :code"), {"code": code})
    db.commit()
""")

# %% [markdown]
# ## Step 2: the database's number is the number
#
# `clicks_of()` added a process's pending clicks to the stored count. It is gone with the batching, so the JSON
# API and the stats page show the count the database holds, the same for every process:

# %%
nb.replace(ws / "shortly.py", """\
        clicks=clicks_of(link),
""", """\
        clicks=link["clicks"],
""")
nb.replace(ws / "shortly.py", """\
    return render_template_string(STATS, heading=code, link=link, clicks=clicks_of(link), base=request.host_url)
""", """\
    return render_template_string(STATS, heading=code, link=link, clicks=link["clicks"], base=request.host_url)
""")

# %% [markdown]
# ## Step 3: no more pending clicks
#
# Nothing uses `PENDING_CLICKS` or `FLUSH_EVERY` any more. Out they go, and the module's docstring says what
# changed:

# %%
nb.replace(ws / "shortly.py", """\
FLUSH_EVERY = 10  # write click counts in batches, to spare the disk
""", "")
nb.replace(ws / "shortly.py", """\
PENDING_CLICKS = {}  # code -> clicks not yet written to the database
""", "")
nb.replace(ws / "shortly.py", """\
and SHORTLY_PID_FILE say.
\"\"\"
""", """\
and SHORTLY_PID_FILE say.

Click counts go straight to the database, so any number of processes count the
same clicks, and a process that dies owes none.
\"\"\"
""")
nb.grep(ws, r"SESSIONS|PENDING_CLICKS|FLUSH_EVERY|clicks_of")

# %% [markdown]
# One module-level dict is left, `SESSIONS`: that one is for you.
#
# ## Step 4: the runbook
#
# `OPS.md` warned about the lost clicks. That quirk is fixed; the one about recent links stays, for now:

# %%
nb.replace(ws / "OPS.md", """\
- Users on prod and on a restarted box lose their "recent links": they live in
  the process memory.
- Click counts are written every 10 clicks; a restart loses the last few.
- Running a second copy of the app makes both show different numbers. Don't.
""", """\
- Users on prod and on a restarted box lose their "recent links": they live in
  the process memory.
- Running a second copy of the app shows each user other "recent links" from one
  request to the next. Don't.

Click counts are written to the database at each click: a restart loses none,
and every copy of the app counts the same clicks.
""")

# %% [markdown]
# ## Two processes again, and a kill
#
# The same scene as before, on the new code: a fresh A and B, a new link, 6 clicks alternating between them.

# %%
A = nb.App(ws, env=ENV)
B = nb.App(ws, env=ENV)
with TestPage() as page:
    code = browser.post(A, "/api/links", json={"url": page.url("/third")}).json()["code"]
for i in range(6):
    browser.get([A, B][i % 2], f"/{code}")
print("A says", clicks(A), "- B says", clicks(B))

# %% [markdown]
# Both agree, and they are right. Now kill A in the middle of the traffic, start a new one, and send 6 more clicks:

# %%
A.kill()
A = nb.App(ws, env=ENV)
for i in range(6):
    browser.get([A, B][i % 2], f"/{code}")
print("the new A says", clicks(A), "- B says", clicks(B))

# %% [markdown]
# Twelve clicks, twelve counted, through a `kill -9`. The database agrees, because it is where the count lives:

# %%
A.stop()
B.stop()
nb.rows(pg.url(), f"SELECT code, clicks FROM links WHERE code = '{code}'")

# %% [markdown]
# ## Checkpoint: halfway

# %%
nb.checkpoint("06", ws)

# %% [markdown]
# Still five failures, but look at what they say now: every message is about sessions and recent links.
#
# - `processes.shared_state` and `processes.survives_kill` still lose the recent links between instances and
#   across a kill. Both look at the recent links before the clicks, so they stop there; the clicks, you saw
#   counted above.
# - `processes.session_expiry`: sessions still never end.
# - `processes.no_process_state` now names one dict only, `SESSIONS`.
# - `processes.runbook`: `OPS.md` still describes the process that keeps them.
#
# That is the exercise. The rest of the notebook needs no database:

# %%
nb.stop(pg)

# %% [markdown]
# ## Where the walkthrough leaves you
#
# Your workspace now holds the code the exercise starts from: `exercises/06_processes` adds only `TODO` notes, the
# part left for you. A quick comparison, with those notes and blank lines left out:

# %%
nb.compare_with_starter(ws, "06")

# %% [markdown]
# ## Where the sessions should go
#
# A session has two parts, and each finds a home outside the process:
#
# - **Who the visitor is**: a session id. It already travels in Flask's session cookie, signed with
#   `SHORTLY_SECRET_KEY`, so any instance with that key can read it, and nobody can forge it. What is missing is an
#   end: a cookie that is valid forever is a key that never expires. Flask can give sessions a lifetime
#   (`app.permanent_session_lifetime`, for a session marked `session.permanent = True`) and then refuses an older
#   cookie by itself. Shortly will read that lifetime from `SHORTLY_SESSION_LIFETIME`, in seconds, a week by default.
# - **What the visitor did**: their recent links. With a Redis attached (`REDIS_URL`, from factor IV), they go
#   into a list of their own, under a key made from the session id, `shortly:recent:<sid>`, which expires with the
#   session. Without a Redis, a handful of short codes fit in the signed cookie itself, `session["recent"]`: the
#   browser carries the state, and the process still keeps none.
#
# Redis lists do exactly what "the 10 newest links" needs. A throwaway Redis to try them on:

# %%
import redis

redis_server = nb.redis()
client = redis.Redis.from_url(redis_server.url(), decode_responses=True)
key = "shortly:recent:demo-session"
for link in ["aaa111", "bbb222", "ccc333"]:
    client.lpush(key, link)    # newest first
client.ltrim(key, 0, 1)        # keep the 2 newest (Shortly keeps RECENT_MAX, 10)
client.expire(key, 7 * 24 * 60 * 60)  # gone a week after the last visit
print("the list:", client.lrange(key, 0, -1))
print("expires in", round(client.ttl(key) / (24 * 60 * 60)), "days")
client.close()
nb.stop(redis_server)

# %% [markdown]
# Every instance that shares the Redis sees the same list, and none of them holds it. A Redis that is down must not
# break a page, though: Shortly should then show an empty list and log why. (redis-py can also send several
# commands in one go, in a transaction: `client.pipeline()`.)
#
# ## Quiz

# %%
nb.quiz("Shortly runs as three processes behind a load balancer. Where may a user's recent links live?",
        ["In a dict in each process: the load balancer can send the user back to the same one (sticky sessions)",
         "In Redis, or in the signed session cookie: somewhere every process finds them",
         "In a file next to the app's code"],
        answer=1,
        why="Any process may be killed or restarted at any moment, and the next request may reach any of them. "
            "Sticky sessions only hide that until the process goes; a file next to the code belongs to one box, "
            "and a release's folder is read-only anyway.")

# %%
nb.quiz("Two processes count a click at the same moment, on a link at 41 clicks. Which way counts both?",
        ["Each reads the count, adds 1 and writes it back",
         "Each runs UPDATE links SET clicks = clicks + 1, and the database adds",
         "Each keeps its clicks in memory and writes them every 10 clicks"],
        answer=1,
        why="Read-then-write lets both read 41 and both write 42: one click lost. Batching loses what a dead "
            "process held. An UPDATE that adds in the database is one step, and both clicks count: 43.")

# %% [markdown]
# ## Your turn: the exercise
#
# Now finish the job in **`exercises/06_processes`**. Its code is where this walkthrough ended: the clicks are
# counted in the database. `TODO` comments mark the rest:

# %%
nb.todos("06")

# %% [markdown]
# What is left:
#
# - **Sessions that end.** Read `SHORTLY_SESSION_LIFETIME` (seconds; unset, a week: 604800), set
#   `app.permanent_session_lifetime` and make each session permanent. List the variable in `.env.example`.
# - **Recent links outside the process.** With `REDIS_URL`, a Redis list per session, `shortly:recent:<sid>`:
#   `LPUSH`, `LTRIM` to `RECENT_MAX`, `EXPIRE` with the session lifetime, `LRANGE` to read; a Redis that is down
#   shows an empty list (catch `redis.RedisError` and log it). Without `REDIS_URL`, the list in the signed cookie,
#   `session["recent"]`, newest first. Then delete `SESSIONS`.
# - **The runbook**: in `OPS.md`, a short "Processes" section instead of the known quirks (any number of processes
#   side by side, any of them killed at any moment), `SHORTLY_SESSION_LIFETIME` in the table of variables, and
#   what Redis now holds.
#
# Both paths matter: the checks of earlier factors start Shortly without `REDIS_URL`, and they must keep passing.
#
# When you are done, check your work here or in a terminal:
#
# - `factorlab check 06` runs the same checks as the checkpoints above
# - `factorlab check 06 --runner docker` runs them with the app in a container; the verdict is the same (the
#   containers use the host's network, so they reach the same servers)
# - `factorlab hint 06` reveals one hint at a time
# - `factorlab solution 06` shows the difference to the reference solution, once your check passes
#
# The checks bring their own PostgreSQL and Redis, and stop them when they are done. To try two instances by hand
# against real servers, start a pair that keeps running:
#
# ```
# $ factorlab services up
# export DATABASE_URL=postgresql://factorlab@127.0.0.1:<port>/factorlab
# export REDIS_URL=redis://127.0.0.1:<port>/0
# ```
#
# `eval "$(factorlab services up)"` sets both in your shell; `factorlab services down` stops them and deletes their
# data.
#
# Or press the button:

# %%
nb.check_button("06")

# %% [markdown]
# Next: **[Factor VII — Port binding](07_port_binding.ipynb)**, where Shortly stops relying on a development
# server and serves HTTP itself, on whatever `$PORT` it is given.
#
# Finally, stop anything this notebook started (every app and server above was stopped already, so this prints
# nothing):

# %%
nb.stop_all()
