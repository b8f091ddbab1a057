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
# # Welcome to factorlab
#
# **The Twelve-Factor App, one fix at a time.**
#
# [The Twelve-Factor App](https://12factor.net) is a short set of twelve practices for building
# web apps that are easy to deploy, easy to scale out, and behave the same on your laptop as in
# production. Reading the twelve factors takes ten minutes; *seeing why they matter* takes a real
# app that breaks them.
#
# So that is what you get here: **Shortly**, a small Flask URL shortener that breaks all twelve
# factors on purpose, each in a way you have probably met in real code. One notebook per factor,
# you refactor Shortly until it is a twelve-factor app.
#
# Every fix is confirmed by a **check**, and the same check runs in four places with the same verdict:
#
# - in the notebook, in a checkpoint cell or with a **Check my work** button;
# - on the command line: `factorlab check 01`;
# - in a container, the way a server would run your app: `factorlab check 01 --runner docker`
#   (optional: it needs Docker on your machine);
# - in CI, which runs the course's checks and notebooks on every push.

# %% [markdown]
# ## Who this is for
#
# - You know some Python and have seen a Flask app (routes, `request`, `jsonify`). No prior
#   twelve-factor knowledge needed.
# - You learn best by changing code and watching what happens.
# - You are learning alone, sitting in an instructor's lab, or trying it out on Binder: the
#   course works the same everywhere, with no Docker and no root needed.

# %% [markdown]
# ## How a notebook is laid out
#
# Notebooks `01_codebase` … `12_admin_processes` all follow the same plan:
#
# 1. **Header**: the factor, what you will learn, a time estimate, and a link to the factor on 12factor.net.
# 2. **The symptom**: the sin shown live, on the app *before* the fix. The pain before the cure.
# 3. **The refactor**, in small steps, in a fresh copy of the app under `workspace/`. Run the
#    notebook again and you start over from a clean copy; `exercises/` and `solutions/` are never touched.
# 4. **Checkpoints**: cells that run the factor's checks and show the results as a table.
# 5. **A short quiz**, to see whether the idea stuck.
# 6. **The exercise**: `exercises/NN_slug/` holds the app after the walkthrough, with your part
#    still marked `# TODO:`. You finish it, then check it.
#
# Each notebook starts from the reference solution of the factor before it, so you can start anywhere.

# %% [markdown]
# ## Hints, solutions and your progress
#
# Run these in a terminal from the course folder (in JupyterLab: *File → New → Terminal*):
#
# | command | what it does |
# |---|---|
# | `factorlab check 01` | run factor I's checks on `exercises/01_codebase` (`--path DIR` checks another folder, see below) |
# | `factorlab check 01 --runner docker` | the same checks, with your app in containers built from the folder, as on a server; same verdict, needs Docker (`--keep` leaves the containers for you to inspect) |
# | `factorlab hint 01` | show the next hint: one more each time you ask |
# | `factorlab solution 01` | the diff between your work and the reference solution, once your check has passed |
# | `factorlab progress` | which factors you have passed so far |
# | `factorlab list` | every exercise, its time estimate and its number of checks |
# | `factorlab submit --student ID` | in a class: pack your exercise folders into one archive to hand in (never your `.env`, a database or a log; it refuses anything that looks like a real secret) |
#
# Exercise ids can be written `01`, `01_codebase` or `codebase`. Your progress and the hints you
# have seen are kept in `.factorlab/` in your checkout. Progress is recorded when `factorlab check`
# or a notebook's **Check my work** button checks the exercise folder itself (`exercises/01_codebase`
# for factor I). Checking any other folder, such as a notebook's workspace with `--path`, shows the
# results but records nothing, and neither do the checkpoint cells of the walkthroughs.

# %% [markdown]
# > **About the secrets.** The legacy app has a secret key, an API token and an admin password
# > written right into its code. They are **fake**, made up for this course, and protect nothing.
# > They are there only so that you can remove them (factor III). Never put real secrets in code.

# %% [markdown]
# ## A guided tour of Shortly
#
# Every notebook begins by importing its helpers: they make workspaces, run the app, and run checks.

# %%
from factorlab import notebook as nb

# %% [markdown]
# First a private copy of the legacy app to play with, in `workspace/00_welcome`
# (notebook 01 makes its own copy, so nothing you do here carries over).

# %%
import shutil

ws = nb.course().root / "workspace" / "00_welcome"
shutil.rmtree(ws, ignore_errors=True)
shutil.copytree(nb.course().legacy, ws, ignore=nb.IGNORED)
nb.files(ws)

# %% [markdown]
# Four files: `shortly.py` is the app, `deploy.sh` and `OPS.md` are how the team runs it.
# And `shortly_prod.py`? Hold that thought until notebook 01.
#
# Here are Shortly's settings. Count the sins you can already spot:

# %%
nb.show(ws / "shortly.py", 24, 41)

# %% [markdown]
# When you create a link, Shortly fetches the target page and stores its `<title>` as a preview.
# So that the tour does not depend on the internet, start a tiny web page on this machine
# whose title is *factorlab test page*:

# %%
from contextlib import ExitStack
from factorlab.testpage import TestPage

cleanup = ExitStack()  # the last cell closes it
page = cleanup.enter_context(TestPage())

# %% [markdown]
# Now start Shortly from the workspace. `nb.App` serves it on a free port on this machine;
# `app.get(...)` and `app.post(...)` send it requests and print the answers. Random link codes
# print as `<code1>`, `<code2>`, …, and times as `<time>`, so the output is the same on every run.

# %%
app = nb.App(ws)

# %%
app.get("/")

# %% [markdown]
# The home page: a form to shorten a URL, and your recent links (none yet). Create a link
# through the JSON API:

# %%
# NBVAL_IGNORE_OUTPUT
# (why: the legacy app fetches titles with curl, so without curl the title is empty: factor II's sin)
link = app.post("/api/links", json={"url": page.url("/talks/twelve-factor")})
link

# %% [markdown]
# `201 Created`, with the page's title already fetched. Notice the `short_url`: `localhost:5000`
# is written into the code, whatever machine the app runs on.
#
# Follow the short link, as a browser would:

# %%
code = link.json()["code"]
app.get(f"/{code}")

# %% [markdown]
# A redirect to the target, and one click counted. The stats page shows it:

# %%
# NBVAL_IGNORE_OUTPUT
# (why: the legacy app fetches titles with curl, so without curl the title is empty: factor II's sin)
app.get(f"/stats/{code}")

# %% [markdown]
# Shortly remembers *your recent links* in your session:

# %%
app.get("/api/recent")

# %% [markdown]
# And there is an admin endpoint that purges expired links, protected by a token in the URL
# (yes, the fake one from the settings):

# %%
app.get("/admin/purge?token=FAKE-admin-token-letmein")

# %% [markdown]
# What did the app leave behind? Look at the workspace again: a database and a log file,
# written next to the code.

# %%
nb.files(ws)

# %% [markdown]
# That's the tour. Stop the app:

# %%
app.stop()

# %% [markdown]
# ## Twelve factors, twelve sins
#
# `nb.scorecard()` lists the twelve factors with the sin the legacy app commits against each,
# the fix you will make, and what the checks say about the legacy app today. After the twelfth,
# the capstone (`13_capstone`) runs your finished app as a small production system and shows this
# scorecard again for your own folder, every factor green; `factorlab check all` prints it in a
# terminal.

# %%
nb.scorecard()

# %% [markdown]
# ## Try the checker
#
# A checkpoint runs one factor's checks on a folder and shows a table: one row per check,
# what was seen, what was expected, and a hint for each failure. Here is factor III (config)
# run on the legacy app in your workspace, to see what failing looks like:

# %%
nb.checkpoint("03", ws)

# %% [markdown]
# Every check fails, and each says why. The same checks give the same verdicts from a terminal:
#
# ```
# factorlab check 03 --path workspace/00_welcome
# ```
#
# (This shows the results and records no progress: the folder is not `exercises/03_config`.)
#
# `factorlab check` exits with `0` when everything passes and `1` when anything fails, which is
# how CI uses it; add `--json` for machine-readable results.
#
# ## Where to read more
#
# The factors themselves are at [12factor.net](https://12factor.net): each notebook links to
# its factor's page there. Read it before or after the notebook, as you like; the notebooks
# explain each idea in their own words.
#
# ## Next
#
# Next: **[Factor I — Codebase](01_codebase.ipynb)**, and the mystery of `shortly_prod.py`.
#
# The last cell stops everything this notebook started.

# %%
cleanup.close()
nb.stop_all()
