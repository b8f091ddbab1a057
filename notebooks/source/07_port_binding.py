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
# # Factor VII — Port binding
#
# **What you will learn**
#
# - what it means for an app to be *self-contained*: it brings its own web server and serves HTTP itself
# - why the port is the platform's to choose, handed over in `$PORT`, and never written in the code
# - what a `Procfile` is: one line per process type, the command a platform runs to start it
# - why Flask's development server is for laptops, and what serves a Python app in production (gunicorn)
# - why short URLs come from the request, and how one app becomes another app's backing service by URL
#
# ⏱ About 45 minutes. The factor on 12factor.net: [VII. Port binding](https://12factor.net/port-binding).
#
# You start where notebook 06 ended: `solutions/06_processes`.

# %%
import shutil

from factorlab import notebook as nb

# %% [markdown]
# ## The idea
#
# Some apps are not complete on their own: they are files that a web server (Apache with its PHP module, a Java
# application server) loads and runs. The server belongs to the machine, and the app only works inside it.
#
# A twelve-factor app is *self-contained*. It declares its web server as a dependency, like any other library
# (factor II), and starts it itself. Once running, it *exports* HTTP on a port, and that port is all the outside
# world needs to know: a router or a load balancer in front sends requests to it, a browser on a laptop opens
# it, another app uses it as a backing service (factor IV) by its URL.
#
# Which port? Not the app's business. The platform that runs the app picks a free one and hands it over in the
# environment, as `PORT`. Two copies of the same code on one machine get two ports; the code does not change.
#
# How does the platform know what to run? From a **Procfile**, a text file in the app's folder with one line per
# *process type*: a name, a colon, and the command that starts it. `web` is the process that serves HTTP:
#
# ```
# web: gunicorn --bind 0.0.0.0:$PORT shortly:app
# ```
#
# Heroku, Dokku and other platforms read it, and so do tools such as honcho and foreman that do the same on
# your own machine (factor VIII uses one).

# %%
ws = nb.workspace("07")

# %% [markdown]
# ## The symptom: a port in the code, and a server made for laptops
#
# Where does Shortly decide how it is served?

# %%
nb.grep(ws, r"5000|app\.run|\"flask\", \"--app\"")

# %% [markdown]
# Three things, in two files:
#
# - `python3 shortly.py` ends in `app.run(..., port=5000)`: Flask's **development server**, on a port written in
#   the code. A second copy on the same machine cannot start (the port is taken), and neither can the first one
#   if something else already holds 5000 (on a Mac, the AirPlay receiver does).
# - In production, `release.py run` (factor V) starts `flask run`: the same development server, this time on
#   `$PORT`, but falling back to 5000 when nobody says otherwise.
# - And nothing tells a platform how to start Shortly at all. Ask it to, the way the checks do:

# %%
try:
    nb.App(ws, {"SHORTLY_SECRET_KEY": "fake-dev-key"}, process_type="web")
except nb.AppFailed as failed:
    print(failed)

# %% [markdown]
# Flask says it plainly each time its development server starts: *"This is a development server. Do not use it
# in a production deployment. Use a production WSGI server instead."* It handles one request at a time per
# thread, has no worker processes to restart when one misbehaves, and was never hardened for the open internet.
# A production WSGI server, such as **gunicorn**, runs a master process and several worker processes, restarts a
# worker that dies, and stops gracefully on SIGTERM (factor IX will lean on that).
#
# ## Checkpoint: where you start

# %%
nb.checkpoint("07", ws)

# %% [markdown]
# All five checks fail:
#
# - `port_binding.web_on_port`, `port_binding.production_server` and `port_binding.short_url` start Shortly the
#   way a platform would, from the Procfile's `web` line with a `$PORT` of their choosing, and there is no
#   Procfile. Once there is, `web_on_port` starts two web processes side by side on two ports;
#   `production_server` looks at which server answers, there and through `release.py run`; `short_url` asks for
#   links on an address it picked, and with the `Host` header a proxy in front would pass on.
# - `port_binding.no_fixed_port` reads the code, the scripts and the Procfile for ports and loopback addresses
#   written into them: `port=5000` in `shortly.py`, the `"5000"` default in `release.py`.
# - `port_binding.runbook`: `OPS.md` still sends you to http://localhost:5000/.
#
# ## How a platform runs a web process
#
# Before Shortly, a tiny app shows the whole mechanism. A *WSGI* app is a Python function that takes a request's
# environment and returns a response; Flask builds one for you, and any WSGI server can serve it. This one
# answers with a page whose title says which port it was reached on:

# %%
hello = ws.parent / "07-hello"
shutil.rmtree(hello, ignore_errors=True)
hello.mkdir()
(hello / "hello.py").write_text('''\
def app(environ, start_response):
    """A WSGI app: the page's title names the address the request came to."""
    where = environ["HTTP_HOST"]
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [f"<title>hello from {where}</title>".encode()]
''')
(hello / "requirements.txt").write_text("gunicorn==27.0.1\n")
(hello / "Procfile").write_text("web: gunicorn --bind 0.0.0.0:$PORT hello:app\n")
nb.files(hello)

# %% [markdown]
# Its dependencies are declared (gunicorn, nothing else), and its Procfile says how to serve it. `nb.App(...,
# process_type="web")` does what a platform does: it builds an environment from `requirements.txt` alone, picks
# a free port, and runs the `web` line with `$PORT` set. Twice, for two copies:

# %%
one = nb.App(hello, process_type="web")
two = nb.App(hello, process_type="web")
for copy in (one, two):
    answer = copy.get("/")
    print(answer.raw.headers["Server"], "-", answer.text.replace(str(copy.port), "<its port>"))
print("two ports:", one.port != two.port)

# %% [markdown]
# Same code, two processes, two ports, and the code never names one: each copy serves where it was told to. The
# `Server` header says gunicorn answered. (`--bind 0.0.0.0:$PORT` asks for every network interface, which a
# platform or a container needs; the course keeps the servers its checks start on your own machine reachable
# from it alone, whatever they ask for.)
#
# ## One app, another app's backing service
#
# A service reached by URL is a backing service for whoever has the URL. Shortly fetches the page of every link
# it shortens, for its preview; give it a link to the hello app, and the hello app is one of Shortly's backing
# services, found by its URL, nothing else:

# %%
shortly = nb.App(ws, {"SHORTLY_SECRET_KEY": "fake-dev-key"})
made = shortly.post("/api/links", json={"url": f"http://127.0.0.1:{one.port}/"})
print(made.json()["title"].replace(str(one.port), "<its port>"))
made

# %% [markdown]
# The title came from the hello app, over HTTP, on the port its platform gave it. And look at `short_url`: it
# names the address this request reached Shortly at. Shortly builds it from the request (`request.host_url`,
# since factor III), not from a base written in the code, so the same code gives the right short URLs on any
# port, and behind any proxy that passes the `Host` header on.

# %%
shortly.stop()
one.stop()
two.stop()

# %% [markdown]
# ## A Procfile for Shortly
#
# Shortly gets a Procfile of its own, with a comment that says what it is for. Its `web` line is yours to write:

# %%
nb.write(ws / "Procfile", """\
# Shortly's process types, one line each: a name, then the command that starts it. A platform (Heroku,
# Dokku, honcho, foreman, `release.py run`) runs the line from the app's folder, with $PORT set to the
# port the web process must serve on.
""")
try:
    nb.App(ws, {"SHORTLY_SECRET_KEY": "fake-dev-key"}, process_type="web")
except nb.AppFailed as failed:
    print(failed)

# %% [markdown]
# ## Where the walkthrough leaves you
#
# Your workspace now holds the code the exercise starts from: `exercises/07_port_binding` adds only `TODO` notes,
# the part left for you. A quick comparison, with those notes and blank lines left out:

# %%
nb.compare_with_starter(ws, "07")

# %% [markdown]
# ## Quiz

# %%
nb.quiz("Shortly's web process starts on a platform. Who decides which port it listens on?",
        ["The code: port=5000, so that everyone knows where to find it",
         "The platform: it hands the port over in $PORT, and the app binds it",
         "The browser, through the URL it opens"],
        answer=1,
        why="The port belongs to the deploy, not to the code: two copies on one machine need two ports, and the "
            "router in front must know where each one listens. The platform picks it and says so in $PORT.")

# %%
nb.quiz("Flask's `app.run()` serves the app on $PORT. What is still wrong for production?",
        ["Nothing: binding $PORT is all the factor asks",
         "It is Flask's development server: one process, no workers to restart, not made for real traffic",
         "Flask apps cannot serve HTTP"],
        answer=1,
        why="Port binding means the app brings a web server as a declared dependency; for production that is a "
            "WSGI server made for it, such as gunicorn, which runs and restarts worker processes.")

# %% [markdown]
# ## Your turn: the exercise
#
# Now make Shortly serve itself in **`exercises/07_port_binding`**. `TODO` comments mark what to do:

# %%
nb.todos("07")

# %% [markdown]
# What is left:
#
# - **A Procfile.** One `web:` line that serves `shortly:app` with gunicorn on `$PORT`, and gunicorn pinned in
#   `requirements.txt`: the checks build the environment from that file alone, as a fresh deploy does.
# - **No fixed port.** `python3 shortly.py` takes its port from `PORT` too, and stops with a message without it.
#   A default such as `PORT or "5000"` is a fixed port in disguise.
# - **`release.py run`** serves a release with its Procfile's `web` line: read the line, fill in `$PORT`, and run
#   its program with this same Python (the gunicorn script next to `sys.executable`), as factor II wants: no
#   other program started. Without `PORT`, it refuses to start.
# - **The runbook and the example config**: how the app serves itself in `OPS.md`, and `PORT` in `.env.example`.
#
# When you are done, check your work here or in a terminal:
#
# - `factorlab check 07` runs the same checks as the checkpoint above
# - `factorlab check 07 --runner docker` runs them with the app in a container (the Procfile's line is run there)
# - `factorlab hint 07` reveals one hint at a time
# - `factorlab solution 07` shows the difference to the reference solution, once your check passes
#
# Or press the button:

# %%
nb.check_button("07")

# %% [markdown]
# Next: **[Factor VIII — Concurrency](08_concurrency.ipynb)**, where the Procfile grows a second process type,
# a worker, and Shortly scales out by running more processes of each type.
#
# Finally, stop anything this notebook started (every app above was stopped already, so this prints nothing):

# %%
nb.stop_all()
