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
# # Factor II — Dependencies
#
# **What you will learn**
#
# - the two halves of this factor: *declaring* what the app needs, and *isolating* it from whatever else the machine has
# - how to write a pinned `requirements.txt`, and why `==` matters
# - why a command-line tool such as `curl` is a hidden dependency, and how to replace it with a Python library
#
# ⏱ About 30 minutes. The factor on 12factor.net: [II. Dependencies](https://12factor.net/dependencies).
#
# You start where notebook 01 ended: one codebase in git, `solutions/01_codebase`.

# %%
from factorlab import notebook as nb
from factorlab.testpage import TestPage

# %% [markdown]
# ## The idea in two sentences
#
# A twelve-factor app writes down **every** package it needs, with exact versions, in a manifest that lives in
# the repository (*declaration*). It then runs in an environment that holds only what the manifest lists, so a
# package that "just happens to be installed" on your laptop cannot sneak in (*isolation*).
#
# Declaration without isolation lets a forgotten dependency hide; isolation without declaration gives you an empty
# box. You need both. The same goes for programs the app calls: if it runs `curl`, then `curl` is a dependency,
# and one that `requirements.txt` has no way to declare.
#
# ## Your workspace
#
# Every notebook works on its own copy of the app, so you can break things freely.

# %%
ws = nb.workspace("02")
nb.files(ws)

# %% [markdown]
# ## The symptom: nothing is written down
#
# There is no `requirements.txt`, no `pyproject.toml`, nothing. Let's search the folder for imports and for `curl`:

# %%
nb.grep(ws, r"import|curl")

# %% [markdown]
# Read it the way a new colleague setting up a server would:
#
# - Almost every import is from Python's standard library. **`flask` is not**, and nothing says which version.
#   The runbook (`OPS.md:23`) gets it from the operating system (`python3-flask`), so the distribution picks the
#   version, and it differs from one machine to the next.
# - `shortly.py:160` runs **`curl`**, a program, to fetch link previews. Here is that function:

# %%
nb.show(ws / "shortly.py", 155, 169)

# %% [markdown]
# Note the `except (FileNotFoundError, …): return ""`: when `curl` is missing, the preview does not fail loudly.
# It just comes back empty.
#
# ## See it break
#
# Your machine probably has `curl`, so the app works here. A slim production image often does not. Let's
# simulate that machine: start Shortly with a `PATH` on which no program can be found, serve a small test page
# (its title is *factorlab test page*), and shorten a link to it.

# %%
with TestPage() as page, nb.App(ws, env={"PATH": "/nonexistent"}) as app:
    created = app.post("/api/links", json={"url": page.url("/hello")})
created

# %% [markdown]
# `HTTP 201`, everything looks fine… but `"title"` is empty. No error, no log line: the app silently lost a
# feature because the machine lacked a program nobody declared. That is the kind of bug that shows up only in
# production.
#
# ## Checkpoint: where you start
#
# Each factor comes with checks. `nb.checkpoint` runs them on a folder and shows what they saw. Expect red:

# %%
nb.checkpoint("02", ws)

# %% [markdown]
# The fourth check, `clean_environment`, is the strictest: it builds a brand-new virtual environment from
# `requirements.txt` alone, puts nothing else on `PATH`, and starts the app there. Only what you declare exists.
# The fifth reads the runbook, `OPS.md`, which still tells whoever sets up a server to install `curl`.
#
# ## Step 1: isolation is an empty box
#
# A virtual environment (*venv*) is Python's isolation tool: a private folder of packages, separate from the
# system's. Let's make one in the workspace and try to import Flask inside it:

# %%
nb.sh("python3 -m venv --without-pip .venv && .venv/bin/python -c 'import flask'", ws)

# %% [markdown]
# `No module named 'flask'` (and exit code 1). That is isolation working as intended: the venv does not see
# packages from the system, so anything the app needs must be installed into it on purpose, from a list.
# (`--without-pip` only makes this demo quick; normally you keep pip to install things.) The `.venv/` folder is
# local to each machine and never committed, so add it to `.gitignore`:

# %%
nb.replace(ws / ".gitignore", "__pycache__/\n.env\n", "__pycache__/\n.env\n.venv/\n")

# %% [markdown]
# ## Step 2: declaration is the list
#
# The list is `requirements.txt`: one package per line, **pinned** with `==`. To find the version you use today,
# run `pip freeze` in a terminal; the course pins Flask 3.1.3.

# %%
nb.write(ws / "requirements.txt", "Flask==3.1.3\n")

# %% [markdown]
# ### Why pin?
#
# `Flask` alone, or `Flask>=3`, means "whatever is newest the day the server is built". Build staging on Monday
# and production on Thursday, and they may run different Flask versions from the same commit. A rollback would
# roll back your code but not the libraries. With `==`, every build of a commit installs exactly the same
# versions, and upgrading becomes a visible, reviewable change to `requirements.txt`.
#
# (Flask brings its own dependencies, such as Werkzeug. To pin those as well, teams keep a *lock file*, produced by
# `pip freeze` or `pip-compile`. This course pins what the app imports directly, which is what the checks ask for.)
#
# The deploy script must now install from the manifest into the venv, and run the app with the venv's Python:

# %%
nb.replace(ws / "deploy.sh", "git pull\n", "git pull\n.venv/bin/pip install --quiet -r requirements.txt\n")
nb.replace(ws / "deploy.sh", "nohup python3 shortly.py", "nohup .venv/bin/python shortly.py")

# %% [markdown]
# The runbook is part of the codebase too: it must say how a box gets its packages now.

# %%
nb.replace(ws / "OPS.md", """\
Nothing to pip install, everything comes from apt:

    apt-get install python3 python3-flask curl
""", """\
Python 3.11 and curl come from apt. Everything else is declared, with exact
versions, in `requirements.txt` and installed into a virtualenv in the app folder:

    apt-get install python3 python3-venv curl
    python3 -m venv .venv
    .venv/bin/pip install -r requirements.txt
""")
nb.replace(ws / "OPS.md", """\
`deploy.sh` pulls, switches DEBUG off in `shortly.py`, kills the process in
`shortly.pid` and starts a new one in the background.
""", """\
`deploy.sh` pulls, installs `requirements.txt` into `.venv`, switches DEBUG off
in `shortly.py`, kills the process in `shortly.pid` and starts a new one in the
background.
""")

# %% [markdown]
# ## Checkpoint: halfway
#
# This run builds a clean venv from your `requirements.txt` the first time, which takes a few seconds.

# %%
nb.checkpoint("02", ws)

# %% [markdown]
# Two green, three red. Flask is declared and pinned, but `curl` is still there, and in the clean environment
# (no `curl` on `PATH`) the preview title comes back empty, exactly as in the demo above. And the runbook still
# asks for `curl`.
#
# ## Where the walkthrough leaves you
#
# **This is where the exercise `exercises/02_dependencies` starts**: your workspace now holds the code it starts
# from. The exercise adds only `TODO` notes, the part left for you. A quick comparison, with those notes and
# blank lines left out:

# %%
nb.compare_with_starter(ws, "02")

# %% [markdown]
# ## Quiz

# %%
nb.quiz("Your requirements.txt says Flask>=3.0 (no pin). What can go wrong?",
        ["Nothing: pip always installs the same version",
         "Two servers built from the same commit on different days can run different Flask versions",
         "pip refuses to install it"],
        answer=1,
        why="A range resolves to whatever is newest at install time; == makes every build of a commit identical.")

# %%
nb.quiz("Which one is isolation, and which one is declaration?",
        ["requirements.txt is isolation, the venv is declaration",
         "The venv is isolation, requirements.txt is declaration",
         "Both are declaration"],
        answer=1,
        why="The venv keeps the system's packages out; requirements.txt lists exactly what goes in.")

# %%
nb.quiz("Why replace curl with requests instead of adding curl to requirements.txt?",
        ["requirements.txt declares Python packages only: curl comes from the operating system, which may lack it",
         "requests is faster than curl",
         "curl cannot send an Authorization header"],
        answer=0,
        why="A dependency the manifest cannot declare is one a fresh deploy may not have.")

# %% [markdown]
# ## Your turn: the exercise
#
# Now do the same in the exercise folder, **`exercises/02_dependencies`**. It is the app as it was at the
# *halfway* checkpoint: Flask is declared, and `TODO` comments mark what is left:

# %%
nb.todos("02")

# %% [markdown]
# What is left is the third step: a dependency that `requirements.txt` cannot declare has to go.
#
# - `requirements.txt` declares Python packages only, and `curl` is a program of the operating system: a fresh
#   deploy may not have it, and nothing would say so until the first title came back empty. The `requests`
#   library does the same job and can be declared, pinned like Flask.
# - The preview must keep what the `curl` call did: the same `Authorization` header, the same 5-second limit,
#   and an empty title (not a crash) when the page cannot be fetched.
# - The runbook is part of the codebase: it must stop asking for `curl`, and say how the app's packages get
#   installed now.
#
# The checks below (and the checkpoints above) tell you when the app no longer needs anything the manifest does
# not declare. Edit the files in JupyterLab's file browser or your editor, then check your work, here or in a
# terminal:
#
# - `factorlab check 02` runs the same checks as the checkpoints above
# - `factorlab check 02 --runner docker` runs them with the app in a container
# - `factorlab hint 02` reveals one hint at a time
# - `factorlab solution 02` shows the difference to the reference solution, once your check passes
#
# The container gives the same verdict, and shows your app as production would run it: the image is
# built from your `requirements.txt` and nothing else, so a package you forgot to declare is missing
# there too. It needs Docker.
# Where Docker runs, the button lets you pick *in containers (docker)* as well; on Binder there is
# no Docker, so it says so and checks locally.
#
# Or press the button:

# %%
nb.check_button("02")

# %% [markdown]
# Next: **[Factor III — Config](03_config.ipynb)**, where the secrets move out of the code.
#
# Finally, stop anything this notebook started:

# %%
nb.stop_all()
