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
# # Factor V — Build, release, run
#
# **What you will learn**
#
# - the three stages that turn code into a running app: *build*, *release* and *run*, and why they stay apart
# - what a build is (the code, made ready to run and named by its content) and what a release is (a build plus
#   the config of one deploy, numbered, never changed)
# - how to write a small release tool, `release.py`: builds, numbered read-only releases, a `current` pointer
# - how a running process tells which release it comes from, and why a rollback is cheap
# - why a deploy script must never edit files on the box
#
# ⏱ About 70 minutes. The factor on 12factor.net: [V. Build, release, run](https://12factor.net/build-release-run).
#
# You start where notebook 04 ended: `solutions/04_backing_services`.

# %%
import os
import shutil
import stat

from factorlab import notebook as nb

# %% [markdown]
# ## The idea
#
# Code becomes a running app in three stages, and a twelve-factor app keeps them strictly apart:
#
# 1. **Build.** One revision of the code is turned into an *artifact*, something that can run: files gathered,
#    dependencies fetched, assets compiled. For Shortly, a build is a folder of its files, named after their
#    content, so the same code always gives the same build.
# 2. **Release.** A build meets the config of one deploy (a box's `.env`, from factor III). The pair gets a number,
#    `v1`, `v2`, …, and from then on it never changes. New code or a new config makes a new release.
# 3. **Run.** The app starts from one release, with that release's config. Nothing else happens at this stage:
#    no building, no editing.
#
# What this buys you: every running process comes from exactly one release, so "what is running on prod?" has a
# precise answer, `v7`, which is one build plus one config. Each release can be run again as it was made, and
# going back after a bad deploy, a *rollback*, is simply running the release before the current one. And since
# nothing is edited at run time, a fix made by hand on a box cannot drift away from the code in git: a fix is a
# commit, then a new build and a new release.
#
# The stages also differ in who is there. A build runs when a developer deploys, and may fail in plenty of ways,
# with someone watching. The run stage can happen at any hour with nobody around (a reboot, a crashed process
# started again), so it should have as few moving parts as possible.
#
# ![Build, release, run: code becomes a build; the build plus a config becomes a numbered, read-only release; the release that current points at runs](images/build-release-run.svg)
#
# The whole notebook is in this picture. Releases `v2` and `v3` share a build and differ in their config.
# `current` names the release that runs, and a rollback moves it one release back. Ids only grow: after a
# rollback to `v2`, the next release is still `v4`.

# %%
ws = nb.workspace("05")
deploy = ws.parent / "05-deploy"  # where release.py will keep the builds, the releases and the app's data
copies = ws.parent / "05-copies"  # writable copies of releases, to serve them (see "Run a release")


def remove(folder):
    """Delete a folder, releases and all: they are read-only, so first give write permission back."""
    if folder.exists():
        for path in [folder, *folder.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(folder)


remove(deploy)
remove(copies)

# %% [markdown]
# ## The symptom: a deploy that edits the box
#
# This is how Shortly reaches prod today: `deploy.sh`, run on the box, in the folder the app runs from.

# %%
nb.show(ws / "deploy.sh")

# %% [markdown]
# Build, release and run are all mixed up in one folder here:
#
# - `git pull` replaces the code **under the app that is running**. Which revision served the request that
#   failed at 10:02? The folder only knows what is there now.
# - `sed -i` **edits the config in place**. Yesterday's settings are gone, written over, and nothing records
#   which settings went with which code.
# - The restart starts whatever the folder holds at that moment. Going back means another `git pull` of an
#   older revision and the same dance, by hand, under pressure.
#
# There is a second problem, in the app itself: it writes files next to its own code. The folder before Shortly
# runs, and after a short run:

# %%
DEV = {"SHORTLY_SECRET_KEY": "fake-dev-key"}

nb.files(ws)
print("---")
with nb.App(ws, env=DEV) as app:
    app.get("/api/recent")
nb.files(ws)

# %% [markdown]
# `shortly.db` is the default database, `sqlite:///shortly.db`, a file in the *working directory*, which happens
# to be the code folder here. `shortly.log` is different: Shortly always writes it next to its code, wherever it
# was started from. So does `--daemon` with `shortly.pid` (the servers run it that way):

# %%
nb.grep(ws, r"\bHERE\b")

# %% [markdown]
# A release must never change, so its folder will be read-only. An app that writes next to its code cannot run
# from one. Moving these two files out is part of your exercise; the walkthrough leaves them where they are.
#
# ## Checkpoint: where you start

# %%
nb.checkpoint("05", ws)

# %% [markdown]
# All six checks fail. Four of them want a tool they can drive, `release.py`, with a command per stage; the fifth
# reads `deploy.sh` and stops at the `sed -i` on line 10; the sixth reads `OPS.md`, which says nothing yet about
# checking a release or rolling one back. Time to write the tool.
#
# ## Step 1: the frame of `release.py`
#
# `release.py` is one file, standard library only, so that it runs on a box where nothing else is installed yet.
# Everything it makes lives in one *deploy root*: `--root DIR`, or `$SHORTLY_DEPLOY_ROOT`, else a folder
# `shortly-deploy` next to the app's folder. Its docstring is the plan: six commands, built here one at a time
# (two of them are left for you).
#
# The first version has no command yet: `fail()` ends the tool with a clear message instead of a traceback,
# `deploy_root()` finds the root, and `main()` reads the command line. Each command will be a function that
# takes the parsed arguments.

# %%
nb.write(ws / "release.py", '''\
"""Build, release and run Shortly: three separate stages, one command each.

    python release.py build                        copy the code into builds/<id>: same code, same id
    python release.py release BUILD --config FILE  a build plus a config: a new, numbered, read-only release
    python release.py list                         the releases, oldest first
    python release.py verify [ID]                  is the release (default: current) still as it was made?
    python release.py rollback                     make the release before the current one current again
    python release.py run [ID]                     run a release (default: current)

Everything lives under one deploy root: --root DIR, else $SHORTLY_DEPLOY_ROOT, else ../shortly-deploy
next to this folder.

    builds/<id>/     the app's files, one folder per distinct codebase
    releases/vN/     a build's files and its release.env; read-only
    current          a symlink to the release that runs
    var/             the working directory of the running app: SQLite file, log file, pid file

Standard library only: this tool has to work on a box where nothing is installed yet.
"""
import argparse
import hashlib
import os
import re
import shutil
import stat
import sys
from fnmatch import fnmatch
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
NEVER_BUILT = {".git", ".env", ".venv", "venv", "__pycache__"}  # local config and tool folders


def fail(message):
    raise SystemExit(f"release.py: {message}")


def deploy_root(args):
    return Path(args.root or os.environ.get("SHORTLY_DEPLOY_ROOT") or APP_DIR.parent / "shortly-deploy").resolve()


def main(argv=None):
    # --root is accepted before or after the command: release.py --root DIR build, release.py build --root DIR
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=argparse.SUPPRESS,
                        help="the deploy root (default: $SHORTLY_DEPLOY_ROOT, else ../shortly-deploy)")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[common])
    commands = parser.add_subparsers(dest="command", required=True)
    args = parser.parse_args(argv)
    args.root = getattr(args, "root", None)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
''')

# %% [markdown]
# ## Step 2: build
#
# What goes into a build? The codebase, as git would track it: whatever `.gitignore` lists stays out (the SQLite
# file, the log, `.env`), and so do tool folders such as `.venv`. The config of a box is never part of a build.
#
# The build's id comes from its content: a sha256 over the name and the bytes of every file, in a fixed order.
# The same code gives the same id on any machine, and a build that exists already is not made again. The files
# are copied into a temporary folder that is renamed at the end, so a build appears complete or not at all.
#
# (The dependencies stay out of this build: each box installs the pinned `requirements.txt` into its own `.venv`,
# as in factor II. A container image, later in the course, is a build that carries them too.)

# %%
nb.replace(ws / "release.py", '''\
def main(argv=None):
''', r'''# -- build --------------------------------------------------------------------------------------------------

def codebase_files(root):
    """The app's files as git would track them: what .gitignore lists, .env and tool folders left out."""
    ignored = set(NEVER_BUILT)
    gitignore = APP_DIR / ".gitignore"
    if gitignore.is_file():
        ignored |= {line.strip().rstrip("/") for line in gitignore.read_text().splitlines()
                    if line.strip() and not line.startswith("#")}

    def skipped(path):
        return any(fnmatch(path.name, pattern) for pattern in ignored) or path.resolve() == root

    files = []
    for folder, dirs, names in os.walk(APP_DIR):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not skipped(here / d)]
        files += [(here / n).relative_to(APP_DIR).as_posix() for n in names
                  if not skipped(here / n) and (here / n).is_file() and not (here / n).is_symlink()]
    return sorted(files)


def content_id(files):
    """b + 12 hex digits of a sha256 over every file's name and bytes: the same code gives the same id."""
    digest = hashlib.sha256()
    for name in files:
        data = (APP_DIR / name).read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return "b" + digest.hexdigest()[:12]


def build(args):
    root = deploy_root(args)
    files = codebase_files(root)
    if "shortly.py" not in files:
        fail(f"no shortly.py in {APP_DIR}: run release.py from the app's folder")
    build_id = content_id(files)
    folder = root / "builds" / build_id
    if folder.is_dir():
        print(f"build {build_id} exists already: the code has not changed since")
    else:
        temporary = root / "builds" / f".{build_id}.{os.getpid()}"
        for name in files:
            (temporary / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(APP_DIR / name, temporary / name)
        temporary.rename(folder)  # a build appears complete, or not at all
        print(f"built {build_id}: {len(files)} files")
    print(build_id)


def main(argv=None):
''')
nb.replace(ws / "release.py", '''\
    commands = parser.add_subparsers(dest="command", required=True)
''', '''\
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", parents=[common], help="copy the code into a build").set_defaults(func=build)
''')

# %% [markdown]
# Time to build. The tool finds its deploy root in `$SHORTLY_DEPLOY_ROOT`, as `deploy.sh` will set it on a box;
# this notebook's root is `workspace/05-deploy`, next to the workspace. `build` says what it did, then prints the
# id alone on the last line, so that a script can pick it up. The cell builds, builds the same code once more,
# and lists what the build holds:

# %%
os.environ["SHORTLY_DEPLOY_ROOT"] = str(deploy)  # every release.py command below works in this root

nb.sh("python3 release.py build", ws)
nb.sh("python3 release.py build", ws)
[first_build] = os.listdir(deploy / "builds")
nb.files(deploy / "builds" / first_build)

# %% [markdown]
# Same code, same id, nothing copied twice. The build holds the code and nothing else: no `shortly.db`, no
# `shortly.log` (both are in `.gitignore`), and no config.
#
# ## Step 3: release and list
#
# A release is a build plus a config file: `release BUILD --config FILE`. It
#
# - takes the next number, one more than the highest release there is. `mkdir` claims it: if two releases are
#   made at the same moment, only one gets `v3`, and the other tries `v4`;
# - copies the build's files into `releases/vN/`;
# - writes `release.env`: the config's `KEY=value` lines, plus `SHORTLY_RELEASE=vN`, so that the app can say
#   which release it is;
# - points the symlink `current` at the new release.
#
# First the helpers: the constants, a reader for config files (`KEY=value` lines; comments and blank lines left
# out), the ids of the releases in numeric order (`v10` comes after `v9`, not after `v1`), the release `current`
# points at, and how to move `current`. The move is one step: a new link under a temporary name, renamed over the
# old one. At no moment is there no `current`, or a half-written one.
#
# Then come the commands: `release`, which refuses a build that does not exist or a config file that is missing
# before it claims a number, and `list`, which prints the release ids, oldest first, marking the one `current`
# points at.

# %%
nb.replace(ws / "release.py", '''\
NEVER_BUILT = {".git", ".env", ".venv", "venv", "__pycache__"}  # local config and tool folders
''', r'''NEVER_BUILT = {".git", ".env", ".venv", "venv", "__pycache__"}  # local config and tool folders
RELEASE_ID = re.compile(r"v(\d+)")
RELEASE_ENV = "release.env"
''')
nb.replace(ws / "release.py", '''\
    return Path(args.root or os.environ.get("SHORTLY_DEPLOY_ROOT") or APP_DIR.parent / "shortly-deploy").resolve()
''', '''\
    return Path(args.root or os.environ.get("SHORTLY_DEPLOY_ROOT") or APP_DIR.parent / "shortly-deploy").resolve()


def read_config(path):
    """The KEY=value lines of a config file, in order (comments and blank lines left out)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            values[key.strip()] = value.strip()
    return values
''')
nb.replace(ws / "release.py", '''\
def main(argv=None):
''', '''\
# -- release ------------------------------------------------------------------------------------------------

def release_ids(root):
    """The ids of the releases, oldest first."""
    folder = root / "releases"
    found = [p.name for p in folder.iterdir() if RELEASE_ID.fullmatch(p.name)] if folder.is_dir() else []
    return sorted(found, key=lambda name: int(name[1:]))


def current_id(root):
    link = root / "current"
    return link.resolve().name if link.is_symlink() else None


def point_current(root, release_id):
    """Switch the current symlink in one step: a new link, renamed over the old one."""
    temporary = root / f".current.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(Path("releases") / release_id)
    os.replace(temporary, root / "current")


def main(argv=None):
''')

# %%
nb.replace(ws / "release.py", '''\
    os.replace(temporary, root / "current")
''', r'''    os.replace(temporary, root / "current")


def release(args):
    root = deploy_root(args)
    build_folder = root / "builds" / args.build
    if not args.build or Path(args.build).name != args.build or not build_folder.is_dir():
        fail(f"no build {args.build!r}: make one with `python release.py build`")
    config = Path(args.config)
    if not config.is_file():
        fail(f"no config file {config}")
    values = read_config(config)
    releases = root / "releases"
    releases.mkdir(parents=True, exist_ok=True)
    while True:  # mkdir claims the number: two releases at once never share one
        ids = release_ids(root)
        release_id = f"v{int(ids[-1][1:]) + 1 if ids else 1}"
        try:
            (releases / release_id).mkdir()
            break
        except FileExistsError:
            continue
    folder = releases / release_id
    shutil.copytree(build_folder, folder, dirs_exist_ok=True)
    values["SHORTLY_RELEASE"] = release_id
    (folder / RELEASE_ENV).write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    point_current(root, release_id)
    print(f"released {release_id}: build {args.build} with the config of {config.name}")
    print(release_id)
''')
nb.replace(ws / "release.py", '''\
    commands.add_parser("build", parents=[common], help="copy the code into a build").set_defaults(func=build)
''', '''\
    commands.add_parser("build", parents=[common], help="copy the code into a build").set_defaults(func=build)
    made = commands.add_parser("release", parents=[common], help="combine a build and a config into a release")
    made.add_argument("build")
    made.add_argument("--config", required=True, help="a file of KEY=value lines, e.g. .env")
    made.set_defaults(func=release)
''')
nb.replace(ws / "release.py", '''\
    print(release_id)
''', '''\
    print(release_id)


def list_releases(args):
    root = deploy_root(args)
    current = current_id(root)
    for release_id in release_ids(root):
        print(release_id + (" (current)" if release_id == current else ""))
''')
nb.replace(ws / "release.py", '''\
    made.set_defaults(func=release)
''', '''\
    made.set_defaults(func=release)
    commands.add_parser("list", parents=[common], help="the releases, oldest first").set_defaults(func=list_releases)
''')

# %% [markdown]
# ## Step 4: the app says which release it is
#
# A process should be able to tell which release it runs. `release.env` carries `SHORTLY_RELEASE`, so the app
# reads it like any other setting (`"unreleased"` when it runs outside a release, on your laptop), writes it to its
# log when it starts, and answers it at a new route, `GET /api/release`.
#
# While we are at it, the log file gets a name next to the pid file: the two files Shortly writes beside its
# code, in one place, ready for the exercise to move them. And two docstrings still speak of the old way to run it.

# %%
nb.replace(ws / "shortly.py", '''\
REDIS_URL = os.environ.get("REDIS_URL") or None
''', '''\
REDIS_URL = os.environ.get("REDIS_URL") or None
# Which release this process runs: release.py writes SHORTLY_RELEASE into each release's config.
RELEASE = app.config.get("RELEASE") or "unreleased"
''')
nb.replace(ws / "shortly.py", '''\
PID_FILE = os.path.join(HERE, "shortly.pid")
''', '''\
LOG_FILE = os.path.join(HERE, "shortly.log")
PID_FILE = os.path.join(HERE, "shortly.pid")
''')
nb.replace(ws / "shortly.py", '''\
_log_handler = RotatingFileHandler(os.path.join(HERE, "shortly.log"), maxBytes=1_000_000, backupCount=5)
''', '''\
_log_handler = RotatingFileHandler(LOG_FILE, maxBytes=1_000_000, backupCount=5)
''')
nb.replace(ws / "shortly.py", '''\
log.addHandler(_log_handler)
''', '''\
log.addHandler(_log_handler)
log.info("release %s starting", RELEASE)
''')
nb.replace(ws / "shortly.py", '''\
@app.get("/api/links/<code>")
''', '''\
@app.get("/api/release")
def api_release():
    return jsonify(release=RELEASE)


@app.get("/api/links/<code>")
''')
nb.replace(ws / "shortly.py", '''\
A small URL shortener with link previews. Run it with `python3 shortly.py`
(or `python3 shortly.py --daemon` on the servers, see deploy.sh and OPS.md).
''', '''\
A small URL shortener with link previews. Run it with `python3 shortly.py`;
on the servers it runs as a numbered, read-only release: `python release.py run`
(see deploy.sh and OPS.md).
''')
nb.replace(ws / "shortly.py", '''\
    """Detach from the terminal and write our pid to shortly.pid."""
''', '''\
    """Detach from the terminal and write our pid to the pid file."""
''')

# %% [markdown]
# ## Checkpoint: halfway
#
# `release.py` can build, release and list. The checks use their own deploy root, so they can try it right away:

# %%
nb.checkpoint("05", ws)

# %% [markdown]
# One passes: ten releases of one build got `v1` to `v10`, and after the oldest was deleted the next one still
# got a new id, `v11`; each `release.env` holds its config and its id, and `list` shows them in order. The others
# fail, each for a reason of its own:
#
# - `build_release_run.immutable` and `build_release_run.rollback` call commands the tool does not have yet:
#   `verify` and `rollback`.
# - `build_release_run.read_only_code` found a release that anyone could still edit.
# - `build_release_run.deploy_script` still finds the `sed -i` in `deploy.sh`.
# - `build_release_run.runbook`: `OPS.md` does not tell how to verify a release yet.
#
# ## Step 5: releases are read-only
#
# A release must never change after it is made. The first line of defence is the file system: `chmod a-w` on the
# release's folder and everything in it, once `release.env` is written and before `current` points at it.

# %%
nb.replace(ws / "release.py", '''\
    os.replace(temporary, root / "current")
''', '''\
    os.replace(temporary, root / "current")


def make_read_only(folder):
    for path in [folder, *folder.rglob("*")]:
        path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)  # chmod a-w
''')
nb.replace(ws / "release.py", r'''    (folder / RELEASE_ENV).write_text("".join(f"{key}={value}\n" for key, value in values.items()))
''', r'''    (folder / RELEASE_ENV).write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    make_read_only(folder)
''')

# %% [markdown]
# It is only a first line. Root ignores these permissions, and anyone can `chmod u+w` a file back. A release
# that can prove it was not changed needs a record of what it held: that is the first part of your exercise.
#
# ## Step 6: run, and the two commands left for you
#
# `run [ID]` starts a release, by default the current one, the way the twelve-factor app wants it:
#
# - the release's `release.env` goes into the environment: its config is the app's config;
# - the release's folder goes on `PYTHONPATH`, so that `import shortly` finds the release's code, wherever the
#   process runs;
# - the working directory is `var/` in the deploy root. Shortly's data (the SQLite file, with the default
#   `DATABASE_URL`) lands there and outlives every release;
# - `PYTHONDONTWRITEBYTECODE=1` keeps Python from writing `__pycache__` into the release;
# - `os.execve` then *replaces* the tool with the server: the process that serves is the one the deploy
#   script started, with the same pid.
#
# `chosen()` finds the release to act on; `verify` and `rollback` will use it too. For now, those two only say that
# they are not written yet: they are your exercise.

# %%
nb.replace(ws / "release.py", '''\
    return values
''', r'''    return values


def unquote(value):
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value
''')
nb.replace(ws / "release.py", '''\
def main(argv=None):
''', '''\
# -- verify, rollback ---------------------------------------------------------------------------------------

def chosen(root, release_id):
    """The folder of release_id, or of the current release when it is None."""
    release_id = release_id or current_id(root)
    if not release_id:
        fail("no current release: make one with `python release.py release BUILD --config FILE`")
    folder = root / "releases" / release_id
    if not RELEASE_ID.fullmatch(release_id) or not folder.is_dir():
        fail(f"no release {release_id!r}")
    return folder


def verify(args):
    fail("verify is not written yet")


def rollback(args):
    fail("rollback is not written yet")


# -- run ----------------------------------------------------------------------------------------------------

def run(args):
    root = deploy_root(args)
    folder = chosen(root, args.id)
    data = root / "var"
    data.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update((key, unquote(value)) for key, value in read_config(folder / RELEASE_ENV).items())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ inside the release
    port = env.get("PORT") or "5000"
    print(f"running {folder.name} on http://127.0.0.1:{port}/, in {data}", flush=True)
    os.chdir(data)  # the app's files (SQLite, log, pid) land in var/, never in the release
    os.execve(sys.executable, [sys.executable, "-m", "flask", "--app", "shortly", "run",
                               "--host", "127.0.0.1", "--port", port], env)


def main(argv=None):
''')
nb.replace(ws / "release.py", '''\
    commands.add_parser("list", parents=[common], help="the releases, oldest first").set_defaults(func=list_releases)
''', '''\
    commands.add_parser("list", parents=[common], help="the releases, oldest first").set_defaults(func=list_releases)
    for name, func, text in (("verify", verify, "check that a release is unchanged"),
                             ("run", run, "run a release")):
        command = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("id", nargs="?", help="a release id such as v3 (default: the current one)")
        command.set_defaults(func=func)
    commands.add_parser("rollback", parents=[common], help="make the previous release current").set_defaults(
        func=rollback)
''')

# %%
for command in ("verify", "rollback"):
    nb.sh(f"python3 release.py {command}", ws)

# %% [markdown]
# ## Build, then release
#
# The code changed since the first build (`shortly.py`, and `release.py` itself, which is part of the code), so
# this build gets a new id. The first build stays: builds are only ever added, never changed.
#
# Then the config. On a box it lives in `.env` in the checkout: never in git, never in a build. The cell writes a
# practice one, then runs the two lines a deploy script runs: `build` (which now only prints the id of the build
# that exists) and `release`, with that id from the last line.

# %%
nb.sh("python3 release.py build", ws)
nb.write(ws / ".env", """\
# This box's config: a practice one, nothing here is a secret.
SHORTLY_SECRET_KEY=fake-dev-key
DATABASE_URL=sqlite:///shortly.db
SHORTLY_ADMIN_TOKEN=purge-token-1
""")
nb.sh("""
build=$(python3 release.py build | tail -n 1)
python3 release.py release "$build" --config .env
""", ws)

# %%
v1 = deploy / "releases" / "v1"
print("current ->", os.readlink(deploy / "current"))
nb.show(v1 / "release.env")
for path in [v1, *sorted(v1.iterdir())]:
    print(stat.filemode(path.stat().st_mode), path.relative_to(deploy))


# %% [markdown]
# `current` points at `v1`. Its `release.env` is `.env` without the comment, plus the release's id. Every file
# and the folder itself lost their `w`: nobody is meant to edit a release (though, as step 5 said, permissions
# alone do not stop root).
#
# ## Run a release
#
# In a terminal, `python3 release.py run` would serve the current release until you stop it. This notebook starts
# the app with `nb.App` instead, so that it owns the process and surely stops it, but it does what `run` does:
# the release's `release.env` as the config, its code on `PYTHONPATH`, `var/` as the working directory.
# (`nb.App` names the folder the app runs in: here `var/`.)
#
# One difference, for now. Shortly still writes its log next to its code. Served from the read-only release
# itself, it would stop at once with a `PermissionError`, or, run as root, which ignores the permissions, write
# into the release anyway. Both are wrong, and the exercise fixes the app. Until then, `serve_current()` serves a
# writable copy of the release's files. After the requests, the cell lists `var/` and that copy:

# %%
def serve_current():
    """Serve the current release as `release.py run` does, from a writable copy of its files."""
    release = (deploy / "current").resolve()
    copy = copies / release.name
    if not copy.exists():
        copy.mkdir(parents=True)
        for path in release.iterdir():
            shutil.copyfile(path, copy / path.name)
    config = dict(line.split("=", 1) for line in (release / "release.env").read_text().splitlines())
    (deploy / "var").mkdir(exist_ok=True)
    return nb.App(deploy / "var", env={**config, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"})


with serve_current() as app:
    print(app.get("/api/release"))
    print(app.get("/admin/purge?token=purge-token-1"))
nb.files(deploy / "var")
print("---")
nb.files(copies / "v1")

# %% [markdown]
# The process knows where it comes from: release `v1`, with `v1`'s config (its admin token works). The database
# went to `var/`, where it belongs: data is not part of any release. The log went next to the code, where it must
# not go. Remember it for the exercise.
#
# ## A new config is a new release
#
# The admin token leaked; time to change it. Edit `.env` in the checkout, and look at `v1`'s config again:

# %%
nb.replace(ws / ".env", "SHORTLY_ADMIN_TOKEN=purge-token-1\n", "SHORTLY_ADMIN_TOKEN=purge-token-2\n")
nb.show(v1 / "release.env")

# %% [markdown]
# `v1` did not change, and will not: the running process keeps the config it was released with. The new token
# reaches the app in a new release. The code is the same, and so is the build; the deploy runs the same two lines:

# %%
nb.sh("""
build=$(python3 release.py build | tail -n 1)
python3 release.py release "$build" --config .env
""", ws)
nb.sh("python3 release.py list", ws)
with serve_current() as app:
    print(app.get("/api/release"))
    print(app.get("/admin/purge?token=purge-token-2"))

# %% [markdown]
# ## Rollback
#
# Say `v2` goes wrong. `v1` is still there, complete and unchanged, so going back needs no build and no edit:
# point `current` at `v1` and run it. By hand, for now:

# %%
(deploy / "current").unlink()
(deploy / "current").symlink_to("releases/v1")
nb.sh("python3 release.py list", ws)
with serve_current() as app:
    print(app.get("/api/release"))
    print(app.get("/admin/purge?token=purge-token-2"))

# %% [markdown]
# `v1` runs again, with its own config: the new token is refused, and the old one would work. A rollback brings
# back a whole release, code *and* config. No release was changed or made, and the next one will be `v3`.
#
# By hand, there was a moment with no `current` at all, between `unlink()` and `symlink_to()`. `release.py
# rollback` will use `point_current()`, which has no such moment, and will know what to do at `v1`, where there
# is nothing to go back to. That is the second part of your exercise.
#
# ## Step 7: `deploy.sh` goes through the stages
#
# The new `deploy.sh` edits nothing. It refuses a `.env` that turns the debugger on instead of fixing it with
# `sed` behind your back, installs the dependencies, builds, releases, and runs the new release. With
# `rollback`, it runs the release before the current one instead.

# %%
nb.write(ws / "deploy.sh", r"""#!/bin/bash
# Deploy Shortly on this box, as the shortly user, from a checkout of the revision to deploy:
#   ./deploy.sh            build, release with this box's config, run the new release
#   ./deploy.sh rollback   run the release before the current one again
# Nothing here edits code, and nothing runs from the checkout: the app runs from a numbered,
# read-only release under $SHORTLY_DEPLOY_ROOT (see OPS.md).
set -euo pipefail
cd "$(dirname "$0")"

export SHORTLY_DEPLOY_ROOT=${SHORTLY_DEPLOY_ROOT:-/srv/shortly-deploy}
CONFIG=${SHORTLY_CONFIG:-.env}  # this box's config (SHORTLY_SECRET_KEY, DATABASE_URL, ...), see .env.example

if [ "${1:-}" = rollback ]; then
    release=$(.venv/bin/python release.py rollback | tail -n 1)
else
    # never ship with the debugger on: refuse the config rather than edit it
    if grep -qiE "^(export +)?SHORTLY_DEBUG=[\"']?true" "$CONFIG"; then
        echo "deploy.sh: $CONFIG sets SHORTLY_DEBUG=true; set it to false and deploy again" >&2
        exit 1
    fi
    # build: the dependencies, then the code
    .venv/bin/pip install --quiet -r requirements.txt
    build=$(.venv/bin/python release.py build | tail -n 1)
    # release: the build plus this box's config
    release=$(.venv/bin/python release.py release "$build" --config "$CONFIG" | tail -n 1)
fi

# run: stop the release that runs, start the current one (it verifies the release first)
mkdir -p "$SHORTLY_DEPLOY_ROOT/var"
pidfile="$SHORTLY_DEPLOY_ROOT/var/shortly.pid"
if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
    sleep 2
fi
nohup .venv/bin/python release.py run > /dev/null 2>&1 &
echo $! > "$pidfile"
echo "Shortly $release started (pid $!)"
""")

# %% [markdown]
# `git pull` is gone from the script: pulling picks the revision to deploy, and that is the operator's step,
# before the build. The pid file now lives in `var/`, and `$!` is the pid of `release.py run`, which becomes the
# server itself (`execve` keeps the pid).
#
# ## Step 8: tell the people who run it
#
# `.env.example` lists the two new variables: `SHORTLY_RELEASE`, which the release sets, and
# `SHORTLY_DEPLOY_ROOT`, which is for `release.py`, not the app.

# %%
nb.replace(ws / ".env.example", """\
# Copy this file to .env and fill it in; .env is never committed. The values here are
# placeholders, not secrets.
""", """\
# Copy this file to .env and fill it in; .env is never committed, and deploy.sh makes it part of
# every release (release.py release BUILD --config .env). The values here are placeholders, not secrets.
""")
nb.replace(ws / ".env.example", """\
SHORTLY_LOG_LEVEL=DEBUG
""", """\
SHORTLY_LOG_LEVEL=DEBUG

# Leave empty: `release.py release` sets it in each release's release.env (v1, v2, ...),
# and the app reports it at /api/release.
SHORTLY_RELEASE=

# For release.py, not the app: the folder of builds, releases and var/.
# Empty: ../shortly-deploy, next to the app's folder.
SHORTLY_DEPLOY_ROOT=
""")

# %% [markdown]
# The runbook, `OPS.md`, changes in three places: where things live (the checkout is only built from, and the
# deploy root is new); how a deploy goes ("Deploying / restarting" becomes "Build, release, run", and a section
# lists the releases); and every "change `.env` and restart" becomes "change `.env` and deploy", since a restart
# alone no longer reads `.env`.

# %%
# where things live
nb.replace(ws / "OPS.md", """\
| prod-web-1 | `shortly.py`, behind nginx as https://shortly.example.com/ |""", """\
| prod-web-1 | the current release under `/srv/shortly-deploy`, behind nginx as https://shortly.example.com/ |""")
nb.replace(ws / "OPS.md", """\
The code lives in one git repository; every box runs a checkout of it. What
differs between boxes is their configuration, nothing else.
""", """\
The code lives in one git repository; every box has a checkout of it in
`/srv/shortly`. What differs between boxes is their configuration, nothing else.
The checkout is only built from: the app runs from a release (see "Build,
release, run" below).
""")
nb.replace(ws / "OPS.md", """\
exact versions, in `requirements.txt` and installed into a virtualenv in the app
folder:
""", """\
exact versions, in `requirements.txt` and installed into a virtualenv in the
checkout (`deploy.sh` keeps it up to date). The deploy root belongs to the shortly
user:
""")
nb.replace(ws / "OPS.md", """\
    .venv/bin/pip install -r requirements.txt
""", """\
    .venv/bin/pip install -r requirements.txt
    mkdir -p /srv/shortly-deploy
""")
nb.replace(ws / "OPS.md", """\
Each box keeps its configuration in `.env` in the app folder (never in git).
Start from `.env.example`; `deploy.sh` loads `.env` before starting the app.
""", """\
Each box keeps its configuration in `.env` in the checkout (never in git, and
never copied into a build). Start from `.env.example`. `deploy.sh` makes `.env`
part of each new release; changing `.env` changes nothing until the next
`./deploy.sh`.
""")
nb.replace(ws / "OPS.md", """\
| `SHORTLY_LOG_LEVEL` | how much gets logged: `DEBUG` (the default), `INFO`, `WARNING` or `ERROR`; `WARNING` on prod |
""", """\
| `SHORTLY_LOG_LEVEL` | how much gets logged: `DEBUG` (the default), `INFO`, `WARNING` or `ERROR`; `WARNING` on prod |
| `SHORTLY_RELEASE` | leave empty: each release sets its own id (`v7`), shown at `/api/release` |
| `SHORTLY_DEPLOY_ROOT` | for `release.py` and `deploy.sh`: where builds and releases live (`/srv/shortly-deploy` on prod) |
""")

# %%
# how a deploy goes
nb.replace(ws / "OPS.md", """\
## Deploying / restarting

    ssh prod-web-1
    cd /srv/shortly
    ./deploy.sh

`deploy.sh` pulls, installs `requirements.txt` into `.venv`, switches
`SHORTLY_DEBUG` off in `.env`, kills the process in `shortly.pid` and starts a
new one in the background.

Fixes are committed to the repository and deployed with `deploy.sh`, never
edited on a box.
""", """\
## Build, release, run

A deploy is three separate steps, each a command of `release.py` (standard
library only) run from the checkout. Everything they make lives under
`$SHORTLY_DEPLOY_ROOT` (`/srv/shortly-deploy` on prod):

| step | command | makes |
|---|---|---|
| build | `release.py build` | `builds/<id>/`: a copy of the code (no `.env`, nothing `.gitignore` lists); the id comes from the content, so the same code gives the same build |
| release | `release.py release <build> --config .env` | `releases/vN/`: the build's files and `release.env` (the config plus `SHORTLY_RELEASE=vN`), all read-only; `current` points at it |
| run | `release.py run [vN]` | the release (default: `current`), serving on `$PORT` (default 5000) with `var/` as its working directory |

`deploy.sh` does all three, with the dependencies installed first:

    ssh prod-web-1
    cd /srv/shortly
    git pull            # the revision to deploy; nothing runs from here
    ./deploy.sh

It refuses a `.env` with `SHORTLY_DEBUG=true` rather than edit it, stops the
process in `var/shortly.pid` and starts the new release in the background.

Release ids only grow (`v1`, `v2`, …): a config change is a new release too (run
`./deploy.sh` again: the same code reuses its build). Never edit a release: a
fix is a commit and a new deploy.
""")
nb.replace(ws / "OPS.md", """\
minutes. Do not restart during the morning peak: requests in flight are dropped.
""", """\
minutes. Do not restart during the morning peak: requests in flight are dropped.

## Releases

    export SHORTLY_DEPLOY_ROOT=/srv/shortly-deploy
    .venv/bin/python release.py list        # v1, v2, ... oldest first; "(current)" marks the running one

Old releases may be deleted to free space, but never the newest (its number
would be reused).
""")

# %%
# a change to .env needs a deploy, not a restart
for old, new in [
    ("change to `.env` and a restart. No code changes, no deploy.",
     "change to `.env` and a new release of the same build (`./deploy.sh`). No code changes."),
    ("3. Once, from the app folder, with the same configuration:\n\n"
     "       set -a; . ./.env; set +a\n"
     "       .venv/bin/flask --app shortly init-db\n",
     "3. Make a release with the new `.env`, without running it yet:\n"
     "   `python3 release.py release $(python3 release.py build | tail -n 1) --config .env`.\n"
     "4. Once, with the code and configuration of that release (now `current`), in\n   its working directory:\n\n"
     "       set -a; . $SHORTLY_DEPLOY_ROOT/current/release.env; set +a\n"
     "       cd $SHORTLY_DEPLOY_ROOT/var\n"
     "       PYTHONPATH=$SHORTLY_DEPLOY_ROOT/current /srv/shortly/.venv/bin/flask --app shortly init-db\n"),
    ("   It creates the table and prints one line saying where.\n4. Restart with `./deploy.sh`.",
     "   It creates the table and prints one line saying where.\n5. Run it: `python3 release.py run` (or restart the service that does)."),
    ("(e.g. `redis://<host>:6379/0`) and restart.", "(e.g. `redis://<host>:6379/0`) and run `./deploy.sh`."),
    ("restart. To go back, put the old URL back and restart.",
     "run `./deploy.sh`. To go back, put the old URL back and deploy."),
    ("`shortly.log` in the app folder (rotated at 1 MB, 5 files kept):\n\n"
     "    tail -f /srv/shortly/shortly.log\n",
     "`shortly.log` next to the code of the release that runs (rotated at 1 MB, 5\nfiles kept):\n\n"
     "    tail -f /srv/shortly-deploy/current/shortly.log\n\n"
     "Which release is answering: `curl https://shortly.example.com/api/release`.\n"),
    ("set -a; . /srv/shortly/.env; set +a", "set -a; . /srv/shortly-deploy/current/release.env; set +a"),
    ("add it there and restart. `flask --app shortly init-db`\nruns the same code by hand.\n",
     "add it there and deploy. `flask --app shortly init-db`\nruns the same code by hand (see \"Attaching a database\").\n"),
]:
    nb.replace(ws / "OPS.md", old, new)

# %% [markdown]
# ## Where the walkthrough leaves you
#
# Your workspace now holds the code the exercise starts from: `exercises/05_build_release_run` adds only `TODO`
# notes, the part left for you. A quick comparison, with those notes and blank lines left out:

# %%
nb.compare_with_starter(ws, "05")

# %% [markdown]
# ## Quiz

# %%
nb.quiz("Prod runs v7. Someone fixes a value in the box's .env and restarts the app. What runs?",
        ["v7 with the fixed value",
         "v7 exactly as it was released: the fix needs a new release, v8",
         "Whatever code is in the checkout, with the fixed value"],
        answer=1,
        why="A release never changes, and the run stage only starts one. The fixed .env becomes part of the "
            "next release, v8 (./deploy.sh makes it from the same build), and then v8 runs.")

# %%
nb.quiz("Why is a rollback quick and safe here?",
        ["git revert undoes the last commit on the box",
         "The previous release still exists, complete and unchanged: going back is running it again",
         "The app keeps a copy of its previous code in memory"],
        answer=1,
        why="Nothing has to be built or edited: the earlier release, code and config together, is still in "
            "releases/, and rolling back points current at it and starts it.")

# %% [markdown]
# ## Your turn: the exercise
#
# Now finish the job in **`exercises/05_build_release_run`**. Its `release.py` is the one you wrote, and
# `shortly.py`, `deploy.sh` and the docs are where this walkthrough ended. `TODO` comments mark the rest:

# %%
nb.todos("05")

# %% [markdown]
# What is left:
#
# - **Catch a changed release.** Permissions do not stop root. When `release` makes a release, have it write a
#   `MANIFEST` into it first: one line per file, its sha256 and its name. `verify [ID]` compares the release with
#   it, exits 0 when everything matches, and otherwise exits 1 naming each changed, added or missing file. `run`
#   verifies first and refuses a release that changed.
# - **Roll back.** `rollback` points `current` at the release before the current one with `point_current()`,
#   prints that release's id as its last line, and exits 1 with a message at the first release. `deploy.sh
#   rollback` calls it already.
# - **Write nothing next to the code.** Shortly still opens `shortly.log` and writes `shortly.pid` beside
#   `shortly.py`. Put them in the working directory (`release.py run` makes that `var/`), or at paths from config
#   (`SHORTLY_LOG_FILE`, `SHORTLY_PID_FILE`, listed in `.env.example`).
# - **The runbook**: `OPS.md` says how to verify a release, how to roll back, and where the log is now.
#
# Four checks fail until then: `build_release_run.immutable` (no `verify`), `build_release_run.rollback` (no
# `rollback`), `build_release_run.read_only_code` (served from its read-only release, the app tries to write its
# log there), and `build_release_run.runbook` (`OPS.md` still says the log is written next to the code). The
# other two, `build_release_run.ordered_ids` and `build_release_run.deploy_script`, pass already.
#
# To try your tool by hand, give it a deploy root of its own, outside the repository's tracked folders, e.g. in a
# terminal:
#
# ```
# cd exercises/05_build_release_run
# export SHORTLY_DEPLOY_ROOT=$PWD/../../workspace/05-exercise-deploy
# python release.py build
# python release.py release <the build id> --config .env     # write a .env first, from .env.example
# PORT=8005 python release.py run                            # Ctrl-C to stop
# ```
#
# (As long as Shortly writes its log next to its code, expect `run` to fail there with a `PermissionError`, unless
# you are root: that is the third part of the exercise.)
#
# When you are done, check your work here or in a terminal:
#
# - `factorlab check 05` runs the same checks as the checkpoints above
# - `factorlab check 05 --runner docker` runs them with the app in a container; the verdict is the same
# - `factorlab hint 05` reveals one hint at a time
# - `factorlab solution 05` shows the difference to the reference solution, once your check passes
#
# Or press the button:

# %%
nb.check_button("05")

# %% [markdown]
# Next: **[Factor VI — Processes](06_processes.ipynb)**, where the state Shortly keeps in its
# process memory (sessions, recent links, click counts) moves to the backing services, so that any process can
# be stopped or started without losing anything.
#
# Finally, stop anything this notebook started (every app above was stopped already, so this prints nothing):

# %%
nb.stop_all()
