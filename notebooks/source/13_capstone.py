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
# # Capstone — Shortly as a twelve-factor system
#
# **What you will do**
#
# - run Shortly the way production runs it: a release made by `release.py`, two web processes and two workers
#   under a supervisor, a router in front, PostgreSQL and Redis behind
# - keep visitors busy while a web process and a worker crash, while a release rolls forward and back, and while
#   a one-off purges expired links, and count what they noticed
# - read the processes' streams as one, and score your app against all twelve factors at once
#
# ⏱ About 30 minutes. There is no new sin here, and no exercise: this is where the twelve fixes work together.
# The whole methodology on one page: [12factor.net](https://12factor.net).

# %%
import re

from factorlab import capstone
from factorlab import notebook as nb

# %% [markdown]
# ## The app you run
#
# The capstone runs your `exercises/12_admin_processes` once its check has passed (`factorlab check 12`, or the
# button at the end of notebook 12). Until then it runs the reference solution, `solutions/12_admin_processes`.
# Either way it works on a fresh copy, so nothing here changes your files.

# %%
# NBVAL_IGNORE_OUTPUT
# (which copy depends on your progress)
app = nb.capstone_workspace()

# %% [markdown]
# ## The system
#
# Everything below is a real part, the same kind production uses:
#
# | part | what it is here | which factor made it possible |
# |---|---|---|
# | the code | one folder, built into a release by its own `release.py` | I, V |
# | its dependencies | a virtual environment made from its `requirements.txt` alone | II |
# | its config | `release.env` of each release: a secret, `DATABASE_URL`, `REDIS_URL` | III |
# | PostgreSQL and Redis | servers of this notebook's own, attached by URL | IV, X |
# | `web.1`, `web.2` | `release.py run --process web`: gunicorn on a port given to each | VI, VII, VIII |
# | `worker.1`, `worker.2` | `release.py run --process worker`: RQ workers taking preview jobs | VIII, IX |
# | their streams | every line each process writes, read and kept as it comes | XI |
# | `init-db`, `purge-expired` | one-off processes: `release.py run -- flask --app shortly …` | XII |
#
# Two parts are the course's own, standing in for what a platform brings. A **supervisor** starts each process
# and starts it again as soon as it exits, as systemd's `Restart=always` does (`honcho start` is for a laptop: it
# stops every process when one exits). A **router** on a port of its own sends each request to the next web
# process in service and, when a process cannot take it, to the other one, as nginx's `proxy_next_upstream`
# does. A web process goes into service once it answers, and out of it as soon as it exits.
#
# First the backing services, a page for the previews to fetch (it answers in 50 ms), and release `v1`, whose
# database a one-off `init-db` sets up: no process creates the table as it starts.

# %%
pg, queue = nb.postgres(), nb.redis()
page = nb.slow_page(0.05, "A page worth a preview")
drill = capstone.Drill(app, pg, queue, page)
release, code, said = drill.set_up()
print(f"released {release}; init-db, a one-off of {release}, exited with code {code}:")
print("   ", re.sub(r"\S+://\S+", "<DATABASE_URL>", said.strip().splitlines()[-1]))

# %% [markdown]
# ## Start it, under load
#
# Now the four processes, and three visitors who, without stopping, make a link (every other one expires after a
# second), follow it, and ask `/api/release` which release answered. Every request goes through the router.

# %%
drill.start()
print("in service behind the router:", ", ".join(drill.system.router.in_service()))
print("workers registered with the queue:", nb.wait_for(
    lambda: len(capstone.worker_pids(queue.client())) == 2, 30))
print("the visitors are being answered:", nb.wait_for(lambda: len(drill.load.results) >= 30, 30))

# %% [markdown]
# ## A web process crashes
#
# `SIGKILL` is what the kernel sends when a process runs out of memory, and what a crash amounts to: no warning,
# no clean-up. The requests `web.1` held die with it. The router sees the connection drop without an answer and
# sends the request to `web.2`: it can, because sending Shortly's requests again is safe. A `GET` changes
# nothing, and a `POST /api/links` sent twice makes two links, one of which nobody uses. (An app where a repeated
# `POST` charges a card twice needs more: an idempotency key that lets it answer the second time without acting
# again.) The supervisor starts `web.1` again, and the router puts it back once it answers.

# %%
crash = drill.kill_web("web.1")
print(f"{crash.what}: back in service within 10 s:", crash.recovered_after is not None and crash.recovered_after < 10)

# %% [markdown]
# ## A worker crashes holding a job
#
# Now a worker, at a moment it is fetching a page for a preview. To be sure of the moment, the drill makes a link
# to a page that keeps its fetcher waiting, and kills the worker whose job is connected to it. Its job is neither
# done nor failed: RQ keeps it as "started" by a worker that no longer exists. Factor IX's fix is what saves it: a worker that starts puts
# such jobs back on the queue, and fetching a preview twice does no harm.

# %%
crash = drill.kill_worker()
print(f"{crash.what}: a new worker taking jobs within 10 s:",
      crash.recovered_after is not None and crash.recovered_after < 10)

# %% [markdown]
# ## Roll a release forward, and back
#
# A new release is a build plus a config. Here the code stays and the config changes (sessions last a day), so
# `release.py` reuses the build and numbers a new release, `v2`. Then each process is restarted in turn on it, as
# `deploy.sh` has systemd do: out of service, `SIGTERM`, the requests it holds answered, a new process, back in
# service. And then, as if `v2` had gone wrong, `release.py rollback` and the same rolling restart onto `v1`.

# %%
print("released", drill.roll(forward=True, SHORTLY_SESSION_LIFETIME="86400"), "and restarted every process on it")
print("rolled back to", drill.roll(forward=False), "and restarted every process on it")

# %% [markdown]
# ## A one-off, while it serves
#
# Half the visitors' links expire after a second. `purge-expired` runs as a one-off of the current release, with
# its code and its config, next to the processes that serve, and says how many links it deleted:

# %%
code, said, left = drill.purge()
print("purge-expired exited with code", code)
print("   ", re.sub(r"\d+", "N", re.sub(r"\S+://\S+", "<DATABASE_URL>", said.strip().splitlines()[-1])))
print("expired links left behind:", left)

# %% [markdown]
# ## The figures
#
# The visitors stop; the workers finish the queue; every process is stopped with `SIGTERM`. Then the count: every
# request a visitor made, the ones that failed (the target is none), the jobs lost (links a visitor was given
# that never got their preview; the target is none), and how long each disruption took to heal.

# %%
figures = drill.finish()

# %%
# NBVAL_IGNORE_OUTPUT
# (measured figures differ from run to run and machine to machine; the cell after the plot says what holds)
print(f"{figures['requests']} requests in {figures['seconds']} s: {figures['served']} answered, "
      f"{figures['failed']} failed; sent again by the router: {figures['sent_again'] or 'none'}")
print(f"{figures['links']} links made, {figures['links_purged']} of them purged once expired; "
      f"jobs lost: {figures['jobs_lost']}")
for r in figures["recoveries"]:
    print(f"  at {r['at']:5.1f} s  {r['what']:<34} whole again after {r['recovered_after']:.1f} s")
print("answers of /api/release by release:", figures["releases_seen"])
nb.capstone_figure(figures)

# %%
print("failed requests:", figures["failed"], "(target 0)")
print("jobs lost:", figures["jobs_lost"], "(target 0)")
print("every disruption healed within 10 s:",
      all(r["recovered_after"] is not None and r["recovered_after"] < 10 for r in figures["recoveries"][:2]))
print("both releases answered:", sorted(figures["releases_seen"]))
print("the one-offs and their exit codes:", figures["one_offs"])

# %% [markdown]
# ## The streams, as one
#
# Every process wrote its events to its own stdout, and nothing else: the supervisor read each stream as it came.
# Put together and parsed, they answer questions no single process could. Which events did the app write, and
# how many errors were there? (RQ's own lines are events too, through the app's logging, and each names a job.)

# %%
events, loose = figures["events"], figures["loose_lines"]
app_events = sorted({e["event"] for e in events if not e["event"].startswith(("Worker ", "Successfully", "***"))})
print("the app's kinds of event:", app_events)
print("errors in the stream:", sum(e.get("level") in ("error", "critical") for e in events))
print("the worker that came back put the dead one's job back on the queue:",
      any(e["event"] == "jobs of dead workers back on the queue" for e in events))

# %% [markdown]
# Requests per second, read from the web processes' streams alone, one line per process: `web.1` drops out when
# it is killed and comes back; during each rolling restart each process steps out in turn.

# %%
# NBVAL_IGNORE_OUTPUT
# (measured, as above)
nb.per_second("Request events per second, from each web process's stream",
              {name: [(e["t"], True) for e in events if e["process"] == name and e["event"] == "request"]
               for name in ("web.1", "web.2")},
              {name: [t for t, what in figures["supervisor"] if what.startswith(f"{name} ") and "killed" in what]
               for name in ("web.1", "web.2")})

# %% [markdown]
# Not every line is an event. A few are not JSON: `release.py` says which release each process runs, and
# gunicorn's own messages (starting, a worker booted, shutting down) keep gunicorn's format. They are what is
# left to tidy up in factor XI's sense: gunicorn takes a `--logger-class` or `--log-config` that would make its
# lines events too.

# %%
# NBVAL_IGNORE_OUTPUT
# (which lines, and when, differ from run to run)
for t, name, line in loose[:6]:
    print(f"{name:<9} {nb.mask(line)[:120]}")

# %%
kinds = {"release.py" if line.startswith("running ") else "gunicorn" if line.startswith("[") else "other"
         for _, _, line in loose}
print("release.py's notes and gunicorn's own lines are among them:", {"release.py", "gunicorn"} <= kinds)

# %% [markdown]
# ## Quiz

# %%
nb.quiz("A web process dies while it holds a POST that creates an order and charges a card. What may the router "
        "do with that request?",
        ["Send it to another web process: the visitor would rather not see an error",
         "Answer with an error (502), unless the app can recognise the same request sent twice, e.g. by an "
         "idempotency key, and then it may send it again",
         "Nothing: wait until the dead process comes back and send it there"],
        answer=1,
        why="The request may have been carried out before the process died; sent again, it would be carried "
            "out twice. Only a request that is safe to repeat may be repeated.")

# %%
nb.quiz("Why did no job get lost when the worker was killed?",
        ["RQ retries every job three times",
         "The worker got SIGTERM first and finished its job",
         "A worker that starts puts the jobs of dead workers back on the queue, and a job that runs twice stores the "
         "same result"],
        answer=2,
        why="SIGKILL gives no warning. The job survives because it stays recorded in Redis, is put back by the next "
            "worker, and is safe to run again.")

# %% [markdown]
# ## The scorecard
#
# All twelve factors' checks, on the app this notebook ran, at once: what `factorlab check all` runs in a
# terminal (`factorlab check all --path workspace/13_capstone`, or on your own folder without `--path`). A factor
# passes when every one of its checks does; otherwise the table names what does not pass yet.

# %%
nb.scorecard_table(nb.capstone_source(), "the app this notebook ran")

# %% [markdown]
# And your own `exercises/12_admin_processes`, whenever you like: the button runs every factor's checks on it
# (about a minute), and records your progress on factor XII as `factorlab check 12` does.

# %%
nb.score_button()

# %% [markdown]
# ## Where to go from here
#
# You took an app that kept its config in code, its data in files next to it and its chores behind a URL, and
# made it an app a platform can build, release, run, scale, restart and throw away, one factor at a time. The
# same twelve ideas are what Heroku, Cloud Foundry, Kubernetes and most container platforms expect from an app.
#
# - Read the methodology whole, now that each part has a face: [12factor.net](https://12factor.net).
# - Run your app in containers: `factorlab check all --runner docker` builds an image of it and runs every check
#   with each process in a container of its own (where a Docker engine answers).
# - Revisit a factor: each notebook starts from the solution of the one before, so you can start anywhere.
#
# This is the end of the course. Finally, stop anything this notebook started (the system was stopped already,
# so this stops the backing services):

# %%
nb.stop_all()
