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
# # Factor III — Config
#
# **What you will learn**
#
# - what counts as *config*: everything that changes from one deploy to another
# - how to read it from environment variables with Flask's `from_prefixed_env`
# - why an app should refuse to start when required config is missing (*fail fast*)
# - how `.env.example` documents the config without leaking it
# - how the same code runs as two deploys that behave differently
#
# ⏱ About 35 minutes. The factor on 12factor.net: [III. Config](https://12factor.net/config).
#
# You start where notebook 02 ended: `solutions/02_dependencies`.

# %%
from factorlab import notebook as nb
from factorlab.runners import AppFailed
from factorlab.testpage import TestPage

# %% [markdown]
# ## The idea
#
# *Config* is whatever differs between deploys of the same code: credentials, the location of the database,
# switches like debug mode. It is not the app's internal wiring (routes, the schema, which library renders
# HTML): that is the same everywhere and belongs in the code.
#
# The twelve-factor way is to keep config in **environment variables**: every operating system and language
# has them, they are set per deploy, and they are hard to commit by accident. Each variable stands on its own,
# rather than being bundled into named groups like "production" or "staging" that multiply as deploys do.
#
# A quick test: could you publish the repository today without leaking a single credential? Let's see.

# %%
ws = nb.workspace("03")

# %% [markdown]
# ## The symptom: settings baked into the code

# %%
nb.grep(ws, r"SECRET|TOKEN|DEBUG|gethostname|DATABASE")

# %% [markdown]
# The settings block of `shortly.py`:

# %%
nb.show(ws / "shortly.py", 24, 41)

# %% [markdown]
# What is wrong here:
#
# - **Secrets in the source.** The secret key that signs session cookies, the preview token and the admin token
#   are in the code, and so in every clone and in git history forever. (These ones are fake, made up for the
#   course, and protect nothing. Real ones would have to be revoked and replaced once committed.)
# - **Settings that cannot vary.** The database path, debug mode and the short-URL base are fixed.
# - **A hostname switch.** On a machine whose name starts with `prod-`, a whole other set of values applies.
#   Name a staging box `prod-test` and it writes to the production path. Add a third kind of deploy and you
#   need another branch.
# - `deploy.sh` even rewrites the code with `sed` to turn debug off.
#
# ## See it: two deploys from one folder
#
# Suppose you want two deploys, *blue* and *green*, from the same code, each with its own secret key, database
# file and preview token. The twelve-factor way is to give each process its own environment. Here is a small
# experiment that does that, creates one link on each deploy, and reports which links each deploy knows about
# and which preview token it sent. (The `fake-…` values are placeholders too.)

# %%
BLUE = {"SHORTLY_SECRET_KEY": "fake-blue-key", "SHORTLY_DATABASE": "blue.db",
        "SHORTLY_PREVIEW_TOKEN": "fake-blue-token"}
GREEN = {"SHORTLY_SECRET_KEY": "fake-green-key", "SHORTLY_DATABASE": "green.db",
         "SHORTLY_PREVIEW_TOKEN": "fake-green-token"}


def two_deploys(folder=ws):
    """Run blue and green side by side from a folder (the workspace); one new link each; who knows which link?"""
    with TestPage() as page, nb.App(folder, env=BLUE) as blue, nb.App(folder, env=GREEN) as green:
        deploys = {"blue": blue, "green": green}
        codes = {name: app.post("/api/links", json={"url": page.url(f"/{name}")}).json()["code"]
                 for name, app in deploys.items()}
        for name, app in deploys.items():
            known = [f"{owner}'s link" for owner, code in codes.items()
                     if app.get(f"/api/links/{code}").status_code == 200]
            token = page.headers_for(f"/{name}")[0].get("Authorization")
            print(f"{name:>5} knows {' and '.join(known) or 'no link'}; its preview request sent {token!r}")


# %%
two_deploys()

# %% [markdown]
# The environment was ignored. Both deploys share one database (each knows the other's link), both sent the
# hard-coded preview token, and both signed cookies with the same key. The files in the workspace tell the same
# story: there is a `shortly.db`, but no `blue.db` or `green.db`.

# %%
nb.files(ws)

# %% [markdown]
# And without any configuration at all? The app starts happily with its built-in secret:

# %%
with nb.App(ws) as app:
    print(app.get("/api/recent"))

# %% [markdown]
# ## Checkpoint: where you start

# %%
nb.checkpoint("03", ws)

# %% [markdown]
# ## Step 1: read config from the environment, and fail fast
#
# Flask can load every variable with a given prefix into `app.config`:
# `app.config.from_prefixed_env("SHORTLY")` turns `SHORTLY_SECRET_KEY` into `app.config["SECRET_KEY"]`,
# `SHORTLY_DATABASE` into `app.config["DATABASE"]`, and so on. By default it reads each value as JSON, so
# `SHORTLY_ADMIN_TOKEN=1234` would arrive as the number `1234` and `SHORTLY_PREVIEW_TOKEN=null` as `None`: a
# token would stop being text. Only `SHORTLY_DEBUG` needs converting, from `true` or `false` to a boolean, so
# Shortly hands `from_prefixed_env` its own small parser, `env_value`, with `loads=`: it reads `true` and
# `false` as booleans and keeps everything else as text.
#
# The secret key has no sensible default, so if it is missing, the app should stop at once and name what is
# missing. A crash at start-up, in front of the person deploying, beats a server that runs with the wrong key.
# Create the app first, then check:

# %%
nb.replace(ws / "shortly.py", '''\
# The secrets below are FAKE: made up for the factorlab course, they protect nothing.
# ---------------------------------------------------------------------------
SECRET_KEY = "FAKE-legacy-secret-key-for-the-course-only"
''', '''\
# Configuration comes from SHORTLY_* environment variables: SHORTLY_SECRET_KEY -> app.config["SECRET_KEY"].
# The secrets below are FAKE: made up for the factorlab course, they protect nothing.
# ---------------------------------------------------------------------------

def env_value(text):
    """Read "true"/"false" as booleans and keep everything else as text (a token of digits stays a token)."""
    return {"true": True, "false": False}.get(text.strip().lower(), text)


app = Flask(__name__)
app.config.from_prefixed_env("SHORTLY", loads=env_value)
if not app.config.get("SECRET_KEY"):
    print("shortly: SHORTLY_SECRET_KEY is not set; set it in the environment and start again", file=sys.stderr)
    raise SystemExit(1)

''')

# %% [markdown]
# The old lines that created the app further down must go, or they would overwrite the key with the one in the
# code:

# %%
nb.replace(ws / "shortly.py", """\
app = Flask(__name__)
app.secret_key = SECRET_KEY

""", "")

# %% [markdown]
# Try to start it without the key:

# %%
try:
    nb.App(ws)
except AppFailed as failure:
    print(failure)

# %% [markdown]
# It refuses, with a non-zero exit code and a message that says what to do. With a key it starts:

# %%
with nb.App(ws, env={"SHORTLY_SECRET_KEY": "fake-dev-key"}) as app:
    print(app.get("/api/recent"))

# %% [markdown]
# ## Step 2: document the config in `.env.example`
#
# Environment variables are invisible: a newcomer cannot guess which ones the app reads. Commit a
# `.env.example` that lists them, with placeholders, never real values. On each machine, people copy it to
# `.env` and fill it in; `.env` stays out of git (the `.gitignore` already lists it):

# %%
nb.write(ws / ".env.example", """\
# Shortly's configuration, one SHORTLY_* variable each. Copy this file to .env and
# fill it in; .env is never committed. The values here are placeholders, not secrets.

# Required: signs the session cookie. Any long random string, e.g. the output of
#   python3 -c "import secrets; print(secrets.token_hex(32))"
SHORTLY_SECRET_KEY=change-me
""")

# %% [markdown]
# `deploy.sh` loads the box's `.env` into the environment before it starts the app (`set -a` exports every
# variable the file sets):

# %%
nb.replace(ws / "deploy.sh", """\
sed -i 's/^DEBUG = True/DEBUG = False/' shortly.py
""", """\
sed -i 's/^DEBUG = True/DEBUG = False/' shortly.py

# configuration of this box (SHORTLY_SECRET_KEY, ...), see .env.example
set -a
. ./.env
set +a
""")

# %% [markdown]
# And the runbook says where a box's configuration lives:

# %%
nb.replace(ws / "OPS.md", """\
    .venv/bin/pip install -r requirements.txt

## Deploying / restarting
""", """\
    .venv/bin/pip install -r requirements.txt

## Configuration

Each box keeps its configuration in `.env` in the app folder (never in git).
Start from `.env.example`; `SHORTLY_SECRET_KEY` is required, the app refuses to
start without it. `deploy.sh` loads `.env` before starting the app.

## Deploying / restarting
""")

# %% [markdown]
# ## Checkpoint: halfway

# %%
nb.checkpoint("03", ws)

# %% [markdown]
# The app fails fast, and `.env.example` works as a starting point. But the tokens are still in the code, the
# database path ignores the environment, the hostname switch is still there, and `deploy.sh` still edits the
# code to turn debug mode off.
#
# ## Where the walkthrough leaves you
#
# **This is where the exercise `exercises/03_config` starts**: your workspace now holds the code it starts from.
# The exercise adds only `TODO` notes, the part left for you. A quick comparison, with those notes and blank
# lines left out:

# %%
nb.compare_with_starter(ws, "03")

# %% [markdown]
# ## Quiz

# %%
nb.quiz("Which of these is config, in the twelve-factor sense?",
        ["The path of the database file", "The URL routes of the app", "The SQL schema of the links table"],
        answer=0,
        why="It changes from one deploy to another; routes and schema are the same in every deploy.")

# %%
nb.quiz("The app is started without SHORTLY_SECRET_KEY. What should it do?",
        ["Use a built-in default key so it still works",
         "Generate a random key and carry on",
         "Exit at once with a non-zero code and a message naming SHORTLY_SECRET_KEY"],
        answer=2,
        why="A built-in default is a secret in the code; a random key breaks every cookie on restart. "
            "Failing fast shows the problem to whoever deploys.")

# %%
nb.quiz("Which file belongs in git?",
        [".env, so every server has the same settings",
         ".env.example, with placeholders; each machine keeps its own .env",
         "Neither: config is never written down"],
        answer=1,
        why="The example documents every variable; the real values stay on each machine, out of the repository.")

# %% [markdown]
# ## Your turn: the exercise
#
# Now do it yourself in **`exercises/03_config`**. The app there already fails fast on a missing
# `SHORTLY_SECRET_KEY` and has a first `.env.example`; `TODO` comments mark the rest:

# %%
nb.todos("03")

# %% [markdown]
# What is left, and how to think about it:
#
# - **Every other setting comes from the environment.** The tokens, debug mode and the database path become
#   config values. The tokens are optional: without a preview token, previews go out with no `Authorization`
#   header; without an admin token, the purge endpoint refuses everyone. Where a token is used, a missing one
#   must not turn into the text `"None"`.
# - **No more hostname switch.** It chose four settings at once from the machine's name. Debug mode and the
#   database get their own variables. The short-URL base needs none: the app can build short links from the
#   address it was reached at (`request.host_url`). The log level gets a variable of its own,
#   `SHORTLY_LOG_LEVEL`. Not `SHORTLY_ENV=production`: a variable that names the deploy is the hostname switch
#   again under another name, one guess choosing several settings at once, and every new deploy (staging, a
#   colleague's laptop, a test run) would need its own branch in the code.
# - **Document every variable** in `.env.example`, each with a comment and a harmless placeholder. `deploy.sh`
#   stops editing the code to switch debug off (it can set `SHORTLY_DEBUG=false` in the box's `.env` instead),
#   and `OPS.md` says where each setting lives now.
#
# Once your check passes, rerun the blue/green experiment from the start of this notebook on your own folder,
# `two_deploys(nb.course().root / "exercises/03_config")` in a new cell: each deploy should know only its own
# link and send its own preview token, with nothing in the code changed between them.
#
# When you are done, check your work here or in a terminal:
#
# - `factorlab check 03` runs the same checks as the checkpoints above
# - `factorlab check 03 --runner docker` runs them with the app in a container
# - `factorlab hint 03` reveals one hint at a time
# - `factorlab solution 03` shows the difference to the reference solution, once your check passes
#
# The container gives the same verdict, and runs your app as production would: from an image built
# with your `requirements.txt` only, with its config coming in as environment variables. It needs Docker.
# Where Docker runs, the button lets you pick *in containers (docker)* as well; on Binder there is
# no Docker, so it says so and checks locally.
#
# Or press the button:

# %%
nb.check_button("03")

# %% [markdown]
# Next: **[Factor IV — Backing services](04_backing_services.ipynb)**, where the database becomes a resource you
# attach by URL.
#
# Finally, stop anything this notebook started:

# %%
nb.stop_all()
