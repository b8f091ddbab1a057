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
# # Factor IX — Disposability
#
# **What you will learn**
#
# - what it means for a process to be *disposable*: it can be started or stopped at any moment, and often is
#   (a deploy, a config change, a scale-up, a machine that goes away)
# - why start-up must not grow with the data, and what a slow start costs during a restart
# - what a clean stop is: on SIGTERM, take no new work, finish what is in hand, exit 0
# - why a process must also survive a *sudden* death (kill -9, a crash), and how a queue, a requeue on start and
#   an idempotent job make that safe
#
# ⏱ About 60 minutes. The factor on 12factor.net: [IX. Disposability](https://12factor.net/disposability).
#
# You start where notebook 08 ended: `solutions/08_concurrency`.

# %%
import json
import shutil
import subprocess
import sys
import threading
import time

import requests
from rq import Queue, Worker

from factorlab import notebook as nb
from factorlab.checks.disposability import store_links

# %% [markdown]
# ## The idea
#
# Factors VI and VIII made Shortly a set of processes that share nothing and can be run in any number. This
# factor asks that each of them be **disposable**: a platform (or you) may start one, stop one or replace one at
# any moment, and nothing should be lost or slowed down for long when it does. Deploys, config changes, scaling
# up and down, moving to another machine: all of them stop and start processes.
#
# Three things make a process disposable:
#
# - **It starts fast**, in seconds at most, so that a new process takes over quickly and a restart is cheap. Start-up
#   must not do work that grows with the data.
# - **It stops cleanly when asked.** Every process manager asks the same way: the signal SIGTERM. A web process then
#   stops taking new connections, answers the requests it already has, and exits. A worker finishes its job (or
#   puts it back on the queue) and exits.
# - **It survives being killed without warning.** Machines crash and processes get SIGKILL. Nothing in flight can be
#   saved then, so the design must not need it: a job that was not finished goes back on the queue and runs again,
#   and running it twice must do no harm (it is *idempotent*).

# %%
ws = nb.workspace("09")

# %% [markdown]
# ## A change since factor VIII: a shutdown handler
#
# Since the last factor, a teammate has made restarts "quicker": when the process is told to stop, it closes its
# database connections and exits at once. Put their change into your workspace:

# %%
nb.replace(ws / "shortly.py", "import secrets\nimport string\n", "import secrets\nimport signal\nimport string\n")
nb.replace(ws / "shortly.py", '''if __name__ == "__main__":''', '''def shutdown(signum, frame):
    """On SIGTERM: close the database connections and exit at once, so a restart never waits."""
    log.info("SIGTERM: shutting down")
    engine.dispose()
    sys.exit(0)


signal.signal(signal.SIGTERM, shutdown)


if __name__ == "__main__":''')
nb.grep(ws / "shortly.py", r"def shutdown|signal\.signal|sys\.exit\(0\)")

# %% [markdown]
# It sounds tidy. You will see below what it does to a request in flight. First, how long does Shortly take to
# start?
#
# ## The first symptom: the more links, the slower the start
#
# Look at what Shortly does when its module is imported, before it serves anything:

# %%
nb.grep(ws / "shortly.py", r"^def warm_cache|^    for url in urls|^            fetch_title|^    warm_cache\(\)")

# %% [markdown]
# `warm_cache()` fetches the page of every stored link that the Redis cache does not hold yet. With a few links,
# nobody notices. Here is a page that takes 0.05 s to answer, and a database that holds no links, then 100:

# %%
page = nb.slow_page(0.05, "a stored page")
redis = nb.redis()
data = ws.parent / "09-data"
shutil.rmtree(data, ignore_errors=True)
data.mkdir()


def time_to_serve(folder, links):
    """Seconds from starting the web process of folder to its first answer, with `links` links stored."""
    database = data / f"links-{folder.name}-{links}.db"
    store_links(str(database), [page.url(f"/stored/{links}/{n}") for n in range(links)], create=True)
    with redis.client() as client:
        client.flushall()  # an empty cache, as after a Redis restart or on a new machine
    started = time.monotonic()
    web = nb.App(folder, {"SHORTLY_SECRET_KEY": "fake-dev-key", "DATABASE_URL": f"sqlite:///{database}",
                      "REDIS_URL": redis.url()}, process_type="web")
    web.get("/")
    took = time.monotonic() - started
    web.stop()
    return took


few, many = time_to_serve(ws, 0), time_to_serve(ws, 100)
print("with 100 links, it took at least 5 s longer than with none:", many >= few + 5)
print("pages it fetched before serving:", len([p for p in page.paths() if p.startswith("/stored/100/")]))

# %% [markdown]
# A hundred links cost five seconds; Shortly's production database holds tens of thousands, so a restart takes
# minutes, and the runbook says so ("give it a few minutes"). While a process starts, it serves nobody: during a
# deploy the others carry its load, and if one crashes at the peak, its replacement is of no help for minutes.
#
# ## The second symptom: a stop that drops what it holds
#
# How does a process learn that it must stop? Its process manager (honcho, systemd, Docker, a platform) sends it
# the signal **SIGTERM**, to every process of the app at once, waits a while for them to exit, and only then
# kills what is left with SIGKILL. Here is a web process holding one request: a link to a page that takes 3
# seconds (without `REDIS_URL`, the web process fetches the preview itself). While the page is slow, the web
# process gets SIGTERM:

# %%
slow = nb.slow_page(3)
web = nb.App(ws, {"SHORTLY_SECRET_KEY": "fake-dev-key", "DATABASE_URL": f"sqlite:///{data}/stop.db"},
             process_type="web")
web.get("/")
outcome = {}


def make_link():
    try:
        outcome["status"] = requests.post(f"http://127.0.0.1:{web.port}/api/links", json={"url": slow.url("/x")},
                                          timeout=30).status_code
    except requests.RequestException:
        outcome["status"] = None  # the connection ended without an answer


visitor = threading.Thread(target=make_link)
visitor.start()
slow.wait_for(lambda: "/x" in slow.paths(), 30)  # the request is in the app, waiting on the page
web.running.terminate()  # SIGTERM to every process of it, as a process manager sends it
visitor.join()
print("the visitor got their link (201):", outcome["status"] == 201)
web.stop()

# %% [markdown]
# The visitor pressed "Shorten" and got an error, for nothing they did. The handler exited in the middle of their
# request. Every deploy does this to whoever is being served at that moment, which is why the runbook says not to
# deploy at the morning peak.
#
# ## The third symptom: a worker that dies takes its job with it
#
# The previews are jobs on a queue, done by workers (factor VIII). What happens to a job when its worker is
# killed while doing it? Start a web process and a worker, make a link to the slow page, and kill the worker
# (SIGKILL, as a crash or the out-of-memory killer would) while it waits for the page:

# %%
with redis.client() as client:
    client.flushall()
env = {"SHORTLY_SECRET_KEY": "fake-dev-key", "DATABASE_URL": f"sqlite:///{data}/jobs.db", "REDIS_URL": redis.url()}
web = nb.App(ws, env, process_type="web")
worker = nb.App(ws, env, process_type="worker")
with redis.client() as client:
    nb.wait_for(lambda: len(Worker.all(connection=client)) == 1, 60)  # the worker waits for jobs

code = web.post("/api/links", json={"url": slow.url("/job")}).json()["code"]
slow.wait_for(lambda: "/job" in slow.paths(), 30)  # the worker is fetching the page
worker.kill()
worker = nb.App(ws, env, process_type="worker")  # its process manager starts a new one
got_title = nb.wait_for(lambda: web.get(f"/api/links/{code}").json()["title"] == slow.title, 5)
print("the link got its title within 5 s of the new worker's start:", got_title)
with redis.client() as client:
    started = Queue("previews", connection=client).started_job_registry
    print("jobs RQ still counts as started by a worker:", len(started.get_job_ids(cleanup=False)))

# %% [markdown]
# The job is stuck as "started" by a worker that no longer exists. RQ does notice such jobs, but only after the
# dead worker's heartbeat has run out (a minute and more), and then it marks them failed. So the link never gets
# its title.
#
# There is also a quieter loss: SIGTERM reaches every process of a worker, and RQ runs each job in a child process
# (a *fork*) that dies of that signal. A worker that is only asked to stop loses its job too.

# %%
worker.stop()
web.stop()

# %% [markdown]
# ## Checkpoint: where you start

# %%
# NBVAL_IGNORE_OUTPUT
# (what a check saw on a starter that drops requests differs from run to run: which of
# gunicorn's processes acts on SIGTERM first decides which requests are lost; the next cell says what holds)
report = nb.checkpoint("09", ws)
report

# %%
print("checks that fail:", sum(r.status == "failed" for r in report.results), "of", len(report.results))

# %% [markdown]
# All five checks fail:
#
# - `disposability.fast_start` stores 3000 links whose pages never finish answering, then starts a web and a
#   worker process: each must serve (or wait for jobs) within seconds, having fetched none of those pages.
# - `disposability.graceful_stop` sends a web process three requests that each wait on a slow page, then SIGTERM:
#   every request must still be answered, a connection made after the signal must not be served, and the process
#   must exit 0.
# - `disposability.worker_stop` sends SIGTERM to a worker in the middle of a job: the job must be done all the
#   same, by that worker or by the next, and the worker must exit 0.
# - `disposability.worker_killed` kills a worker (SIGKILL) in the middle of a job and starts another: the job must
#   be done, once in effect.
# - `disposability.runbook`: `OPS.md` still asks for minutes after a restart and no deploys at the peak.
#
# ## Starting fast
#
# Nothing needs `warm_cache()`: each link keeps its title in the database, and a page missing from the cache is
# fetched when a worker needs it. Try it on a copy of your workspace (the workspace stays as the exercise starts):

# %%
fixed = ws.parent / "09-fixed"
shutil.rmtree(fixed, ignore_errors=True)
shutil.copytree(ws, fixed)
nb.replace(fixed / "shortly.py", "if cache is not None:  # without a cache there is nothing to warm\n    warm_cache()\n",
           "")
print("with 100 links and no warm-up, it served at least 4 s sooner:", time_to_serve(fixed, 100) <= many - 4)

# %% [markdown]
# ## Stopping cleanly
#
# gunicorn already knows how to stop. On SIGTERM its main process closes the port, tells its workers to finish,
# waits for them (up to `--graceful-timeout`, 30 seconds by default), and exits 0. The app's own handler was
# getting in the way: it replaced gunicorn's in each worker. Take it out of the copy and try the same request
# again:

# %%
nb.replace(fixed / "shortly.py", "signal.signal(signal.SIGTERM, shutdown)\n", "")
web = nb.App(fixed, {"SHORTLY_SECRET_KEY": "fake-dev-key", "DATABASE_URL": f"sqlite:///{data}/stop.db"},
             process_type="web")
web.get("/")
outcome.clear()
asked = len(slow.requests)
visitor = threading.Thread(target=make_link)
visitor.start()
slow.wait_for(lambda: len(slow.requests) > asked, 30)
code = web.terminate()
visitor.join()
print("the visitor got their link (201):", outcome["status"] == 201)
print("the web process exited 0:", code == 0)

# %% [markdown]
# One more detail matters when the process is busy. gunicorn's default worker (`sync`) takes one connection at a
# time; others wait in the *queue* of the port, which the kernel keeps. When the process stops, the connections
# still in that queue are reset: their visitors get an error although they asked before the signal. gunicorn's
# `gthread` worker takes each connection as it arrives and answers it in a thread, so nothing waits in that queue:
#
# ```
# web: gunicorn --worker-class gthread --threads 4 --bind 0.0.0.0:$PORT shortly:app
# ```
#
# `disposability.graceful_stop` sends three requests at once, so it sees the difference.
#
# ## Workers that can be stopped and killed
#
# Two changes to `worker.py` make a worker disposable; they are yours to write, and the hints spell them out:
#
# - **On SIGTERM, finish the job.** RQ's `Worker` runs each job in a fork, and sets that fork to die of SIGTERM.
#   A subclass whose `setup_work_horse_signals()` calls the original and then ignores SIGTERM lets the fork
#   finish; the worker's own process, which got SIGTERM too, waits for it ("warm shutdown") and exits 0.
# - **On start, put back what the dead left behind.** A worker killed with SIGKILL cannot hand anything back.
#   But RQ names each worker's connection to Redis after the worker, and a dead process has no connection. So a
#   worker that starts can look at the jobs RQ counts as started, and put back on the queue those whose worker is
#   no longer connected.
#
# Here are the names, from a worker that is running now:

# %%
worker = nb.App(ws, env, process_type="worker")
with redis.client() as client:
    nb.wait_for(lambda: len([w for w in Worker.all(connection=client) if w.state == "idle"]) >= 1, 60)
    live = {entry.get("name") for entry in client.client_list()}
    workers = [w for w in Worker.all(connection=client) if w.state == "idle"]
    print("the running worker's connection carries its name:", all(w.name in live for w in workers))
worker.stop()

# %% [markdown]
# The job then runs again, from the start, perhaps after the dead worker had done half of it. That is safe only
# if doing a job twice has the same effect as doing it once. `fetch_preview` is such a job already: it stores
# *the* title of a page, it does not add or count anything.
#
# ## What it buys, measured on your machine
#
# `bench/startup.py` times the legacy app and the reference solution of this exercise from start to their first
# answer, with no links stored and with many (10,000 by default; 300 here, to keep the notebook quick, each of
# their pages taking 0.01 s to answer):

# %%
run = subprocess.run([sys.executable, "bench/startup.py", "--links", "300", "--delay", "0.01", "--json"], cwd=nb.course().root,
                     capture_output=True, text=True, timeout=900)
startup = json.loads(run.stdout)

# %%
# NBVAL_IGNORE_OUTPUT
# (the measured figures differ from run to run and machine to machine; the next cell says
# what holds every time)
nb.bars("Seconds from start to serving", ["legacy", "solution 09"],
        {"no links": [startup["legacy"]["none"], startup["solution"]["none"]],
         f"{startup['links']} links": [startup["legacy"]["many"] or startup["give_up"], startup["solution"]["many"]]})

# %%
print("the legacy app fetched every stored page before serving:", startup["legacy"]["fetched"] == startup["links"])
print("the legacy app took longer with the links than without:",
      startup["legacy"]["many"] is None or startup["legacy"]["many"] > startup["legacy"]["none"] + 1)
print("with the links, solution 09 served at least 2 s sooner than the legacy app:",
      startup["legacy"]["many"] is None or startup["legacy"]["many"] >= 2 + (startup["solution"]["many"] or 99))

# %% [markdown]
# `bench/rolling_restart.py` restarts two web processes of each app, one after the other, while four visitors
# make links without pause (for 30 seconds by default; 10 here, with the first restart after 2 seconds and 6
# seconds for a restarted process to serve before the next restart). Each process is taken out of service, sent
# SIGTERM and replaced, as a platform does it; its replacement goes back into service once it answers. It counts
# the requests that failed:

# %%
run = subprocess.run([sys.executable, "bench/rolling_restart.py", "--seconds", "10", "--first-restart", "2",
                      "--serve-within", "6", "--json"], cwd=nb.course().root,
                     capture_output=True, text=True, timeout=900)
rolling = json.loads(run.stdout)

# %%
# NBVAL_IGNORE_OUTPUT
# (measured figures, as above)
nb.per_second("Making links during a rolling restart (dotted: a process restarted)",
              {f"legacy: {rolling['legacy']['failed']} failed": rolling["legacy"]["timeline"],
               f"solution 09: {rolling['solution']['failed']} failed": rolling["solution"]["timeline"]},
              {f"legacy: {rolling['legacy']['failed']} failed": [r["at"] for r in rolling["legacy"]["restarts"]],
               f"solution 09: {rolling['solution']['failed']} failed": [r["at"] for r in rolling["solution"]["restarts"]]})

# %%
print("the legacy app dropped requests when a process stopped:", rolling["legacy"]["failed"] > 0)
print("solution 09 failed no request (the target):", rolling["solution"]["failed"] == 0)
print("each of its processes served again within 5 s of its restart:",
      all(r["serving_after"] is not None and r["serving_after"] < 5 for r in rolling["solution"]["restarts"]))

# %% [markdown]
# The legacy app drops the requests it holds at each stop, and each replacement spends many seconds fetching
# every stored page before it serves again, while the other process carries the whole load. The solution's
# restarts are barely visible: nothing failed, and each new process served within a second or so.
#
# ## Where the walkthrough leaves you
#
# Your workspace holds the code the exercise starts from: `exercises/09_disposability` adds only `TODO` notes,
# the part left for you. A quick comparison, with those notes and blank lines left out:

# %%
nb.compare_with_starter(ws, "09")

# %% [markdown]
# ## Quiz

# %%
nb.quiz("A platform sends SIGTERM to a web process that is answering two requests. What should the process do?",
        ["Exit at once, so the new release starts sooner",
         "Stop taking new connections, answer the two requests, then exit 0",
         "Keep serving until no request has come for a minute"],
        answer=1,
        why="SIGTERM means \"stop soon\": the requests already taken are answered, new visitors go to the other "
            "processes, and a clean exit (0) tells the process manager that nothing went wrong.")

# %%
nb.quiz("A worker is killed with SIGKILL in the middle of a job. What makes that safe?",
        ["A signal handler for SIGKILL that saves the job",
         "A pid file, so the next worker knows which job was running",
         "The job goes back on the queue when a worker starts, and running it twice has the effect of running it once"],
        answer=2,
        why="SIGKILL cannot be caught: nothing runs in the dying process. Safety comes from the design: jobs that "
            "were not finished are run again (at least once), and each job is idempotent.")

# %% [markdown]
# ## Your turn: the exercise
#
# Now make Shortly disposable in **`exercises/09_disposability`**. `TODO` comments mark what to do:

# %%
nb.todos("09")

# %% [markdown]
# What is left:
#
# - **A fast start.** Delete `warm_cache()` and its call.
# - **A clean stop for the web.** Delete the `shutdown` handler; let gunicorn stop. Give the `web` line gunicorn's
#   `gthread` worker, so no connection waits in the port's queue when it stops.
# - **Workers that can be stopped and killed.** In `worker.py`: a `Worker` subclass whose job fork ignores
#   SIGTERM, and, before `work()`, put back on the queue the started jobs whose worker is no longer connected.
# - **The runbook**: processes start in a second and may be restarted at any time; say what SIGTERM does to each
#   process type, and what happens to the job of a worker that is killed.
#
# When you are done, check your work here or in a terminal:
#
# - `factorlab check 09` runs the same checks as the checkpoint above
# - `factorlab check 09 --runner docker` runs them with each process in a container of its own
# - `factorlab hint 09` reveals one hint at a time
# - `factorlab solution 09` shows the difference to the reference solution, once your check passes
#
# Or press the button:

# %%
nb.check_button("09")

# %% [markdown]
# Next: **[Factor X — Dev/prod parity](10_dev_prod_parity.ipynb)**, where development runs on the same
# backing services as production.
#
# Finally, stop anything this notebook started (every app above was stopped already, so this prints only the
# slow pages and the Redis):

# %%
nb.stop_all()
