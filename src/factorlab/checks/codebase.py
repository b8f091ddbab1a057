"""Factor I, codebase: one codebase tracked in revision control, many deploys.

The evidence: git itself (what it holds, what it would take, which branches it has), every file of the
folder whatever its name or extension (a copy of the app for one environment is found by its name and by
its content), and the running app (it does what production's copy did).
"""

from __future__ import annotations

import ast
import difflib
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from .. import files
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check, shell
from .app import create_link, shorten
from .attached import serve
from .runbook import said_as_history
from .source import app_files, app_module_file, parse, python_files, rel, strings
from .text import listing

# Words that name a deploy (prod-web-1, shortly-staging, prd), as they appear in file, folder, branch and host names.
DEPLOY_WORDS = {"prod", "production", "prd", "prodn", "staging", "stage", "stg", "live", "qa", "uat", "preprod",
                "canary", "beta", "demo", "sandbox", "perf"}
# Words of a developer's own deploy: a file named for one is a copy, a branch named for one is work in progress
# (12factor: a developer has commits not yet deployed).
DEV_WORDS = {"dev", "development", "local"}
# Words that mark a copy of a file.
COPY_WORDS = {"old", "backup", "bak", "copy", "new", "orig", "tmp"}
ENV_WORDS = DEPLOY_WORDS | DEV_WORDS | COPY_WORDS
NAME_PARTS = re.compile(r"[A-Za-z0-9]+")
SIMILARITY = 0.6  # of the lines of two files: above this, one is a copy of the other
MIN_LINES = 30
# What a run of the app writes, and local config: none of it belongs in the repository.
LOCAL_FILES = ["shortly.db", "shortly.log", "shortly.log.1", "shortly.pid", ".env", "__pycache__/shortly.cpython-311.pyc"]
# Committed, these are data, a backup or a deploy's config rather than code: a database (shortly.db, shortly.db.bak,
# shortly.sqlite3-journal), a backup or dump, a pid file, bytecode, and .env files (.env, .env.production, prod.env)
# except the documented example.
DATA_NAME = re.compile(r"(?i)\.(db|sqlite3?)([-.~]|$)|\.(pid|pyc|pyo|bak|backup|dump)$|~$")
ENV_FILE = re.compile(r"(?i)^\.env$|^\.env\.|\.env$")
EXAMPLE_WORDS = {"example", "sample", "template", "tmpl", "dist"}
GIT_USER = ["-c", "user.name=factorlab", "-c", "user.email=factorlab@factorlab.invalid"]


def _git(path: Path, *args: str, git_dir: str | None = None) -> subprocess.CompletedProcess:
    where = [f"--git-dir={git_dir}", f"--work-tree={path}"] if git_dir else []
    try:
        return subprocess.run(["git", "-c", "core.excludesFile=/dev/null", *where, "-C", str(path), *args],
                              capture_output=True, text=True, timeout=20)
    except FileNotFoundError:
        raise RuntimeError("git is not installed on this machine") from None


@check("codebase.git_repository", factor=1, title="The code lives in a git repository with history",
       hint="Run `git init`, `git add -A` and `git commit -m 'One codebase'` in the app's folder.")
def git_repository(ctx: CheckContext) -> str:
    """The app's folder is in a git work tree that does not ignore it, has commits, and tracks every Python file
    of the app (the app module first)."""
    inside = _git(ctx.path, "rev-parse", "--is-inside-work-tree").returncode == 0
    if inside and _git(ctx.path, "check-ignore", "-q", ".").returncode == 0:
        raise CheckFailed("Seen: the folder sits inside another repository that ignores it, so nothing tracks it.\n"
                          "Expected: a git repository of the app's own (git init, then a first commit).")
    if not inside:
        raise CheckFailed("Seen: the folder is not inside a git repository.\n"
                          "Expected: the code under version control (git init, then a first commit).")
    if _git(ctx.path, "rev-parse", "--verify", "HEAD").returncode != 0:
        raise CheckFailed("Seen: a git repository with no commits yet.\n"
                          "Expected: at least one commit, so every deploy can name the revision it runs.")
    module = app_module_file(ctx)
    tracked = set(_git(ctx.path, "ls-files", "-z").stdout.split("\0"))
    if module not in tracked:
        ignored = _git(ctx.path, "check-ignore", "-q", module).returncode == 0
        raise CheckFailed(f"Seen: git does not track {module}" + (", and .gitignore keeps it out" if ignored else "")
                          + f".\nExpected: the app's code committed (git add {module}).")
    code = sorted(p.relative_to(ctx.path).as_posix() for p in files.walk(ctx.path, (".py",)))
    untracked = [name for name in code if name not in tracked]
    if untracked:
        raise CheckFailed(f"Seen: git does not track {listing(untracked)}.\nExpected: every file of the app's code "
                          "in the repository, so that a deploy of a commit has all of it.")
    return f"a git repository with history that tracks the app's {len(code)} Python file(s)"


@check("codebase.code_only", factor=1, title="The repository holds code, not what a run writes",
       hint="List what the app writes while it runs (shortly.db, shortly.log*, shortly.pid), Python's __pycache__/ "
            "and the local .env in .gitignore, and `git rm --cached` any of them already committed.")
def code_only(ctx: CheckContext) -> str:
    """Nothing a run writes (database, log, pid file, bytecode), no backup of the data and no .env file of a deploy
    (.env, .env.production; .env.example is documentation) is committed; and after a run
    left them in the folder, `git add -A` in it would take none of them: the folder's own .gitignore keeps
    them out (as it must wherever the code is cloned)."""
    committed = [name for name in _git(ctx.path, "ls-files", "-z").stdout.split("\0") if name and _local(name)]
    if committed:
        raise CheckFailed(f"Seen: the repository holds {listing(committed)}: data, a backup, a log or a deploy's "
                          "config, not code.\n"
                          "Expected: only code: `git rm --cached` them and list them in .gitignore.")
    taken = _would_take(ctx.path)
    if taken:
        raise CheckFailed(f"Seen: after a run, `git add -A` would commit {listing(taken)}: the folder's .gitignore "
                          "does not keep them out.\nExpected: .gitignore lists what the app writes while it runs and "
                          "the local .env, so no deploy's data or secrets reach the repository.")
    return "git keeps the database, log, pid file, bytecode and .env out of the repository"


def _local(name: str) -> bool:
    """Is a committed file data, a backup, a log or local config rather than code?"""
    path = Path(name)
    env_file = ENV_FILE.search(path.name) and not set(_words(path.name)) & EXAMPLE_WORDS
    return bool(env_file or DATA_NAME.search(path.name) or re.search(r"\.log(\.\d+)?$", path.name)
                or path.name.startswith("shortly.log") or "__pycache__" in path.parts)


def _would_take(folder: Path) -> list[str]:
    """In a copy of folder that a run has written into, what `git add -A` as its own repository would take."""
    with tempfile.TemporaryDirectory(prefix="factorlab-git-") as scratch:
        copy = files.copy_app(folder, Path(scratch) / "app")
        for name in LOCAL_FILES:
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            (copy / name).write_text("written by a run\n")
        git_dir = str(Path(scratch) / "repo.git")
        subprocess.run(["git", "init", "-q", "--bare", git_dir], check=True, capture_output=True, timeout=20)
        listed = _git(copy, "ls-files", "-z", "--others", "--exclude-standard", git_dir=git_dir).stdout.split("\0")
        return sorted(name for name in listed if name in LOCAL_FILES)


def _words(name: str) -> list[str]:
    return [w.lower() for w in NAME_PARTS.findall(name)]


def _variant_of(path: str, app_names: set[str]) -> str | None:
    """The app file that path names with a deploy's word added (shortly_prod.py, prod/shortly.py,
    shortly.py.prod, shortly-live.txt), or None."""
    parts = Path(path).parts
    words = [w for part in parts for w in _words(part)]
    if not set(words) & ENV_WORDS:
        return None
    rest = [w for w in words if w not in ENV_WORDS and w not in ("py", "txt", "sh", "orig", "md")]
    for name in app_names:
        stem = _words(Path(name).stem)
        if rest == stem and Path(path).as_posix() != name:
            return name
    return None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _copies(ctx: CheckContext) -> list[str]:
    """Files of the folder that are another file of the app for one environment: by name (any file on the box,
    ignored by git or not), or by content (any file of the codebase)."""
    texts = {rel(path, ctx.path): text for path, text in _all_text(ctx.path)}
    code = {name for name in texts if name.endswith(".py")}
    app_names = {Path(name).name for name in code} | code
    found = []
    for name in sorted(texts):
        twin = _variant_of(name, app_names)
        if twin and (twin in texts or Path(twin).name in {Path(n).name for n in code if n != name}):
            found.append(f"{name}, a copy of {twin} named for one environment")
    named = {entry.split(",")[0] for entry in found}
    committed = {rel(path, ctx.path) for path in app_files(ctx.path)}
    sized = {name: _lines(text) for name, text in texts.items()
             if name in committed and len(_lines(text)) >= MIN_LINES}
    for a in sorted(n for n in sized if n in code):
        for b in sorted(sized):
            if b == a or b in named or (b in code and b < a):
                continue
            ratio = difflib.SequenceMatcher(None, sized[a], sized[b], autojunk=False).ratio()
            if ratio >= SIMILARITY:
                found.append(f"{b}, {ratio:.0%} the same as {a}")
                named.add(b)
    return found


def _all_text(folder: Path) -> list[tuple[Path, str]]:
    """Every text file of the folder, ignored or not (a copy kept out of git still runs on the box)."""
    found = []
    for path in files.walk(folder):
        text = files.text_of(path)
        if text is not None:
            found.append((path, text))
    return found


# How a doc or a string names Python code to run: a file (shortly_prod.py), a module (python -m shortly_prod,
# --app shortly_prod, FLASK_APP=shortly_prod) or a WSGI app (gunicorn shortly_prod:app).
MENTION = re.compile(r"(?:(?<![\w-])-m\s*|--app[=\s]+|\bFLASK_APP=)['\"]?([A-Za-z_][\w.]*)|([\w./-]+\.py)\b"
                     r"|(?<![\w/.:-])([A-Za-z_][\w.]*):[A-Za-z_]\w*(?:\(\))?(?![\w/:])")
SHELLS = re.compile(r"^#!.*\b(ba|z|da|k)?sh\b")
PYTHONS = re.compile(r"^(python|pypy)[\d.]*$")
# Servers that start a WSGI app named module:app, and the options that name it.
SERVERS = {"gunicorn", "uwsgi", "waitress-serve", "uvicorn", "hypercorn", "flask", "mod_wsgi-express"}
APP_OPTIONS = {"--app", "-A", "--module", "--wsgi-file", "--wsgi", "--call"}
# git commands that make a work tree no commit of the history holds (a deploy of another commit is no copy: it
# may lag behind), and those that do it when given files (git checkout origin/prod -- shortly.py).
GIT_CHANGES = {"apply", "am", "cherry-pick", "merge", "rebase", "revert", "stash"}
GIT_FILE_CHANGES = {"checkout", "restore"}
COPIERS = {"cp", "mv", "ln", "install", "rsync", "scp", "curl", "wget", "tee", "dd"}


def _module_file(mentioned: str) -> str:
    """The file name of a module or file mention: shortly_prod → shortly_prod.py, pkg.shortly_prod →
    shortly_prod.py, ./shortly_prod.py → shortly_prod.py."""
    mentioned = mentioned.rstrip(".")
    if mentioned.endswith(".py"):
        return Path(mentioned).name
    return mentioned.split(".")[-1] + ".py"


def _mentions(text: str) -> list[tuple[int, int, str]]:
    """(start, end, file name) of each piece of Python code a text names to run."""
    return [(m.start(), m.end(), _module_file(next(g for g in m.groups() if g))) for m in MENTION.finditer(text)]


def _is_script(path: Path, text: str) -> bool:
    return path.suffix in (".sh", ".bash") or bool(SHELLS.match(text)) or path.name == "Procfile"


def _mentions_of_copies(ctx: CheckContext, is_copy) -> list[str]:
    """Places in the app's scripts, docs and code that name a per-environment copy of the app as something to run
    or edit (a doc may tell that it is gone, or warn against one)."""
    found = []
    for path in app_files(ctx.path):
        name = rel(path, ctx.path)
        text = files.text_of(path)
        if text is None:
            continue
        if path.suffix == ".py":  # code: the strings it runs with, not its comments
            tree = parse(path)
            texts = [(getattr(node, "lineno", 0), value, True) for value, node in strings(tree)] if tree else []
        elif _is_script(path, text):  # a script: each line is a command, or a comment of its own
            texts = [(number, line, line.lstrip().startswith("#"))
                     for number, line in enumerate(text.splitlines(), 1)]
        else:  # prose: a sentence may tell the story of the copy
            texts = [(1, text, True)]
        for number, value, prose in texts:
            for start, end, base in _mentions(value):
                if is_copy(base) and not (prose and said_as_history(value, start, end)):
                    line = number + value.count("\n", 0, start)
                    found.append(f"{name}:{line} names {base}")
    return found


def _script_commands(ctx: CheckContext) -> list[tuple[str, shell.Command, str]]:
    """(script, command, condition) of every command of the app's shell scripts, with the condition of the deploy
    it runs on ("" when it runs on every deploy)."""
    found = []
    for path in app_files(ctx.path):
        text = files.text_of(path)
        if text is None or path.suffix == ".py" or not _is_script(path, text):
            continue
        if path.name == "Procfile":  # web: gunicorn shortly:app
            text = re.sub(r"(?m)^[\w-]+:\s*", "", text)
        conditions = _deploy_conditions(text)
        for command in shell.commands(text):
            found.append((rel(path, ctx.path), command, conditions.get(command.line, "")))
    return found


def _deploy_conditions(text: str) -> dict[int, str]:
    """For each logical line of a shell script that runs only on some deploys, the test that decides it: an if,
    elif, case or `[ … ] &&` on the host's name or a deploy's name (if [[ "$(hostname)" == prod-* ]], case
    "$DEPLOY_ENV" in production)); else branches count too (they run on the other deploys)."""
    stack: list[str] = []
    found: dict[int, str] = {}
    for number, line in shell._logical_lines(text):
        parts, subs = shell._split(line)
        inline, seen = "", []
        for part in parts:
            words = part.split()
            head = words[0] if words else ""
            tested = part + (" " + " ".join(subs) if "SUBST" in part else "")
            if head in ("if", "while", "until", "case"):
                stack.append(tested)
            elif head == "elif" and stack:
                stack[-1] += " " + tested
            elif head in ("[", "[[", "test"):
                inline += " " + tested  # [ … ] && command: what follows on the line runs on its answer
            elif stack and stack[-1].startswith("case") and re.match(r"^\(?[^()\s=]+\)", head):
                stack[-1] += " " + head  # a case pattern: prod-*)
            seen.append(" ".join(stack) + inline)
            if head in ("fi", "done", "esac") and stack:
                stack.pop()
        deploy = [condition for condition in seen if _about_the_deploy(condition)]
        if deploy:
            found[number] = max(deploy, key=len).strip()
    return found


def _about_the_deploy(condition: str) -> bool:
    """Does a test decide by the host's name or a deploy's name?"""
    return bool(re.search(r"(?i)hostname|uname\s+(-\w*n|--nodename)|/etc/host|\bnode\(\)", condition)
                or set(_words(condition)) & (DEPLOY_WORDS | {"development"}))


CASE_PATTERN = re.compile(r"^\(?[^()\s=]+\)$")


def _command_words(command: shell.Command) -> tuple[list[str], str]:
    """A command's words from its program on, and the program, past a case pattern before it (prod-*) cmd)."""
    words = list(command.words)
    if words and CASE_PATTERN.match(words[0]):
        words = shell.Command(words[1:], command.line, command.text).words
    return words, (words[0].rsplit("/", 1)[-1] if words else "")


def _python_starts(command: shell.Command) -> list[tuple[str, str]]:
    """What Python code a command starts: ("file", path) or ("module", name)."""
    words, program = _command_words(command)
    started = [("module", w.split("=", 1)[1]) for w in command.argv if w.startswith("FLASK_APP=")]
    args = words[1:]
    if PYTHONS.match(program):
        while args:
            arg = args.pop(0)
            module = arg[2:] if arg.startswith("-m") and len(arg) > 2 else (args.pop(0) if arg == "-m" and args else "")
            if module:
                program = module
                break
            if arg.startswith("-c"):
                return started
            if arg in ("-W", "-X"):
                args = args[1:]
            elif not arg.startswith("-"):
                return started + [("file", arg)]
        else:
            return started
        apps = _served_apps(args)
        return started + (apps if apps or program in SERVERS else [("module", program)])
    if program in SERVERS:
        return started + _served_apps(args)
    return started


def _served_apps(args: list[str]) -> list[tuple[str, str]]:
    """The app a server's arguments name: --app shortly, --wsgi-file shortly.py, shortly:app."""
    found = []
    for index, arg in enumerate(args):
        option, _, value = arg.partition("=")
        if option in APP_OPTIONS:
            value = value or (args[index + 1] if index + 1 < len(args) else "")
            found.append(("file", value) if value.endswith(".py") else ("module", value.split(":")[0]))
        elif re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*(\(\))?", arg):
            found.append(("module", arg.split(":")[0]))
    return found


def _changes_code(command: shell.Command, code: set[str]) -> bool:
    """Does a command change the app's code in place: apply a patch, merge other code in, take a file from
    another commit, copy over or edit a Python file?"""
    words, program = _command_words(command)

    def code_file(word: str) -> bool:
        return word.endswith(".py") or Path(word).name in code

    if program in ("patch", "quilt"):
        return True
    if program == "git":
        rest = list(words[1:])
        while rest and rest[0].startswith("-"):
            rest = rest[2:] if rest[0] in ("-C", "-c") else rest[1:]
        return bool(rest) and (rest[0] in GIT_CHANGES or rest[0] in GIT_FILE_CHANGES
                               and any(w == "--" or code_file(w) for w in rest[1:]))
    if any(code_file(w) for w in command.writes):  # … > shortly.py
        return True
    if program in COPIERS:  # cp shortly_prod.py shortly.py, curl -o shortly.py …
        return any(code_file(w) for w in words[-1:] + [w for w, o in zip(words[2:], words[1:]) if o in ("-o", "-O")])
    if program in ("sed", "perl", "awk", "gawk") and any(re.match(r"^-[a-z]*i", w) for w in words[1:]):
        return any(code_file(w) for w in words[1:])
    return False


def _script_problems(ctx: CheckContext, is_copy, code: set[str], local: set[str]) -> list[str]:
    """What the app's scripts do that makes one deploy run other code than another: start a copy of the app, or
    code kept outside the folder; or, only on some hosts, change the code or start other code."""
    found = []
    for script, command, condition in _script_commands(ctx):
        where = f"{script}:{command.line}"
        outside = [w.split("=", 1)[1] for w in command.argv if w.startswith("PYTHONPATH=")]
        for kind, target in _python_starts(command):
            if not target:  # a variable the script never sets
                continue
            top = target.split(".")[0]
            if is_copy(_module_file(target)):
                found.append(f"{where} starts {target}, a per-environment copy of the app")
            elif kind == "file" and (target.startswith("/") or ".." in Path(target).parts):
                if set(_words(str(Path(target).parent))) & ENV_WORDS or (condition and Path(target).name not in code):
                    found.append(f"{where} starts {target}, code kept outside the codebase")
            elif kind == "module" and top not in local and top not in sys.stdlib_module_names \
                    and any(p.startswith("/") for p in outside):
                found.append(f"{where} starts the module {target} from {outside[0]}, code that is not in the codebase")
            elif kind == "file" and condition and Path(target).name not in code:
                found.append(f"{where} starts {target} on some hosts only, code that is not in the codebase")
        if condition and _changes_code(command, code):
            found.append(f"{where} runs `{command.text}` only on some deploys (when {_short(condition)}), so they run "
                         "code no commit holds")
    return found


def _short(condition: str) -> str:
    text = " ".join(condition.replace("SUBST", "$(…)").split())
    text = re.sub(r"^(if|elif|while|until)\s+", "", text)
    return text if len(text) <= 60 else text[:57] + "…"


def _patches(ctx: CheckContext, code: set[str]) -> list[str]:
    """Files of the folder that hold a patch to a file of the app (--- a/shortly.py / +++ b/shortly.py): a change
    to the code kept beside the history instead of in it."""
    found = []
    for path, text in _all_text(ctx.path):
        if path.suffix == ".py":
            continue
        targets = re.findall(r"(?m)^(?:\+\+\+|---) (?:[ab]/)?(\S+)|^diff --git a/(\S+) ", text)
        patched = sorted({Path(t).name for pair in targets for t in pair if t and Path(t).name in code})
        if patched and re.search(r"(?m)^@@ ", text):
            found.append(f"{rel(path, ctx.path)}, a patch to {patched[0]} kept beside the code")
    return found


def _env_branches(ctx: CheckContext) -> list[str]:
    """Branches named for a deploy that hold commits of the app's code that HEAD does not have. A branch named
    for a developer's own work (dev, feature/…) may be ahead: its commits are not deployed yet."""
    listed = _git(ctx.path, "for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/remotes")
    found = []
    for branch in listed.stdout.split():
        if not set(_words(branch.split("/")[-1])) & DEPLOY_WORDS:
            continue
        ahead = _git(ctx.path, "log", "--format=%h", f"HEAD..{branch}", "--", ".").stdout.split()
        if ahead:
            found.append(f"the branch {branch}, {len(ahead)} commit(s) of code that HEAD does not have")
    return found


@check("codebase.single_codebase", factor=1, title="No per-environment copies of the app",
       hint="Fold what differs into the one codebase and delete the copy: deploys differ by config, not by code. "
            "Then make the deploy script and the runbook name the one codebase.")
def single_codebase(ctx: CheckContext) -> str:
    """No file of the folder, whatever its name, folder or extension, is another file of the app for one
    environment (named for it, mostly the same lines, or a patch to it); no branch named for a deploy carries
    code of its own; no script starts a per-environment copy (as a file, a module or a WSGI app) or changes the
    code on some hosts only; and no runbook tells the operator to run or edit a copy."""
    expected = "Expected: one codebase; deploys differ only in config."
    code = {Path(p).name for p in python_files(ctx.path)}
    copies = _copies(ctx) + _patches(ctx, code)
    if copies:
        raise CheckFailed(f"Seen: {listing(copies, 3)}.\n{expected}")
    branches = _env_branches(ctx)
    if branches:
        raise CheckFailed(f"Seen: {listing(branches, 2)}.\n{expected} A branch per deploy is a copy of the code "
                          "by other means: every deploy runs a commit of the same history.")
    legacy = _copy_names(ctx, code)

    def is_copy(base: str) -> bool:
        return base not in code and (base in legacy or _variant_of(base, code) is not None)

    local = {Path(rel(p, ctx.path)).parts[0].removesuffix(".py") for p in python_files(ctx.path)}
    scripts = _script_problems(ctx, is_copy, code, local)
    if scripts:
        raise CheckFailed(f"Seen: {listing(scripts, 2)}.\n{expected} Every deploy runs a commit of the one "
                          "codebase, unchanged.")
    mentions = _mentions_of_copies(ctx, is_copy)
    if mentions:
        raise CheckFailed(f"Seen: {listing(mentions, 3)}, a per-environment copy of the app that is not in the "
                          f"codebase.\n{expected} Every script and the runbook run the one codebase.")
    return f"one codebase: {len(code)} Python file(s), no copy of one for an environment, no branch per deploy"


def _copy_names(ctx: CheckContext, code: set[str]) -> set[str]:
    """The names of the catalogue's legacy per-environment copies (shortly_prod.py); any other is found by its
    name: an app file's name with a deploy's word (shortly-staging.py, shortly_prd.py)."""
    if not ctx.catalogue:
        return set()
    return {p.name for p in ctx.catalogue.legacy.glob("*.py") if _variant_of(p.name, code | {"shortly.py"})} - code


# -- what production's copy had ------------------------------------------------------------------------------

PASTED = [("  {url} \n", "spaces and a newline around it"), ("HTTP://{rest}", "an upper-case scheme"),
          ("\t Http://{rest}  ", "a tab and a mixed-case scheme")]


def _production_base(ctx: CheckContext) -> str | None:
    """The short-URL base that production's copy (the legacy shortly_prod.py) used, read from its code."""
    if not ctx.catalogue:
        return None
    for path in ctx.catalogue.legacy.glob("*.py"):
        tree = parse(path) if _variant_of(path.name, {"shortly.py"}) else None
        for node in tree.body if tree else ():
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "SHORT_URL_BASE" for t in node.targets) \
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
    return None


# Calls whose string arguments are words for people (a message, a log line), not a setting.
MESSAGE_CALLS = {"print", "debug", "info", "warning", "warn", "error", "exception", "critical", "log", "write"}


def _setting_strings(path: Path) -> list[str]:
    """The strings of a Python file that can set something: not a docstring or another string standing alone as a
    statement, and not the text of a message (print, a log call)."""
    tree = parse(path)
    if tree is None:
        return []
    words = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in MESSAGE_CALLS:
                words |= {id(sub) for arg in [*node.args, *(k.value for k in node.keywords)] for sub in ast.walk(arg)}
    return [value for value, node in strings(tree) if id(node) not in words and value]


@check("codebase.prod_fix_kept", factor=1, title="What production's copy had is in the one codebase",
       hint="The prod copy accepted pasted links with spaces around them or an upper-case scheme, through the API "
            "and the form alike, and built short URLs on the production domain: carry both into shortly.py.")
def prod_fix_kept(ctx: CheckContext) -> str:
    """The one codebase does what production's copy did: it accepts a pasted, untidy link (spaces, an upper-case
    scheme) through the API and through the form alike, and it builds short URLs on production's domain, by
    following the address it was reached at or from production's setting in the code."""
    with TestPage() as page:
        app = serve(ctx)
        target = page.url("/pasted")
        for form, what in PASTED:
            pasted = form.format(url=target, rest=target.removeprefix("http://"))
            made = app.post("/api/links", json={"url": pasted})
            stored = made.json().get("url") if made.status_code == 201 else None
            if stored != target:
                seen = f"got {made.status_code}" if stored is None else \
                    f"was stored as {stored.replace(page.url(), '<page>/')!r}"
                raise CheckFailed(f"Seen: a pasted link with {what} {seen} at POST /api/links.\nExpected: 201 and "
                                  "the tidy URL, as the production copy did: its hot-fix belongs in the one codebase.")
        code = shorten(app, "  " + target.replace("http://", "HTTP://", 1) + " ", where="the form")
        shown = app.get(f"/api/links/{code}")
        if shown.status_code != 200 or shown.json().get("url") != target:
            raise CheckFailed("Seen: a pasted link sent through the form (POST /shorten) was not stored tidy.\n"
                              "Expected: the form and the API accept the same links: one fix, in the code both use.")
        host = "shortly.example.invalid"
        short_url = create_link(app, target, client=None).get("short_url", "")
        followed = app.post("/api/links", json={"url": target}, headers={"Host": host})
        follows = followed.status_code == 201 and urlsplit(followed.json().get("short_url", "")).hostname == host
    base = _production_base(ctx)
    if follows:
        return "pasted, untidy links are tidied by the API and the form alike, and short URLs follow the address used"
    if base and any(base.rstrip("/") in value for path in python_files(ctx.path) for value in _setting_strings(path)):
        return f"pasted, untidy links are tidied by the API and the form alike, and production's base {base} is in the code"
    raise CheckFailed(f"Seen: short URLs start {short_url.rsplit('/', 1)[0] + '/'!r} whatever address the app is "
                      f"reached at, and production's base{' ' + base if base else ''} is nowhere in the code.\n"
                      "Expected: the setting production's copy had, carried into the one codebase (or short URLs "
                      "built from the address the app was reached at).")
