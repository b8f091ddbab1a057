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
# # Factor I — Codebase
#
# **One codebase tracked in revision control, many deploys.** · about **25 minutes** · [12factor.net/codebase](https://12factor.net/codebase)
#
# What you will learn:
#
# - what *one codebase, many deploys* means, and what a deploy is;
# - how to spot a copy of the app kept for one environment, and fold it back into the one codebase;
# - how to put the app under git, so every deploy can say which revision it runs;
# - how the course's checks prove it.

# %% [markdown]
# ## The idea
#
# An app has **one codebase**, kept in version control (here: git). A **deploy** is one running
# instance of that app: your laptop, a colleague's laptop, staging, production. Every deploy runs
# the same codebase. Deploys may be at different commits (production usually lags a little behind
# your laptop), but they never run *different code*. What legitimately differs between deploys is
# their configuration, which is factor III's business.
#
# Two things break the rule:
#
# - **a copy of the app per environment**, edited by hand: fixes land in one copy and not the
#   others, and the copies drift apart. That is Shortly's sin.
# - **one repository holding several apps** that share code: the shared code should become a
#   library that each app declares as a dependency (factor II).
#
# [12factor.net/codebase](https://12factor.net/codebase) says it with a picture; have a look.

# %%
from factorlab import notebook as nb

# %% [markdown]
# ## The symptom
#
# Start from a fresh copy of the legacy app in `workspace/01_codebase`:

# %%
ws = nb.workspace("01")

# %%
nb.files(ws)

# %% [markdown]
# Two apps in one folder? Who mentions `shortly_prod`?

# %%
nb.grep(ws, "shortly_prod")

# %% [markdown]
# So production runs its own copy, and prod-only fixes are edited straight into it on the server,
# to be copied back "some day". Compare the two files:

# %%
nb.diff(ws / "shortly.py", ws / "shortly_prod.py")

# %% [markdown]
# Two kinds of difference:
#
# 1. **Settings.** The copy hard-codes production's `DEBUG`, database path, log level and short-URL
#    domain, where `shortly.py` guesses them from the hostname. These are config, not code:
#    factor III will move them into environment variables.
# 2. **Code.** At the end of the diff: a `HOTFIX` in `create_link` that exists *only* in production.
#    Links pasted from spreadsheets arrive with spaces around them and an upper-case `HTTPS://`;
#    production cleans them up, every other copy of the app rejects them.
#
# That is drift: one app, two behaviours, chosen by which file a host happens to run.
# See it live. Start the development app (and, as in notebook 00, a small local page to link to):

# %%
from contextlib import ExitStack
from factorlab.testpage import TestPage

cleanup = ExitStack()  # the last cell closes it
page = cleanup.enter_context(TestPage())
app = nb.App(ws)

# %% [markdown]
# Now paste a link the way a spreadsheet hands it over:

# %%
pasted = "  " + page.url("/q3-report").replace("http://", "HTTP://") + "  "
app.post("/api/links", json={"url": pasted})

# %% [markdown]
# Rejected. Production, running its own copy, would have accepted the very same request. A bug
# report from a user would not reproduce on any laptop, and the fix a colleague writes for it
# would never reach production unless somebody remembers to copy it over.
#
# (You cannot even run the production copy here to compare: it opens `/var/lib/shortly/shortly.db`,
# which exists only on the production server.)

# %%
app.stop()

# %% [markdown]
# ### Checkpoint: before
#
# Run factor I's checks on the workspace:

# %%
nb.checkpoint("01", ws)

# %% [markdown]
# All four fail. `workspace/` sits inside the course's own repository, which ignores it, so nothing
# tracks this code, and nothing would keep the database, the log and the caches the app writes while it
# runs out of a repository either; `shortly_prod.py` is a copy of the app for one environment; and the last
# check pastes an untidy link into `shortly.py`, which rejects it just as you saw above.
#
# ## The refactor
#
# ### Step 1: fold the hot-fix into `shortly.py`
#
# The fix is good; it just lives in the wrong place. Move it into the one codebase, with a
# comment that says why it is there:

# %%
nb.replace(ws / "shortly.py",
    "def create_link(url, ttl_seconds=None):\n",
    "def create_link(url, ttl_seconds=None):\n"
    '    # Pasted links often carry spaces or "HTTPS://": accept them.\n'
    "    if isinstance(url, str):\n"
    "        url = url.strip()\n"
    '        scheme, sep, rest = url.partition("://")\n'
    "        if sep:\n"
    "            url = scheme.lower() + sep + rest\n")

# %% [markdown]
# Paste the same link into the development app again:

# %%
# NBVAL_IGNORE_OUTPUT
# (why: the legacy app fetches titles with curl, so without curl the title is empty: factor II's sin)
app = nb.App(ws)
app.post("/api/links", json={"url": pasted})

# %% [markdown]
# Accepted, with the URL cleaned up and its title fetched. Every deploy that runs `shortly.py`
# now behaves like production did.

# %%
app.stop()

# %% [markdown]
# ### Step 2: delete the copy
#
# Everything `shortly_prod.py` had is now either in `shortly.py` (the hot-fix) or is a setting
# (`shortly.py` already picks production's settings on `prod-*` hosts).

# %%
nb.delete(ws / "shortly_prod.py")

# %% [markdown]
# One setting did not make it across: the copy builds short URLs on `https://shortly.example.com/`.
# Leave it for now; carrying it over is part of your exercise.
#
# ### Step 3: every host runs the same file
#
# `deploy.sh` still picks a copy per host. Make it start `shortly.py` everywhere:

# %%
nb.replace(ws / "deploy.sh",
    'APP=shortly.py\ncase "$(hostname)" in\n'
    "    prod-*) APP=shortly_prod.py ;;  # prod has its own copy, see OPS.md\nesac\n",
    "APP=shortly.py  # every host runs the same code\n")

# %% [markdown]
# ### Step 4: decide what is *not* code
#
# The app wrote a database and a log file into the folder while it ran:

# %%
nb.files(ws)

# %% [markdown]
# Those are data, not code, and they differ on every machine: keep them out of the repository, and the
# old logs too (`shortly.log.1` and so on: the app rotates its log once it grows).
# The same goes for Python's caches and a local `.env` file (you will meet it in factor III).

# %%
nb.write(ws / ".gitignore", """\
# what the app writes while it runs: data, not code
shortly.db
shortly.log
shortly.log.*
shortly.pid
# Python caches and local settings
__pycache__/
*.pyc
.env
""")

# %% [markdown]
# ### Step 5: one repository
#
# Put the folder under git and make the first commit. (Outside a notebook you would simply type
# `git init`, `git add -A` and `git commit`; the `-c` options give the commit an author without
# touching your own git settings.) `nb.sh` prints whatever the command printed (`-q` keeps git
# quiet) and returns its exit code: `0` means success.

# %%
nb.sh("git init -q -b main && git add -A && "
      "git -c user.name=Learner -c user.email=learner@example.invalid "
      "commit -q -m 'One codebase for every deploy'", ws)

# %%
nb.sh("git log --format=%s", ws)

# %% [markdown]
# What does git track? The code and its docs, and none of the data the app wrote:

# %%
nb.sh("git ls-files", ws)

# %% [markdown]
# From now on, "which version runs in production?" has an answer: a commit. A fix made on a laptop
# reaches production the ordinary way, by being committed and deployed.
#
# ### Checkpoint: after

# %%
nb.checkpoint("01", ws)

# %% [markdown]
# Two pass: the code lives in a repository of its own, and that repository holds code, not what a run
# writes. The other two fail on exactly what this walkthrough left for you:
#
# - `single_codebase` reads the runbook too: `OPS.md` still tells operators that production runs
#   `shortly_prod.py`, a copy that no longer exists.
# - `prod_fix_kept` got past the hot-fix (the one codebase now accepts a pasted link with spaces and an
#   upper-case scheme, as production's copy did; deleting `shortly_prod.py` without porting it would have
#   failed right there) and stopped at the setting not carried over: short URLs on the production domain.
#
# Both are part of the exercise below.
#
# Notice what did *not* change: `shortly.py` still guesses its settings from the
# hostname. One codebase, yes, but the code still knows which environment it is in. Factor III
# fixes that by reading each setting from the environment.
#
# ## Quiz

# %%
nb.quiz("Production needs a different database path from your laptop. What do you do?",
        ["Copy shortly.py to shortly_prod.py and change the path in the copy",
         "Keep a long-lived 'production' git branch with the path changed",
         "Keep one codebase and let each deploy supply the path as configuration",
         "Edit the path on the server after each deploy"],
        answer=2,
        why="A deploy differs from another by its config, never by its code (factor III shows how).")

# %%
nb.quiz("Shortly runs on your laptop, a colleague's laptop, staging and production. How many codebases?",
        ["One codebase, four deploys", "Two: one for development, one for production",
         "Four: one per deploy", "It depends on how many servers production has"],
        answer=0,
        why="Every deploy runs the same codebase, possibly at a different commit.")

# %%
nb.quiz("A new analytics app needs Shortly's link-code generator. Twelve-factor suggests:",
        ["Put the analytics app in Shortly's repository so it can import the code",
         "Copy the generator's file into the analytics app",
         "Make the generator a library that both apps declare as a dependency"],
        answer=2,
        why="Shared code becomes a library, declared and pinned like any other dependency (factor II).")

# %% [markdown]
# ## Your turn: the exercise
#
# `exercises/01_codebase/` is the legacy app again, with `# TODO:` markers for the whole job:

# %%
nb.todos("01")

# %% [markdown]
# Do what the walkthrough did, plus what it left out: carry production's short-URL domain into
# `shortly.py` (next to the other production settings), and update `OPS.md` so the runbook tells
# the truth. Fill in its `.gitignore` too. Version control works a little differently there: in a
# clone of this course, `exercises/01_codebase` is already tracked by the course's own git
# repository, so commit your work there as usual. A copy of your own (like this notebook's
# workspace) needs `git init`, `git add -A` and a first commit, as in step 5.
#
# Check your work from a terminal in the course folder:
#
# ```
# factorlab check 01                                  # checks exercises/01_codebase, records your progress
# factorlab check 01 --path workspace/01_codebase     # any other folder: shows results, records nothing
# factorlab check 01 --runner docker                  # the same check, with the app in a container (needs Docker)
# factorlab hint 01                                   # stuck? one more hint per call
# factorlab solution 01                               # once exercises/01_codebase passes: compare with the reference
# ```
#
# or with the button below, which checks `exercises/01_codebase` too. Only a check of that folder counts
# as progress (and unlocks `factorlab solution 01`); checking this notebook's workspace does not.
#
# `--runner docker` gives the same verdict, but runs the app the way production would: from an image
# built out of the folder, with only the packages its `requirements.txt` declares. Factor I's folder has
# no `requirements.txt` yet, so its image gets what the legacy server had installed by hand: Flask.
# Where Docker runs, the button lets you pick *in containers (docker)* as well; on Binder there is
# no Docker, so it says so and checks locally.

# %%
nb.check_button("01")

# %% [markdown]
# Next: **[Factor II — Dependencies](02_dependencies.ipynb)**, where Shortly turns out to need more than
# it says.
#
# The last cell stops everything this notebook started.

# %%
cleanup.close()
nb.stop_all()
