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
# # Factor VIII — Concurrency
#
# **What you will learn**
#
# - what the *process model* is: an app scales out by running more processes, of several types, each doing one
#   kind of work
# - why slow work (a call to another site) belongs in a **worker** process, fed by a **queue**, and never in the
#   request that a visitor waits for
# - how a real queue (RQ, on the Redis you already have) hands each job to exactly one free worker
# - why an app never daemonizes itself or writes a pid file, and what runs it instead: a *process manager*
#   (honcho on a laptop, systemd or a platform on a server)
#
# ⏱ About 90 minutes. The factor on 12factor.net: [VIII. Concurrency](https://12factor.net/concurrency).
#
# You start where notebook 07 ended: `solutions/07_port_binding`.

# %%
import json
import shutil
import subprocess
import sys
import threading
import time

from rq import Queue, Worker

from factorlab import notebook as nb

# %% [markdown]
# ## The idea
#
# A twelve-factor app handles more work by running **more processes**, not by making one process bigger. The
# work is split by kind into *process types*: `web` answers HTTP requests, `worker` runs jobs in the
# background, and an app may have others (a clock that queues jobs on a schedule, a consumer of a message
# stream). Each type is a line of the Procfile you met in factor VII, and each can be scaled on its own: two web
# processes and five workers, or ten and one, whatever the load asks for. This only works because factor VI made
# the processes share nothing: any process of a type can do any piece of its work.
#
# The processes themselves stay simple. Each one runs in the **foreground**, prints to its output, and leaves
# the rest to a *process manager*: something that starts the processes, restarts the ones that crash, stops
# them on request and shows what they printed. On a laptop that is a tool such as
# [honcho](https://honcho.readthedocs.io/) (the Python port of Ruby's foreman); on a server, systemd; on a
# platform, the platform. An app that forks itself into the background and writes its process id to a file
# (a *daemon*, in Unix terms) hides from all of them.

# %%
ws = nb.workspace("08")

# %% [markdown]
# ## The symptom: one slow site holds up everyone
#
# Shortly fetches the page of every link it shortens, to show its title. Where does it do that?

# %%
nb.grep(ws / "shortly.py", r"title = fetch_title|def fetch_title|requests\.get")

# %% [markdown]
# Inside the request: `create_link` calls `fetch_title`, and the visitor who pressed "Shorten" waits until the
# other site answers (or for 5 seconds, the timeout). Here is a page that takes 2 seconds to answer, as a slow
# or far-away site does, and Shortly served by its Procfile's `web` line, as in production: gunicorn with its
# default of one worker process.

# %%
slow = nb.slow_page(2)
web = nb.App(ws, {"SHORTLY_SECRET_KEY": "fake-dev-key"}, process_type="web")
web.get("/")  # the first request loads the app

started = time.monotonic()
made = web.post("/api/links", json={"url": slow.url("/one")})
print(f"creating a link took {time.monotonic() - started:.2f} s; its title: {made.json()['title']!r}")

# %% [markdown]
# Two seconds, every time, for one link. Worse, while that request waits, the process can do nothing else.
# Start a second link in the background, and while its page is slow, ask for the home page:

# %%
asked = len(slow.requests)
maker = threading.Thread(target=web.post, args=("/api/links",), kwargs={"json": {"url": slow.url("/two")}})
maker.start()
slow.wait_for(lambda: len(slow.requests) > asked, 10)  # the web process is now waiting on the slow page

started = time.monotonic()
home = web.get("/")
waited = time.monotonic() - started
maker.join()
print(f"the home page answered {home.raw.status_code} after {waited:.2f} s: it waited for another site: {waited > 1}")

# %% [markdown]
# A visitor who only wanted the home page waited for a site Shortly does not control. gunicorn can run more
# worker processes (`WEB_CONCURRENCY`), but each slow page still ties one up for seconds: a handful of slow sites,
# and every process of the web type is waiting. The web process is the wrong place for slow work.

# %%
web.stop()

# %% [markdown]
# ## The second symptom: a process that hides
#
# How does Shortly run on the servers? Look for its daemon mode and its pid file:

# %%
nb.grep(ws, r"daemon|os\.fork|setsid|PID_FILE =|nohup|pidfile")

# %% [markdown]
# `python shortly.py --daemon` forks twice and exits, leaving a copy running in the background, detached from
# any terminal, with its output thrown away; it writes its process id to `shortly.pid`. `deploy.sh` does the
# same to the release with `nohup … &` and `$!`. Then the box has a process that no one started in a way they
# can watch: when it crashes, nothing notices or restarts it; its output is gone; and after a crash the pid file
# still names a process id that the system may by now have given to another program, which the next deploy's
# `kill $(cat shortly.pid)` will kill.
#
# ## Checkpoint: where you start

# %%
nb.checkpoint("08", ws)

# %% [markdown]
# All five checks fail:
#
# - `concurrency.process_types` reads the Procfile for a `web` and a `worker` line.
# - `concurrency.slow_preview` starts a web and a worker process from the Procfile, sharing a database and a Redis
#   of the check's own, and makes a link to a page that keeps the fetcher waiting. The link must be made at once,
#   the page must be fetched by the worker (each process gets its own `SHORTLY_PREVIEW_TOKEN`, so the page knows
#   who asked), and the title must appear once the page answers.
# - `concurrency.workers_share` starts two workers and queues four slow jobs: while one worker waits on a page,
#   the other must take the next job, and no page may be fetched twice.
# - `concurrency.foreground` reads the code, the scripts and the Procfile for forks, `setsid`, `nohup`, `&`,
#   `--daemon` and pid files, and runs each process type to see it stay in the foreground.
# - `concurrency.runbook`: `OPS.md` still describes the pid file and the background process.
#
# ## A queue and its workers
#
# The fix splits the work: the web process only *records* that a page must be fetched, as a **job** on a
# **queue**, and answers at once. A worker process takes jobs off the queue, one at a time, and does them. Run
# more workers and more jobs are done at once; none of them is in a visitor's way.
#
# The queue must be shared by every process (factor VI), and Shortly already has a shared store: Redis, attached
# by `REDIS_URL` (factor IV). [RQ](https://python-rq.org/) is a small, well-kept queue library built on Redis: a
# job is the name of a function and its arguments, and `rq.Worker` runs them. Redis hands each job to exactly
# one waiting worker, so two workers never do the same job.
#
# Here is a tiny app that shows the whole mechanism: a job that takes a second, and a Procfile whose `worker`
# line runs RQ's own worker on the queue `shouts`:

# %%
toy = ws.parent / "08-shout"
shutil.rmtree(toy, ignore_errors=True)
toy.mkdir()
nb.write(toy / "tasks.py", '''\
"""A job: it takes a while, and says which worker did it."""
import os
import time


def shout(word):
    time.sleep(1)  # slow work, such as fetching another site
    return word.upper(), os.environ["WORKER_NAME"]
''')
nb.write(toy / "requirements.txt", "rq==3.0.0\n")
nb.write(toy / "Procfile", "worker: rq worker --url $REDIS_URL shouts\n")

# %% [markdown]
# Start a Redis and two workers from the Procfile, as a process manager would with `-c worker=2`:

# %%
redis = nb.redis()
workers = [nb.App(toy, {"REDIS_URL": redis.url(), "WORKER_NAME": name}, process_type="worker")
           for name in ("worker 1", "worker 2")]
with redis.client() as connection:
    nb.wait_for(lambda: len(Worker.all(connection=connection)) == 2, 60)  # both waiting for jobs
    print("workers waiting:", len(Worker.all(connection=connection)))

# %% [markdown]
# Now queue four jobs from this notebook, as a web process would, and wait for their results:

# %%
with redis.client() as connection:
    shouts = Queue("shouts", connection=connection)
    started = time.monotonic()
    jobs = [shouts.enqueue("tasks.shout", word) for word in ("four", "jobs", "two", "workers")]
    print(f"queued {len(jobs)} jobs in {time.monotonic() - started:.2f} s")
    nb.wait_for(lambda: all(job.get_status(refresh=True) == "finished" for job in jobs), 60)
    results = [job.return_value() for job in jobs]
    print(f"all done after {time.monotonic() - started:.2f} s")
print("results:", [word for word, _ in results])
print("workers that did them:", sorted({who for _, who in results}))

# %% [markdown]
# Queueing took no time at all: the caller never waits for the work. Four jobs of a second each were done in
# about two seconds, because two workers shared them, and each job was done once. A third worker would make it
# faster still, with no change to the code.

# %%
for worker in workers:
    worker.stop()
nb.stop(redis)

# %% [markdown]
# ## What it buys, measured on your machine
#
# `bench/throughput.py` gives the legacy app and the reference solution of this exercise the same load, in one
# run: eight visitors at once make links, each to a page that takes a second to answer. The legacy app fetches
# every page in the request; the solution (one web process, two workers) only queues them. It prints links made
# per second and the 95th percentile of the answer time, and waits until the workers have stored every title:

# %%
run = subprocess.run([sys.executable, "bench/throughput.py", "--links", "24", "--json"], cwd=nb.course().root,
                     capture_output=True, text=True, timeout=600)
figures = json.loads(run.stdout)

# %%
# NBVAL_IGNORE_OUTPUT
# (the measured figures differ from run to run and machine to machine; the next cell says
# what holds every time)
nb.bars("Making links while each page takes 1 s", ["legacy", "solution 08"],
        {"links made per second": [figures["legacy"]["per_second"], figures["solution"]["per_second"]],
         "95th percentile answer time (s)": [figures["legacy"]["p95"], figures["solution"]["p95"]]})

# %%
legacy, solution = figures["legacy"], figures["solution"]
print("the legacy app waited for the page on every link (p95 at least 1 s):", legacy["p95"] >= 1)
print("the solution answered without waiting for it (p95 under 1 s):", solution["p95"] < 1)
print("the solution made links at least 3 times as fast:", figures["ratio"] >= 3)
print("its workers stored every title afterwards:", solution["titles_after"] is not None)

# %% [markdown]
# On a two-core machine the solution makes links well over ten times as fast, and its answer no longer depends
# on anyone else's site. The titles still take a second each, but in the workers: with more workers they come
# sooner, and no visitor waits for them.
#
# ## Running the processes: a process manager
#
# On a laptop, **honcho** runs every line of a Procfile at once, in the foreground, with their output
# interleaved and each line prefixed by the process's name; Ctrl+C stops them all. `-c` scales the types:
#
# ```
# honcho start -c web=2,worker=2
# ```
#
# starts two web processes (on `$PORT` and `$PORT + 1`) and two workers. On a server, systemd does the same job,
# and honcho can write its unit files from the Procfile, one per process, scaled the same way:

# %%
nb.write(toy / "Procfile", "web: gunicorn --bind 0.0.0.0:$PORT shortly:app\nworker: python worker.py\n")
nb.sh(f"{sys.executable} -m honcho export --no-colour -a shortly -p 8000 -c web=2,worker=2 systemd units "
      "2>/dev/null && ls units", toy)

# %%
nb.sh("grep -E '^(ExecStart|Restart|Environment=PORT)' units/shortly-worker-1.service units/shortly-web-2.service",
      toy)

# %% [markdown]
# Each unit runs one process in the foreground, and systemd restarts it when it exits. With the container
# runner, each process is a container, and the engine is the process manager: `docker run` for each, `docker
# stop` to end one.

# %% [markdown]
# ## A worker for Shortly
#
# Shortly's worker gets a file of its own, `worker.py`, which the Procfile's `worker` line will run. Its body is
# yours to write; for now it only says so:

# %%
nb.write(ws / "worker.py", '''\
"""Shortly's worker process, the Procfile's `worker` line: it takes jobs (link previews to fetch) off the queue
in the Redis at REDIS_URL and runs them, one at a time, in the foreground, until it is stopped."""
import sys


def main():
    print("shortly worker: there is no worker yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
''')

# %% [markdown]
# ## Where the walkthrough leaves you
#
# Your workspace holds the code the exercise starts from: `exercises/08_concurrency` adds only `TODO` notes,
# the part left for you. A quick comparison, with those notes and blank lines left out:

# %%
nb.compare_with_starter(ws, "08")

# %% [markdown]
# ## Quiz

# %%
nb.quiz("Creating a link fetches the target page for its title, and some pages take seconds. What is the "
        "twelve-factor way to keep Shortly fast?",
        ["Raise gunicorn's worker count until nobody waits",
         "Queue a job, answer at once, and let a worker process fetch the page",
         "Fetch the page in a thread of the web process, so the request does not wait"],
        answer=1,
        why="More web workers only postpone the problem, and a thread keeps slow work in the web process, where a "
            "restart loses it. A job on a shared queue is done by a process type made for it, which you scale on "
            "its own.")

# %%
nb.quiz("Why does a twelve-factor process not daemonize itself or write a pid file?",
        ["Pid files are too small to be reliable",
         "The process manager that started it watches, restarts and stops it; a daemon hides from it",
         "Daemons cannot open network ports"],
        answer=1,
        why="Run in the foreground, a process is seen by whatever started it (honcho, systemd, a platform): its "
            "output is kept, its crash is noticed and it is restarted. A daemon's crash goes unseen, and its stale "
            "pid file can name another program.")

# %% [markdown]
# ## Your turn: the exercise
#
# Now split Shortly's work in **`exercises/08_concurrency`**. `TODO` comments mark what to do:

# %%
nb.todos("08")

# %% [markdown]
# What is left:
#
# - **A queue.** With `REDIS_URL`, make an RQ queue on that Redis (its own connection, without
#   `decode_responses`: RQ stores bytes). `create_link` stores the link with an empty title, queues
#   `"shortly.fetch_preview"` with the link's code, and answers at once; `fetch_preview(code)` reads the link's
#   URL, fetches the title and stores it, and does no harm if it runs twice. Without `REDIS_URL`, or with Redis
#   down, fetch the title in the request as before.
# - **A worker.** `worker.py` imports `shortly` and runs an `rq.Worker` on that queue, in the foreground; the
#   Procfile gets a `worker:` line, and `requirements.txt` pins `rq`.
# - **No daemon.** `daemonize()`, `--daemon`, `PID_FILE` and `SHORTLY_PID_FILE` go; `deploy.sh` stops using
#   `nohup … &` and the pid file, and leaves the processes to systemd (e.g. a `./deploy.sh run TYPE` that execs
#   `release.py run --process TYPE`, which units start).
# - **The runbook and the example config**: the two process types, how honcho and systemd run and scale them,
#   no pid file.
#
# When you are done, check your work here or in a terminal:
#
# - `factorlab check 08` runs the same checks as the checkpoint above
# - `factorlab check 08 --runner docker` runs them with each process in a container of its own
# - `factorlab hint 08` reveals one hint at a time
# - `factorlab solution 08` shows the difference to the reference solution, once your check passes
#
# Or press the button:

# %%
nb.check_button("08")

# %% [markdown]
# Next: **[Factor IX — Disposability](09_disposability.ipynb)**, where the processes learn to start fast and to
# stop, or die, without losing a request or a job.
#
# Finally, stop anything this notebook started (every app above was stopped already, so this prints nothing):

# %%
nb.stop_all()
