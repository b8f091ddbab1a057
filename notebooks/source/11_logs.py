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
# # Factor XI — Logs
#
# **What you will learn**
#
# - what "logs as an event stream" means: one event per line, written to stdout as it happens, and collected by
#   whatever runs the process, never routed or stored by the app itself
# - why a log file next to the process loses exactly what you need (errors, other processes, other boxes,
#   containers that are gone)
# - how structured events (JSON lines with a time, a level, a name and fields) turn a log into data you can
#   query and plot, and how every library's messages join the same stream
#
# ⏱ About 50 minutes. The factor on 12factor.net: [XI. Logs](https://12factor.net/logs).
#
# You start where notebook 10 ended: `solutions/10_dev_prod_parity`.

# %%
import io
import json
import random
import re
from collections import Counter
from datetime import datetime, timedelta, timezone

import structlog

from factorlab import notebook as nb

# %% [markdown]
# ## The idea
#
# A log tells the story of a running app: each request served, each job done, each error. The twelve-factor view
# is that an app should not care where that story goes. Each process writes its events, one per line, to its own
# stdout, unbuffered, and stops there. Whoever runs the process collects the stream: honcho prints every process's
# stream in one terminal on a laptop; on a server, systemd hands it to journald; a platform or a log router sends
# it on to a place where people search it, graph it and get alerted by it. None of that is the app's business, so
# none of it is in the app's code or config.
#
# An app that writes its own log file has taken that job on, and does it badly: the file lives on one box, in one
# process's working directory, it is rotated by each process on its own, and in a container it is gone with the
# container. And a file only holds what was sent to it.

# %%
ws = nb.workspace("11")

# %% [markdown]
# ## The symptom: the stream says nothing, the file not enough
#
# Start the app as production does, from its Procfile: a web process and a worker, on a PostgreSQL and a Redis
# of this notebook's own, with a page for the previews to fetch.

# %%
pg, queue = nb.postgres(), nb.redis()
page = nb.slow_page(0, "A page worth a log line")
env = {"SHORTLY_SECRET_KEY": "fake-dev-key", "DATABASE_URL": pg.url(), "REDIS_URL": queue.url(),
       "SHORTLY_LOG_LEVEL": "INFO"}
web = nb.App(ws, env, process_type="web")
web.get("/")  # answered: the web process has loaded the app (which makes its table at import), so the worker is next
worker = nb.App(ws, env, process_type="worker")

# %% [markdown]
# Make a link, wait for the worker to store its page's title, and follow the link:

# %%
link = web.post("/api/links", json={"url": page.url("/story")}).json()
code = link["code"]
nb.wait_for(lambda: web.get(f"/api/links/{code}").json()["title"], 20)
web.get(f"/{code}", allow_redirects=False)

# %% [markdown]
# What did each process tell its process manager about that link? Everything a process prints is its stream:
# it is what honcho shows, what journald keeps, what `docker logs` gives back. (`about` prints the lines of a
# text that mention something, with times and ids masked.)

# %%
VARYING = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d([.,]\d+)?|\b\d+:\d\d:\d\d(\.\d+s?)?|\b[0-9a-f]{32}\b|"
                     r"\b[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\b")


def about(text, word, shown="<code>"):
    lines = [VARYING.sub("…", line.replace(word, shown)) for line in text.splitlines() if word in line]
    for line in lines:
        print("   ", nb.mask(line)[:150])
    print(f"    ({len(lines)} line(s))")


print("the web process's stream:")
about(web.running.output(), code)
print("the worker's stream:")
about(worker.running.output(), code)

# %% [markdown]
# The web process said nothing about the link: its stream holds gunicorn's own lines and no more. The worker's
# stream has RQ's lines about the job, in RQ's own format. The app's lines went to a file, `shortly.log`, in the
# working directory (both processes run in the workspace here, so both write the same file):

# %%
about((ws / "shortly.log").read_text(), code)

# %% [markdown]
# Now something goes wrong. A migration run by hand renames the `links` table, and the top sites page fails:

# %%
conn = pg.connect(pg.url().rsplit("/", 1)[1])
conn.cursor().execute("ALTER TABLE links RENAME TO links_old")
print("GET /top:", web.get("/top").status_code)

# %% [markdown]
# A 500. Where is the error? Not in the stream, the one place an operator's tools look:

# %%
about(web.running.output(), "UndefinedTable", "UndefinedTable")

# %% [markdown]
# It is in the file, as a traceback spread over some twenty lines, because Flask logs errors through the app's
# logger, and the app's logger writes only to that file:

# %%
about((ws / "shortly.log").read_text(), "UndefinedTable", "UndefinedTable")

# %% [markdown]
# Put the table back and stop both processes:

# %%
conn.cursor().execute("ALTER TABLE links_old RENAME TO links")
conn.close()
web.stop()
worker.stop()

# %% [markdown]
# ## Checkpoint: where you start

# %%
# NBVAL_IGNORE_OUTPUT
# (the checks' messages quote the app's own lines, and say how long things took: they differ from run to run;
# the next cell says what holds)
report = nb.checkpoint("11", ws)
report

# %%
print("checks that fail:", sum(r.status == "failed" for r in report.results), "of", len(report.results))

# %% [markdown]
# All four checks fail:
#
# - `logs.no_log_file` reads the code for a log file in every spelling (a file handler, basicConfig's filename, a
#   logging config, gunicorn's log-file options, a Procfile line that sends its output to a file).
# - `logs.event_stream` runs the web process and a worker, makes links, shows one, follows another and asks for two
#   unknown pages: each request must be exactly one event on the web process's stdout, each job exactly one on the
#   worker's, as it happens; no line about that work may be anything but an event, and no file may be written.
# - `logs.errors_are_events` makes the database refuse every write while a link is made and a preview job runs:
#   the failed request and the failed job must each be an event at level error, the error inside it, with no bare
#   traceback around it.
# - `logs.runbook`: `OPS.md` still sends the operator to `tail -f shortly.log`, and `.env.example` still has a
#   setting for the file.
#
# ## Events, not lines
#
# A line like `2026-12-03 09:14:02 INFO created Xy12Ab -> https://…` is written for a person reading a terminal.
# A program that wants the link's code, or every request that took over a second, has to take the sentence
# apart, and the next time someone rewords it, that breaks. An *event* keeps its facts as fields. With
# [structlog](https://www.structlog.org/), a library that does this for Python, the code says what happened
# and with what; a renderer writes it as one JSON object per line. Here it writes into a buffer, to show the lines:

# %%
buffer = io.StringIO()
structlog.configure(processors=[structlog.processors.add_log_level, structlog.processors.format_exc_info,
                                structlog.processors.JSONRenderer()],
                    logger_factory=structlog.PrintLoggerFactory(buffer))
log = structlog.get_logger()
log.info("link created", code="Xy12Ab", url="https://example.com/")
log.info("request", method="GET", path="/top", status=200, ms=4.2)
try:
    1 / 0
except ZeroDivisionError:
    log.exception("request failed", method="GET", path="/top")
for line in buffer.getvalue().splitlines():
    event = json.loads(line)
    if "exception" in event:  # shortened here to its first and last lines
        lines = event["exception"].splitlines()
        event["exception"] = f"{lines[0]} … {lines[-1]}"
    print(json.dumps(event))
structlog.reset_defaults()

# %% [markdown]
# Three lines, three events. The error is one line too: its traceback is a field inside the event (its middle
# left out above), so no tool ever mistakes its twenty lines for twenty events. In the app, the renderer writes to
# stdout, and it must be the *only* place anything is logged to: the app's own events, and the lines that Flask
# and RQ log through Python's `logging`, which join the same stream when the one handler sits on the root logger.
#
# ## What a stream is good for
#
# Once every process writes events, the log of a whole system is one stream: the process manager interleaves the
# streams of its processes (honcho prefixes each line with `web.1 |` or `worker.1 |`), and a log router merges
# those of every box. Here is such a stream, made up for this notebook but shaped like the app's: ten minutes of
# two web processes and a worker, on a day something went wrong.

# %%
random.seed(11)
START = datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)
PATHS = ["/", "/top", "/api/links", "/api/recent", "/stats/<code>", "/<code>"]
stream = []
for second in range(600):
    moment = START + timedelta(seconds=second)
    for process in ("web.1", "web.2"):
        for _ in range(random.randint(0, 3)):
            path = random.choice(PATHS)
            broken = 360 <= second < 450 and path == "/top"  # a migration gone wrong, for a minute and a half
            event = {"event": "request", "method": "POST" if path == "/api/links" else "GET", "path": path,
                     "status": 500 if broken else 200, "level": "error" if broken else "info",
                     "timestamp": moment.isoformat().replace("+00:00", "Z")}
            stream.append(f"{process:<8} | {json.dumps(event)}")
    if second % 7 == 0:
        job = {"event": "preview stored", "code": "<code>", "level": "info",
               "timestamp": moment.isoformat().replace("+00:00", "Z")}
        stream.append(f"{'worker.1':<8} | {json.dumps(job)}")
print(len(stream), "lines; the first four:")
for line in stream[:4]:
    print(line)

# %% [markdown]
# Reading it back is a loop: take off the process manager's prefix, parse the JSON, and count. Requests and
# errors per minute:

# %%
events = [json.loads(line.split(" | ", 1)[1]) for line in stream]
minutes = sorted({e["timestamp"][11:16] for e in events})
requests = Counter(e["timestamp"][11:16] for e in events if e["event"] == "request")
errors = Counter(e["timestamp"][11:16] for e in events if e["level"] == "error")
nb.per_minute("The stream, counted per minute", minutes,
              {"requests": [requests[m] for m in minutes], "errors": [errors[m] for m in minutes]})

# %% [markdown]
# The incident stands out, and the stream answers the next question at once, *what* failed:

# %%
failed = Counter((e["method"], e["path"]) for e in events if e["level"] == "error")
print("errors by route:", dict(failed))
print("first error at", min(e["timestamp"] for e in events if e["level"] == "error"),
      "and last at", max(e["timestamp"] for e in events if e["level"] == "error"))

# %% [markdown]
# In production the same questions go to the tools that collect the stream: `journalctl -u 'shortly-*' -o cat |
# jq 'select(.level == "error")'` on a box, or the search box of a log service. The app did nothing for that but
# write one event per line to stdout.
#
# ## Where the walkthrough leaves you
#
# Your workspace holds the code the exercise starts from: `exercises/11_logs` adds only `TODO` notes, the part
# left for you. A quick comparison, with those notes and blank lines left out:

# %%
nb.compare_with_starter(ws, "11")

# %% [markdown]
# ## Quiz

# %%
nb.quiz("Where should a twelve-factor app's web process write its log?",
        ["To a file in its working directory, rotated when it grows",
         "To stdout, one event per line, and let whatever runs it collect the stream",
         "Straight to the log service, over the network, from the app's code"],
        answer=1,
        why="Routing and storing logs is the environment's job: honcho, journald, a platform or a log router. "
            "Sending them to a service from the code ties the app to that service and its credentials.")

# %%
nb.quiz("A request fails with a traceback. What should the stream hold?",
        ["The traceback's lines as they are: people read tracebacks",
         "Nothing: errors go to a separate error file",
         "One event at level error, with the traceback as a field inside it"],
        answer=2,
        why="One error is one event: it can be counted, searched and alerted on, and it never splits into twenty "
            "lines that look like twenty other things.")

# %% [markdown]
# ## Your turn: the exercise
#
# Now make the log a stream in **`exercises/11_logs`**. `TODO` comments mark what to do:

# %%
nb.todos("11")

# %% [markdown]
# What is left:
#
# - **No file.** Take out the `RotatingFileHandler` and `SHORTLY_LOG_FILE`. One handler on the root logger writes
#   to `sys.stdout`, so that Flask's and RQ's messages join the app's.
# - **Events.** Render every record as one JSON line, tracebacks inside the event. structlog does it (add
#   `structlog==26.1.0` to `requirements.txt`); its `ProcessorFormatter` renders the records of Python's `logging`
#   too.
# - **One event per request, one per job.** An `after_request` hook logs each request (method, path, status,
#   milliseconds); the preview job logs the link's code and the title as fields.
# - **Runbook.** `.env.example` loses its log file setting; `OPS.md` says where the stream goes and how to read it.
#
# When you are done, check your work here or in a terminal:
#
# - `factorlab check 11` runs the same checks as the checkpoint above
# - `factorlab check 11 --runner docker` runs them with each process in a container of its own
# - `factorlab hint 11` reveals one hint at a time
# - `factorlab solution 11` shows the difference to the reference solution, once your check passes
#
# Or press the button:

# %%
nb.check_button("11")

# %% [markdown]
# Next: **[Factor XII — Admin processes](12_admin_processes.ipynb)**, where the app's one-off tasks leave its web
# routes and its import.
#
# Finally, stop anything this notebook started (every app above was stopped already, so this prints only the
# test page and the two servers):

# %%
nb.stop_all()
