"""Factor III, config: store config in the environment, one variable per setting.

The evidence: the app started with two configs (each must show its own, on every page, and no debugger),
without its required config (it must stop at once, also in debug mode), with a deploy's name set and asked
for at a deploy's address (nothing may change), and with no tokens (none built in may work); the app's own
way of starting (`python shortly.py`), run with its debugger patched out; and every file of the codebase read
for secrets and for settings grouped by a deploy's name, as code (the syntax tree, through every alias, its
comments and docstrings too) and as text (settings files read as TOML, YAML, JSON or INI).
"""

from __future__ import annotations

import ast
import json
import re
import secrets
import sqlite3
import tomllib
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from ..http import Client, json_of
from ..process import free_port
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import create_link, shorten
from .attached import database_env, serve
from .runbook import EXAMPLE, RUNBOOK, runbook_truth
from .secret_scan import secret_findings
from .shell import Command, commands
from .source import (Module, app_module_file, constant_text, env_file_names, env_values, environment_reads,
                     python_files, rel, string_values, strings, text_files)
from .text import listing, tail

REQUIRED = "SHORTLY_SECRET_KEY"
LEVEL = "SHORTLY_LOG_LEVEL"
# Names a deploy goes by, and the variables that usually carry one.
DEPLOY_NAMES = {"production", "prod", "staging", "stage", "development", "dev", "test", "testing", "qa", "uat",
                "local", "live", "preprod", "sandbox", "demo"}
DEPLOY_NAME_VARIABLES = ["SHORTLY_ENV", "ENV", "APP_ENV", "ENVIRONMENT", "FLASK_ENV", "DEPLOY_ENV", "STAGE",
                         "SHORTLY_ENVIRONMENT", "SHORTLY_STAGE", "SHORTLY_DEPLOY", "DEPLOYMENT", "NODE_ENV", "RAILS_ENV"]
ENVISH = re.compile(r"(?i)^_*(env|environment|stage|deploy\w*|app_env|flask_env|\w+_env|\w+_environment|mode|profile|"
                    r"tier|host|hostname|node|machine|server_name)$")
HOSTNAME_SOURCES = ("socket.gethostname", "socket.getfqdn", "socket.gethostbyname", "platform.node", "platform.uname",
                    "os.uname")
CONFIG_LOADERS = {"from_object", "from_pyfile", "from_file", "from_envvar", "load_dotenv", "dotenv_values", "open",
                  "import_module", "__import__", "read", "read_text", "safe_load", "load"}
# Settings that could switch on a fallback for a missing key "while developing": all of them at once.
LAX_ENV = {"SHORTLY_DEBUG": "true", "SHORTLY_TESTING": "true", "FLASK_DEBUG": "1",
           **{name: "development" for name in DEPLOY_NAME_VARIABLES}}
DEBUG_PROBE = r'''
import json, runpy, sys
import werkzeug.serving
seen = {"served": False, "debugger": False, "app_debug": None}
def wrapped(application):
    # werkzeug's debugger anywhere in the WSGI stack: app.wsgi_app = DebuggedApplication(...), or around the app
    try:
        from werkzeug.debug import DebuggedApplication
    except ImportError:
        return False
    todo, looked = [application], set()
    while todo and len(looked) < 20:
        item = todo.pop()
        if item is None or id(item) in looked:
            continue
        looked.add(id(item))
        if isinstance(item, DebuggedApplication):
            return True
        todo += [vars(item).get(name) for name in ("wsgi_app", "app", "application") if hasattr(item, "__dict__")]
    return False
def run_simple(hostname, port, application, use_reloader=False, use_debugger=False, *args, **kwargs):
    seen.update(served=True, debugger=bool(use_debugger) or wrapped(application),
                app_debug=bool(getattr(application, "debug", False)))
    raise SystemExit(0)
werkzeug.serving.run_simple = run_simple
sys.argv = [sys.argv[1]]
try:
    found = runpy.run_path(sys.argv[0], run_name="__main__")
    if seen["app_debug"] is None and hasattr(found.get("app"), "debug"):
        seen["app_debug"] = bool(found["app"].debug)
        seen["debugger"] = wrapped(found["app"])
except SystemExit:
    pass
print("FACTORLAB-DEBUG " + json.dumps(seen), flush=True)
'''


def _distinct_env(root: Path, name: str) -> dict[str, str]:
    return {
        REQUIRED: f"key-{name}-{secrets.token_hex(8)}",
        "SHORTLY_DATABASE": str(root / f"{name}.db"),
        "DATABASE_URL": f"sqlite:///{root / name}.db",  # from factor IV on, the database is attached by URL
        "SHORTLY_PREVIEW_TOKEN": f"token-{name}-{secrets.token_hex(6)}",
    }


def _session_payload(cookie: str | None, secret: str) -> dict | None:
    """Decode a Flask session cookie if it was signed with secret, else None."""
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface

    probe = Flask("factorlab-probe")
    probe.secret_key = secret
    serializer = SecureCookieSessionInterface().get_signing_serializer(probe)
    try:
        return serializer.loads(cookie) if cookie else None
    except Exception:
        return None


def sqlite_codes(database: Path) -> set[str]:
    """The link codes in an SQLite file, read-only (empty when there is no file or no table)."""
    if not database.exists():
        return set()
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
            return {row[0] for row in conn.execute("SELECT code FROM links")}
    except sqlite3.Error:
        return set()


@check("config.fails_fast", factor=3, title="Missing required config stops the app at once",
       hint=f"Check for {REQUIRED} when the app starts; if it is missing or empty, print its name and exit non-zero.")
def fails_fast(ctx: CheckContext) -> str:
    """Started without SHORTLY_SECRET_KEY, with it set to nothing, and without it in debug mode on a box that
    calls itself development, the app exits at once with a non-zero code and a message naming the variable (no
    default key, no key made up at random, no "dev" key while debugging)."""
    expected = f"Expected: exit at once with a non-zero code and a message naming {REQUIRED}."
    for said, env in ((f"without {REQUIRED}", {}), (f"with an empty {REQUIRED}", {REQUIRED: ""}),
                      (f"without {REQUIRED}, in debug mode on a development box (SHORTLY_DEBUG=true, "
                       "SHORTLY_ENV=development, …)", LAX_ENV)):
        done = ctx.runner.run_to_exit(env)
        if done.serving:
            raise CheckFailed(f"Seen: {said} the app started and served requests.\n{expected}")
        if done.code is None:
            raise CheckFailed(f"Seen: {said} the app neither served nor exited.\n{expected}")
        if done.code == 0:
            raise CheckFailed(f"Seen: {said} the app exited with code 0, as if all was well.\n{expected}")
        if REQUIRED not in done.output:
            raise CheckFailed(f"Seen: {said} the app exited with code {done.code}, but its output does not name "
                              f"{REQUIRED}{tail(done.output)}\n{expected}")
    return (f"without {REQUIRED} (also in debug mode), or with it empty, the app exits with a non-zero code and "
            "names the variable")


ACCESS_LOG = re.compile(r'"(GET|POST|HEAD|PUT|PATCH|DELETE|OPTIONS) /\S* HTTP/')


def _log_lines(app, code: str) -> int:
    """How many lines the app logged about a link (in what it printed or the files it wrote), leaving out the
    web server's access log, which names every path whatever the log level."""
    texts = [app.output(), *(data.decode(errors="replace") for data in app.written().values())]
    return sum(code in line and not ACCESS_LOG.search(line) for text in texts for line in text.splitlines())


# werkzeug's debugger answers this itself, in front of the app: its script.
DEBUGGER_PATH = "/?__debugger__=yes&cmd=resource&f=debugger.js"


def _debugger_answers(app) -> bool:
    """Does werkzeug's interactive debugger sit in front of the running app (it serves its own script)?"""
    answer = app.get(DEBUGGER_PATH)
    return answer.status_code == 200 and "javascript" in answer.headers.get("Content-Type", "")


def _short_urls_elsewhere(app, code: str) -> str | None:
    """Where a page of the running app (the link's stats page, the home page with the visitor's recent links)
    shows the link's short URL on an address other than the one the app was reached at: 'GET /: http://…'."""
    for path in (f"/stats/{code}", "/"):
        answer = app.get(path)
        text = answer.text if answer.status_code == 200 else ""
        for found in re.finditer(rf"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>/]+)/{re.escape(code)}(?![\w-])", text):
            base = urlsplit(found[1])
            if (base.hostname, base.port) != ("127.0.0.1", app.port):
                port = f":{'<its port>' if base.port == app.port else '<another port>'}" if base.port else ""
                return f"GET {path.replace(code, '<code>')}: {base.scheme}://{base.hostname}{port}/<code>"
    return None


def _debug_seen(ctx: CheckContext, env: dict[str, str]) -> dict:
    """Run the app the way it starts itself (`python shortly.py`), with werkzeug's server patched out: did it
    start the debugger, and is the app in debug mode?"""
    # with a PORT, as a platform starts it (from factor VII on the app wants one; the probe serves nothing)
    done = ctx.runner.run_command(["-c", DEBUG_PROBE, app_module_file(ctx)], {"PORT": str(free_port()), **env})
    found = re.search(r"FACTORLAB-DEBUG (\{.*\})", done.output)
    if not found:
        raise CheckFailed(f"Seen: `python {app_module_file(ctx)}` {done.ended()}{tail(done.output)}\n"
                          "Expected: the app's own way of starting it works.")
    return json.loads(found[1])


@check("config.from_environment", factor=3, title="Same code, two environments, two behaviours",
       hint="Read each setting from its own environment variable: SHORTLY_SECRET_KEY, SHORTLY_DATABASE, "
            "SHORTLY_PREVIEW_TOKEN, SHORTLY_DEBUG and SHORTLY_LOG_LEVEL; build short URLs from the address the "
            "app is reached at.", timeout=60)
def from_environment(ctx: CheckContext) -> str:
    """Two instances of the same code with different environments each sign cookies with their own key, store
    links in their own database, send their own preview token, show short URLs on their own address (the API,
    the stats page, the home page) and log as much as their SHORTLY_LOG_LEVEL says; and SHORTLY_DEBUG alone
    decides whether the app runs with the debugger (served with SHORTLY_DEBUG=false, werkzeug's debugger must
    not answer; started its own way, it is on only with true)."""
    shared = ctx.runner.shared_dir()  # the app writes its database there, the check reads it
    with TestPage() as page:
        envs = {"blue": {**_distinct_env(shared, "blue"), LEVEL: "DEBUG", "SHORTLY_DEBUG": "false"},
                "green": {**_distinct_env(shared, "green"), LEVEL: "WARNING", "SHORTLY_DEBUG": "false"}}
        logged = {}
        for name, env in envs.items():
            app = serve(ctx, env)
            link = create_link(app, page.url(f"/{name}"))
            cookie = app.client.cookies.get("session")
            short = urlsplit(link.get("short_url", ""))
            elsewhere = _short_urls_elsewhere(app, link["code"])
            debugger = _debugger_answers(app)
            app.stop()
            if debugger:
                raise CheckFailed("Seen: with SHORTLY_DEBUG=false the running app answered a request for werkzeug's "
                                  f"debugger ({DEBUGGER_PATH.split('&f=')[0]}…) with its script: the interactive "
                                  "debugger runs in every deploy.\nExpected: debug mode from SHORTLY_DEBUG alone: "
                                  "never on in a deploy that says false.")
            if elsewhere:
                raise CheckFailed(f"Seen: an instance reached at 127.0.0.1:<its port> showed the short URL on "
                                  f"{elsewhere}.\nExpected: short URLs on the address the app was reached at "
                                  "(request.host_url), on every page: a host name or port written in the code is the "
                                  "same for every deploy.")
            logged[name] = _log_lines(app, link["code"])
            if _session_payload(cookie, env[REQUIRED]) is None:
                raise CheckFailed(f"Seen: the session cookie is not signed with the {REQUIRED} the app was given.\n"
                                  "Expected: the app's SECRET_KEY comes from the environment.")
            if link["code"] not in sqlite_codes(Path(env["SHORTLY_DATABASE"])):
                raise CheckFailed("Seen: the new link is not in the SQLite file named by SHORTLY_DATABASE "
                                  "(or, from factor IV on, DATABASE_URL).\n"
                                  "Expected: the database path comes from the environment.")
            sent = [h.get("Authorization") for h in page.headers_for(f"/{name}")]
            if f"Bearer {env['SHORTLY_PREVIEW_TOKEN']}" not in sent:
                raise CheckFailed(f"Seen: the preview request carried Authorization {sent[-1] if sent else None!r}.\n"
                                  "Expected: 'Bearer ' followed by the SHORTLY_PREVIEW_TOKEN the app was given.")
            if (short.hostname, short.port) != ("127.0.0.1", app.port):
                raise CheckFailed(f"Seen: an instance reached at 127.0.0.1:<its port> made the short URL "
                                  f"{short.scheme}://{short.hostname}{':<another port>' if short.port else ''}/….\n"
                                  "Expected: short URLs on the address the app was reached at (request.host_url): "
                                  "a host name or port written in the code is the same for every deploy.")
    if not logged["blue"] or logged["green"]:
        raise CheckFailed(f"Seen: with {LEVEL}=DEBUG the new link showed up in {logged['blue']} log line(s), "
                          f"with {LEVEL}=WARNING in {logged['green']}.\nExpected: the log level from {LEVEL}: "
                          "DEBUG logs each new link, WARNING does not.")
    # a database under both names states have used (from factor X on the app refuses to start without one)
    base = {REQUIRED: "factorlab-check-not-a-secret", "SHORTLY_DATABASE": "shortly.db",
            "DATABASE_URL": "sqlite:///shortly.db"}
    off, on = (_debug_seen(ctx, {**base, "SHORTLY_DEBUG": value}) for value in ("false", "true"))
    if off["debugger"] or off["app_debug"]:
        raise CheckFailed("Seen: with SHORTLY_DEBUG=false, `python shortly.py` starts "
                          + ("werkzeug's interactive debugger" if off["debugger"] else "the app in debug mode")
                          + ".\nExpected: debug mode from SHORTLY_DEBUG alone: never on in a deploy that says false.")
    if not (on["debugger"] or on["app_debug"]):
        raise CheckFailed("Seen: with SHORTLY_DEBUG=true the app starts without debug mode.\n"
                          "Expected: SHORTLY_DEBUG=true turns debug mode on: the setting comes from the environment.")
    return ("two instances, two configs: each used its own key, database, preview token, address, log level; "
            "SHORTLY_DEBUG alone turns debug mode on and off")


@check("config.no_secrets_in_source", factor=3, title="No secrets in the source",
       hint="Move every key, token and password into an environment variable, with no default in the code; keep "
            "only placeholders in .env.example, and keep .env out of git.", timeout=60)
def no_secrets_in_source(ctx: CheckContext) -> str:
    """No file of the codebase holds a secret (in code, comments, config files or docs; a value known to have
    leaked, a value given to a secret's name or kept with it in a tuple, a default for one, a password in a URL),
    a local .env is never committed, and the app started with no tokens configured sends no built-in token and
    opens its purge endpoint to none of the strings its code spells out."""
    findings = secret_findings(ctx)
    if findings:
        raise CheckFailed(f"Seen: {listing(findings, 4)}.\nExpected: no secret values in the code or docs; "
                          "they arrive as environment variables.")
    with TestPage() as page:
        app = serve(ctx)
        create_link(app, page.url("/no-token"))
        sent = [h.get("Authorization") for h in page.headers_for("/no-token")]
        if any(sent):
            raise CheckFailed(f"Seen: started with no SHORTLY_PREVIEW_TOKEN, the app sent Authorization {sent[0]!r} "
                              "with its preview request: a token built into the code.\nExpected: no token "
                              "configured, no Authorization header.")
        opened = next((w for w in _words_of_the_code(ctx.path)
                       if 200 <= app.get("/admin/purge", params={"token": w}).status_code < 300), None)
        if opened is not None:
            raise CheckFailed(f"Seen: started with no SHORTLY_ADMIN_TOKEN, the purge endpoint opened with "
                              f"token={opened[:4]}… (a string written in the code): a token built into the code."
                              "\nExpected: no token configured, the purge endpoint refuses everyone.")
    return "no secret values in the codebase, and no token built into the app"


def _words_of_the_code(root: Path) -> list[str]:
    """Every string the app's code spells out that could be a token (one word, 4 to 200 characters)."""
    found = {value for path in python_files(root) for value in string_values(path)
             if value and 4 <= len(value) <= 200 and not any(c.isspace() for c in value)}
    return sorted(found)


# -- settings grouped by a deploy's name ---------------------------------------------------------------------

# Files and commands that give the machine's name, like socket.gethostname().
HOSTNAME_FILES = ("/etc/hostname", "/proc/sys/kernel/hostname")
HOSTNAME_PROGRAMS = {"hostname", "uname", "hostnamectl"}
# What a request says about the address it was sent to.
REQUEST_ADDRESS = {f"flask.request.{name}" for name in ("host", "host_url", "url", "url_root", "base_url", "root_url",
                                                         "server", "headers", "environ", "origin", "referrer")}
HOST_NAME = re.compile(r"(?i)^(?:[a-z0-9-]+\.)+[a-z]{2,}\.?(?::\d+)?$|^localhost(?::\d+)?$|^\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?$")
STRONG_DEPLOY_NAMES = DEPLOY_NAMES - {"test", "testing", "local"}


def _deploy_name(text: str | None, *, part: bool = False) -> bool:
    """Is the text a deploy's name ("production", "prod-", "Staging")? With part, is any word of it one (a
    prefix such as "prod-web" or a suffix such as ".staging.internal")?"""
    if text is None:
        return False
    words = re.findall(r"[a-z]+", text.lower())
    return any(w in DEPLOY_NAMES for w in words) if part else text.strip(" -_.:/*").lower() in DEPLOY_NAMES


def _names_deploy(node: ast.AST, *, part: bool = False) -> bool:
    """Is this a deploy's name spelled out, or a collection of them?"""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_names_deploy(e, part=part) for e in node.elts)
    return _deploy_name(constant_text(node), part=part)


def _names_host(node: ast.AST) -> str | None:
    """The host name an expression spells out ("shortly.example.com", ".example.com", "localhost"), or None."""
    for element in node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]:
        text = constant_text(element)
        if text and (HOST_NAME.match(text.strip().lstrip(".")) or _deploy_name(text)):
            return text
    return None


def _config_derived(module: Module, tainted: set[str], node: ast.AST) -> bool:
    """Does the expression read config or the machine's name (directly, or through a name set from them)?"""
    for sub in ast.walk(node):
        name = module.qualified(sub) or ""
        if name.startswith(("os.environ", "os.getenv", *HOSTNAME_SOURCES)):
            return True
        if isinstance(sub, ast.Name) and (sub.id in tainted or ENVISH.match(sub.id)):
            return True
        if isinstance(sub, ast.Attribute) and (sub.attr == "config" or ENVISH.match(sub.attr)):
            return True
        if isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Attribute) and sub.value.attr == "config":
            return True
    return False


def _address_derived(module: Module, tainted: set[str], node: ast.AST) -> bool:
    """Does the expression read the address a request was sent to (request.host, its Host header, its URL)?"""
    for sub in ast.walk(node):
        name = module.qualified(sub) or ""
        if name in REQUEST_ADDRESS or isinstance(sub, ast.Name) and sub.id in tainted:
            return True
    return False


def _tainted(module: Module, derived=_config_derived) -> set[str]:
    """Names the module sets from what `derived` recognises (config or the machine's name, by default),
    followed through assignments until stable."""
    names: set[str] = set()
    while True:
        before = len(names)
        for node in ast.walk(module.tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None \
                    and derived(module, names, node.value):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names |= {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
        if len(names) == before:
            return names


def _machine_name_reads(module: Module, where: str) -> list[str]:
    """Where the code asks for the machine's name: socket.gethostname() and friends, /etc/hostname, `hostname`."""
    found = []
    for node, name in module.references():
        if name.startswith(HOSTNAME_SOURCES):
            found.append(f"{name} at {where}:{node.lineno} (the machine's name)")
    for value, node in strings(module.tree):
        if (value or "").strip() in HOSTNAME_FILES:
            found.append(f"{value.strip()} read at {where}:{getattr(node, 'lineno', '?')} (the machine's name)")
    for node, name in module.calls():
        if name.startswith(("subprocess.", "os.popen", "os.system", "os.exec", "os.spawn")) and node.args:
            first = node.args[0]
            words = (constant_text(first) or "").split() if not isinstance(first, (ast.List, ast.Tuple)) else \
                [constant_text(e) or "" for e in first.elts[:1]]
            if words and words[0].rsplit("/", 1)[-1] in HOSTNAME_PROGRAMS:
                found.append(f"`{words[0]}` run at {where}:{node.lineno} (the machine's name)")
    return found


def deploy_name_switches(root: Path) -> list[str]:
    """Where the code chooses settings by the machine's or the deploy's name, or by the address a request was
    sent to, read as code."""
    found = []
    for path in python_files(root):
        module = Module.read(path)
        if module is None:
            continue
        where = rel(path, root)
        tainted = _tainted(module)
        addressed = _tainted(module, _address_derived)
        found += _machine_name_reads(module, where)
        for node in ast.walk(module.tree):
            line = getattr(node, "lineno", "?")
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(_names_deploy(s) for s in sides) and any(_config_derived(module, tainted, s) for s in sides
                                                               if not _names_deploy(s)):
                    found.append(f"a comparison with a deploy's name at {where}:{line}")
                elif any(_address_derived(module, addressed, s) for s in sides) and any(_names_host(s) for s in sides):
                    host = next(_names_host(s) for s in sides if _names_host(s))
                    found.append(f"the address asked for compared with {host!r} at {where}:{line}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("startswith", "endswith", "get") and node.args \
                    and _names_deploy(node.args[0], part=node.func.attr != "get") \
                    and _config_derived(module, tainted, node.func.value):
                found.append(f"{node.func.attr}({constant_text(node.args[0])!r}) of a deploy's name at {where}:{line}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("startswith", "endswith") and node.args and _names_host(node.args[0]) \
                    and _address_derived(module, addressed, node.func.value):
                found.append(f"the address asked for compared with {_names_host(node.args[0])!r} at {where}:{line}")
            elif isinstance(node, ast.Dict):
                named = [k for k in node.keys if k is not None and _names_deploy(k)]
                if len(named) >= 2:
                    found.append(f"settings keyed by deploy names at {where}:{line}")
            elif isinstance(node, ast.ClassDef) and re.match(
                    r"(?i)(production|prod|staging|development|dev|testing|test|local|live)(config|settings)$", node.name):
                found.append(f"a class of settings for one deploy, {node.name}, at {where}:{line}")
            elif isinstance(node, ast.match_case) and _names_deploy(getattr(node.pattern, "value", ast.Pass())):
                found.append(f"a case for a deploy's name at {where}:{line}")
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in CONFIG_LOADERS \
                    and any(isinstance(a, (ast.JoinedStr, ast.BinOp)) and _config_derived(module, tainted, a)
                            for a in node.args):
                found.append(f"config loaded from a file named by the deploy at {where}:{line}")
    return found


def deploy_named_files(root: Path) -> list[str]:
    """Config files of the codebase named for one deploy (settings_prod.py, config/production.py, .env.staging)."""
    found = []
    for path in [p for p in python_files(root)] + [p for p in root.rglob(".env.*") if p.is_file()]:
        name = rel(path, root)
        words = {w.lower() for w in re.findall(r"[A-Za-z]+", name)}
        if name.endswith((".example", ".sample", ".template", ".dist")) or "test" in words or "tests" in words:
            continue
        if words & (DEPLOY_NAMES - {"test", "testing", "local"}) and (
                words & {"settings", "config", "conf", "env", "environments"} or Path(name).stem.lower() in DEPLOY_NAMES):
            found.append(f"{name}, settings for one deploy")
    return found


SETTINGS_FILES = (".toml", ".json", ".yaml", ".yml", ".ini", ".cfg", ".conf")
# Other tools' config, not the app's settings (a CI job named "test", a tox environment named "dev").
TOOL_FILES = {"pyproject.toml", "setup.cfg", "tox.ini", "pytest.ini", "mypy.ini", ".pre-commit-config.yaml",
              "package.json", "package-lock.json", ".gitlab-ci.yml", ".travis.yml", "docker-compose.yml",
              "docker-compose.yaml", "compose.yml", "compose.yaml", "environment.yml", "environment.yaml"}


def _sections(path: Path, text: str) -> list[list[str]]:
    """The names of sibling sections of a settings file (each a list: the keys of one table that open a table
    of their own), read as TOML, JSON, YAML or INI."""
    groups: list[list[str]] = []

    def walk(table) -> None:
        if isinstance(table, dict):
            groups.append([str(k) for k, v in table.items() if isinstance(v, dict)])
            for value in table.values():
                walk(value)

    if path.suffix == ".toml":
        try:
            walk(tomllib.loads(text))
        except tomllib.TOMLDecodeError:
            pass
    elif path.suffix == ".json":
        try:
            walk(json.loads(text))
        except ValueError:
            pass
    elif path.suffix in (".yaml", ".yml"):
        parents: list[tuple[int, str]] = []
        siblings: dict[tuple[str, ...], list[str]] = {}
        for line in text.splitlines():
            opened = re.match(r"^( *)([\w.-]+|\"[^\"]+\"|'[^']+')\s*:\s*(#.*)?$", line)
            if not opened:
                continue
            indent, key = len(opened[1]), opened[2].strip("\"'")
            parents = [(i, k) for i, k in parents if i < indent]
            siblings.setdefault(tuple(k for _, k in parents), []).append(key)
            parents.append((indent, key))
        groups += siblings.values()
    else:
        groups.append(re.findall(r"(?m)^\s*\[([^\]\n]+)\]\s*$", text))
    return groups


def deploy_sections(root: Path) -> list[str]:
    """Settings files of the codebase (TOML, JSON, YAML, INI) with a section per deploy ([development],
    [production])."""
    found = []
    for path, text in text_files(root):
        name = rel(path, root)
        if path.suffix not in SETTINGS_FILES or path.name in TOOL_FILES or any(
                part.startswith(".") for part in Path(name).parts[:-1]):
            continue
        for group in _sections(path, text):
            named = [k for k in group if _deploy_name(k)]
            if len(named) >= 2 and any(k.strip(" -_.").lower() in STRONG_DEPLOY_NAMES for k in named):
                found.append(f"{name}, a section per deploy ({', '.join(f'[{k}]' for k in named[:3])})")
                break
    return found


def deploy_hosts(ctx: CheckContext) -> list[str]:
    """The host names the runbook (the app's OPS.md, or the legacy one) says deploys are reached at."""
    texts = [ctx.path / RUNBOOK] + ([ctx.catalogue.legacy / RUNBOOK] if ctx.catalogue else [])
    hosts = []
    for path in texts:
        text = path.read_text(errors="replace") if path.is_file() else ""
        for host in re.findall(r"(?i)\bhttps?://([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?::\d+)?(?:[/\s`)\]>\"']|$)", text):
            if not re.match(r"^(\d+\.){3}\d+$", host) and host.lower() not in hosts:
                hosts.append(host.lower())
    return hosts[:2]


def _ttl_minutes(shown: dict) -> int | None:
    """How long a link lives, from its created_at and expires_at, in minutes; None when they do not say."""
    try:
        lived = datetime.fromisoformat(shown["expires_at"]) - datetime.fromisoformat(shown["created_at"])
    except (KeyError, TypeError, ValueError):
        return None
    return round(lived.total_seconds() / 60)


def _behaviour(ctx: CheckContext, env: dict[str, str], page: TestPage, label: str,
               hosts: tuple[str | None, ...] = (None,)) -> list[dict]:
    """What one instance shows a visitor and the operator, with random parts left out: the answers to a link
    made through the API and the form, how long a link lives, the cookies it sets, the token it sends, how much
    it logs; once for each host a visitor asks for (None: the address it is reached at)."""
    app = serve(ctx, env)
    runs = []
    for number, host in enumerate(hosts):
        name, seen = f"{label}-{number}", {}
        with Client() as client:
            if host:
                client.session.headers["Host"] = host
            link = create_link(app, page.url(f"/{name}"), client=client)
            seen["api"] = sorted(k for k in link)
            code = shorten(app, page.url(f"/{name}-form"), client=client)
            for path in ("/", f"/stats/{code}", f"/api/links/{link['code']}", f"/api/links/{code}", "/api/recent",
                         "/nonexistent-link"):
                answer = client.get(app, path)
                key = path.replace(code, "<form code>").replace(link["code"], "<code>")
                seen[key] = (answer.status_code, sorted(json_of(answer)) if "json" in answer.headers.get(
                    "Content-Type", "") else answer.headers.get("Content-Type", "").split(";")[0])
                if path.startswith("/api/links/"):
                    seen[f"the lifetime of {key.removeprefix('/api/links/')}"] = _ttl_minutes(json_of(answer))
            seen["cookie"] = sorted((c.name, c.secure, bool(c.expires), c.has_nonstandard_attr("HttpOnly"))
                                    for c in client.cookies)
        runs.append((seen, link["code"], name))
    app.stop()
    for seen, code, name in runs:
        seen["token"] = sorted({str(h.get("Authorization", "")).split(" ")[0] for h in page.headers_for(f"/{name}")})
        seen["logged"] = _log_lines(app, code) > 0
    return [seen for seen, _, _ in runs]


def _differences(one: dict, other: dict) -> list[str]:
    return sorted(key for key in one if one[key] != other.get(key))


@check("config.no_deploy_name_switch", factor=3, title="No setting chosen by the deploy's name",
       hint="Delete the hostname switch and do not trade it for `if SHORTLY_ENV == \"production\"` or a settings file "
            "with a [production] section: a name for the deploy that picks several settings at once is the same sin. "
            "Give each setting a variable of its own (the log level: SHORTLY_LOG_LEVEL).", timeout=60)
def no_deploy_name_switch(ctx: CheckContext) -> str:
    """Started with SHORTLY_ENV, ENV, APP_ENV, FLASK_ENV and friends set to "production", the app behaves exactly as
    without them (same answers, link lifetimes, cookies, preview token, logging), and so it does when asked for at
    the addresses the runbook gives the deploys (a Host header of shortly.example.com, say); and no code chooses a
    setting by the machine's name (socket.gethostname(), /etc/hostname), by a deploy's name (a comparison with
    "production", a table of settings per deploy, a class, a file or a section of a settings file for one
    deploy) or by the address asked for."""
    found = deploy_name_switches(ctx.path) + deploy_named_files(ctx.path) + deploy_sections(ctx.path)
    if found:
        raise CheckFailed(f"Seen: {listing(found, 3)}: settings chosen by which deploy this is.\nExpected: each "
                          "setting read from its own environment variable; no name for the deploy in the code.")
    shared = ctx.runner.shared_dir()
    base = {REQUIRED: "factorlab-check-not-a-secret", "SHORTLY_PREVIEW_TOKEN": "factorlab-token"}
    named = {name: "production" for name in DEPLOY_NAME_VARIABLES} | {"HOSTNAME": "prod-web-1"}
    hosts = deploy_hosts(ctx)
    with TestPage() as page:
        plain, *addressed = _behaviour(ctx, {**base, "SHORTLY_DATABASE": str(shared / "plain.db"),
                                             "DATABASE_URL": f"sqlite:///{shared / 'plain.db'}"}, page, "plain",
                                       (None, *hosts))
        production, = _behaviour(ctx, {**base, **named, "SHORTLY_DATABASE": str(shared / "named.db"),
                                       "DATABASE_URL": f"sqlite:///{shared / 'named.db'}"}, page, "named")
    differs = _differences(plain, production)
    if differs:
        raise CheckFailed(f"Seen: with SHORTLY_ENV=production (and ENV, APP_ENV, FLASK_ENV, … the same) the app "
                          f"behaved differently: {', '.join(differs)}.\nExpected: a deploy's name changes nothing: "
                          "each setting has a variable of its own.")
    for host, seen in zip(hosts, addressed):
        differs = _differences(plain, seen)
        if differs:
            raise CheckFailed(f"Seen: asked for as {host} (an address {RUNBOOK} gives a deploy) the app behaved "
                              f"differently from when asked for at 127.0.0.1: {', '.join(differs)}.\nExpected: the "
                              "address asked for changes nothing but the base of the short URLs: each setting has a "
                              "variable of its own.")
    return ("nothing chooses a setting by the machine's or the deploy's name, and naming the deploy (or asking for "
            "it at its address) changes nothing")


# -- .env.example and the runbook ----------------------------------------------------------------------------

def read_env_file(path: Path) -> dict[str, str]:
    """The KEY=value lines of a .env-style file (source.env_values)."""
    return env_values(path.read_text(errors="replace"))


@check("config.env_example", factor=3, title=".env.example documents the config and works",
       hint="List every variable the app reads in .env.example, each with a comment and a harmless placeholder "
            "(an optional one may be commented out: # NAME=value).")
def env_example(ctx: CheckContext) -> str:
    """.env.example names every variable the app reads (however it reads it: os.environ, getenv, or app.config
    filled by from_prefixed_env), and the app starts with its values."""
    path = ctx.path / EXAMPLE
    if not path.is_file():
        raise CheckFailed(f"Seen: no {EXAMPLE}.\nExpected: a {EXAMPLE} listing every variable the app reads, "
                          "with placeholder values.")
    reads = environment_reads(ctx.path)
    listed = env_file_names(path.read_text(errors="replace"))
    missing = sorted((set(reads) | {REQUIRED}) - listed)
    if missing:
        raise CheckFailed(f"Seen: the app reads {listing(missing, 4)} (at {reads.get(missing[0], 'start-up')}), "
                          f"which {EXAMPLE} does not list.\nExpected: every variable the app reads, so a newcomer "
                          "knows what to set.")
    values = read_env_file(path)
    app = serve(ctx, {**values, **database_env(ctx, "example")})  # where the database lives is not the question
    status = app.get("/").status_code
    if status != 200:
        raise CheckFailed(f"Seen: started with the values of {EXAMPLE}, GET / answered {status}.{app.last_words()}\n"
                          "Expected: 200: the example is a working starting point.")
    return f"{EXAMPLE} lists all {len(reads)} variable(s) the app reads, and the app starts with its values"


IN_PLACE = {"sed": r"^(-[a-zA-Z]*i|--in-place)", "perl": r"^-\w*i", "ruby": r"^-\w*i"}


def edits_code(command: Command) -> str | None:
    """The Python file a shell command changes, or None: edited in place (sed -i, perl -pi, awk -i inplace, ed),
    or written over (a redirection, cp, mv, install, tee or dd onto it)."""
    words, program = command.words, command.program
    files = [w for w in words[1:] if w.endswith(".py")]
    if files and (program in IN_PLACE and any(re.match(IN_PLACE[program], w) for w in words[1:])
                  or program in ("awk", "gawk") and "inplace" in words or program in ("ed", "ex")):
        return f"edits {files[-1]} in place"
    copies = program in ("cp", "mv", "install", "ln") and len(words) > 2 or program == "tee" and len(words) > 1
    targets = [*command.writes, *(words[-1:] if copies else []), *(w[3:] for w in words if program == "dd" and
                                                                  w.startswith("of="))]
    written = [t for t in targets if t.endswith(".py")]
    return f"writes over {written[0]}" if written else None


@check("config.runbook", factor=3, title="The runbook and the deploy script set config, not code",
       hint="Document every variable in OPS.md, drop the host-name magic from it, and let deploy.sh set "
            "SHORTLY_DEBUG=false in .env instead of editing shortly.py.")
def runbook(ctx: CheckContext) -> str:
    """No script of the app edits the code to change a setting (sed -i on a .py file, or a copy written over it:
    each script read as the commands it runs), OPS.md names every variable the app reads and no longer says that
    the app picks its settings from the host's name."""
    for path in [p for p in ctx.path.iterdir() if p.is_file() and (p.suffix in (".sh", "") or p.name == "Makefile")]:
        text = path.read_text(errors="replace")
        lines = text.splitlines()
        for command in commands(text.replace("\n\t", "\n") if path.name == "Makefile" else text):
            edit = edits_code(command)
            if edit:
                line = lines[command.line - 1].strip() if 0 < command.line <= len(lines) else command.text
                raise CheckFailed(f"Seen: {path.name}:{command.line} {edit} to change a setting: "
                                  f"`{line[:80]}`.\nExpected: settings live in the environment (.env), "
                                  "and a deploy changes them there, never in the code.")
    return runbook_truth(ctx, "03_config")
