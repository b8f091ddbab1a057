"""Factor III, config: store config in the environment, one variable per setting.

The evidence: the app started with two configs (each must show its own), without its required config (it
must stop at once), and with a deploy's name set (nothing may change); the app's own way of starting
(`python shortly.py`), run with its debugger patched out; and every file of the codebase read for secrets
and for settings grouped by a deploy's name, as code (the syntax tree, through every alias) and as text.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

from ..http import Client, json_of
from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .app import create_link, shorten
from .attached import database_env, serve
from .runbook import EXAMPLE, runbook_truth
from .secret_scan import secret_findings
from .source import (Module, app_module_file, constant_text, env_file_names, environment_reads, python_files, rel)
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
DEBUG_PROBE = r'''
import json, runpy, sys
import werkzeug.serving
seen = {"served": False, "debugger": False, "app_debug": None}
def run_simple(hostname, port, application, use_reloader=False, use_debugger=False, *args, **kwargs):
    seen.update(served=True, debugger=bool(use_debugger), app_debug=bool(getattr(application, "debug", False)))
    raise SystemExit(0)
werkzeug.serving.run_simple = run_simple
sys.argv = [sys.argv[1]]
try:
    found = runpy.run_path(sys.argv[0], run_name="__main__")
    if seen["app_debug"] is None and hasattr(found.get("app"), "debug"):
        seen["app_debug"] = bool(found["app"].debug)
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
    """Started without SHORTLY_SECRET_KEY, and with it set to nothing, the app exits at once with a non-zero
    code and a message naming the variable (no default key, no key made up at random)."""
    expected = f"Expected: exit at once with a non-zero code and a message naming {REQUIRED}."
    for label, env in (("without", {}), ("with an empty", {REQUIRED: ""})):
        done = ctx.runner.run_to_exit(env)
        said = f"{label} {REQUIRED}"
        if done.serving:
            raise CheckFailed(f"Seen: {said} the app started and served requests.\n{expected}")
        if done.code is None:
            raise CheckFailed(f"Seen: {said} the app neither served nor exited.\n{expected}")
        if done.code == 0:
            raise CheckFailed(f"Seen: {said} the app exited with code 0, as if all was well.\n{expected}")
        if REQUIRED not in done.output:
            raise CheckFailed(f"Seen: {said} the app exited with code {done.code}, but its output does not name "
                              f"{REQUIRED}{tail(done.output)}\n{expected}")
    return f"without {REQUIRED}, or with it empty, the app exits with a non-zero code and names the variable"


ACCESS_LOG = re.compile(r'"(GET|POST|HEAD|PUT|PATCH|DELETE|OPTIONS) /\S* HTTP/')


def _log_lines(app, code: str) -> int:
    """How many lines the app logged about a link (in what it printed or the files it wrote), leaving out the
    web server's access log, which names every path whatever the log level."""
    texts = [app.output(), *(data.decode(errors="replace") for data in app.written().values())]
    return sum(code in line and not ACCESS_LOG.search(line) for text in texts for line in text.splitlines())


def _debug_seen(ctx: CheckContext, env: dict[str, str]) -> dict:
    """Run the app the way it starts itself (`python shortly.py`), with werkzeug's server patched out: did it
    start the debugger, and is the app in debug mode?"""
    done = ctx.runner.run_command(["-c", DEBUG_PROBE, app_module_file(ctx)], env)
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
    links in their own database, send their own preview token, build short URLs on their own address and log
    as much as their SHORTLY_LOG_LEVEL says; and SHORTLY_DEBUG alone decides whether the app, started its own
    way, runs with the debugger."""
    shared = ctx.runner.shared_dir()  # the app writes its database there, the check reads it
    with TestPage() as page:
        envs = {"blue": {**_distinct_env(shared, "blue"), LEVEL: "DEBUG"},
                "green": {**_distinct_env(shared, "green"), LEVEL: "WARNING"}}
        logged = {}
        for name, env in envs.items():
            app = serve(ctx, env)
            link = create_link(app, page.url(f"/{name}"))
            cookie = app.client.cookies.get("session")
            short = urlsplit(link.get("short_url", ""))
            app.stop()
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
    base = {REQUIRED: "factorlab-check-not-a-secret", "SHORTLY_DATABASE": "shortly.db"}
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
    """No file of the codebase holds a secret (in code, config files or docs; a value known to have leaked, a
    value given to a secret's name, a default for one, a password in a URL), a local .env is never committed,
    and the app started with no tokens configured sends no built-in token."""
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
                          "with its preview request: a token built into the code.\nExpected: no token configured, "
                          "no Authorization header.")
    return "no secret values in the codebase, and no token built into the app"


# -- settings grouped by a deploy's name ---------------------------------------------------------------------

def _names_deploy(node: ast.AST) -> bool:
    """Is this a deploy's name spelled out, or a collection of them?"""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_names_deploy(e) for e in node.elts)
    text = constant_text(node)
    return text is not None and text.strip().lower() in DEPLOY_NAMES


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


def _tainted(module: Module) -> set[str]:
    """Names the module sets from config or the machine's name, followed through assignments until stable."""
    names: set[str] = set()
    while True:
        before = len(names)
        for node in ast.walk(module.tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None \
                    and _config_derived(module, names, node.value):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names |= {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
        if len(names) == before:
            return names


def deploy_name_switches(root: Path) -> list[str]:
    """Where the code chooses settings by the machine's or the deploy's name, read as code."""
    found = []
    for path in python_files(root):
        module = Module.read(path)
        if module is None:
            continue
        where = rel(path, root)
        tainted = _tainted(module)
        for node, name in module.references():
            if name.startswith(HOSTNAME_SOURCES):
                found.append(f"{name} at {where}:{node.lineno} (the machine's name)")
        for node in ast.walk(module.tree):
            line = getattr(node, "lineno", "?")
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(_names_deploy(s) for s in sides) and any(_config_derived(module, tainted, s) for s in sides
                                                               if not _names_deploy(s)):
                    found.append(f"a comparison with a deploy's name at {where}:{line}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("startswith", "endswith", "get") and node.args \
                    and _names_deploy(node.args[0]) and _config_derived(module, tainted, node.func.value):
                found.append(f"{node.func.attr}({constant_text(node.args[0])!r}) of a deploy's name at {where}:{line}")
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


def _behaviour(ctx: CheckContext, env: dict[str, str], page: TestPage, label: str) -> dict:
    """What one instance shows a visitor and the operator, with random parts left out: the answers to a link
    made through the API and the form, the cookies it sets, the token it sends, how much it logs."""
    app = serve(ctx, env)
    seen: dict = {}
    with Client() as client:
        link = create_link(app, page.url(f"/{label}"), client=client)
        seen["api"] = sorted(k for k in link)
        code = shorten(app, page.url(f"/{label}-form"), client=client)
        for path in ("/", f"/stats/{code}", f"/api/links/{link['code']}", "/api/recent", "/nonexistent-link"):
            answer = client.get(app, path)
            seen[path.replace(code, "<code>").replace(link["code"], "<code>")] = (
                answer.status_code, sorted(json_of(answer)) if "json" in answer.headers.get("Content-Type", "") else
                answer.headers.get("Content-Type", "").split(";")[0])
        seen["cookie"] = sorted((c.name, c.secure, bool(c.expires), c.has_nonstandard_attr("HttpOnly"))
                                for c in client.cookies)
    app.stop()
    seen["token"] = sorted({str(h.get("Authorization", "")).split(" ")[0] for h in page.headers_for(f"/{label}")})
    seen["logged"] = _log_lines(app, link["code"]) > 0
    return seen


@check("config.no_deploy_name_switch", factor=3, title="No setting chosen by the deploy's name",
       hint="Delete the hostname switch and do not trade it for `if SHORTLY_ENV == \"production\"`: a name for the "
            "deploy that picks several settings at once is the same sin. Give each setting a variable of its own "
            "(the log level: SHORTLY_LOG_LEVEL).", timeout=60)
def no_deploy_name_switch(ctx: CheckContext) -> str:
    """Started with SHORTLY_ENV, ENV, APP_ENV, FLASK_ENV and friends set to "production", the app behaves exactly as
    without them (same answers, cookies, preview token, logging); and no code chooses a setting by the machine's
    name or by a deploy's name (a comparison with "production", a table of settings per deploy, a class or a
    file of settings for one deploy)."""
    found = deploy_name_switches(ctx.path) + deploy_named_files(ctx.path)
    if found:
        raise CheckFailed(f"Seen: {listing(found, 3)}: settings chosen by which deploy this is.\nExpected: each "
                          "setting read from its own environment variable; no name for the deploy in the code.")
    shared = ctx.runner.shared_dir()
    base = {REQUIRED: "factorlab-check-not-a-secret", "SHORTLY_PREVIEW_TOKEN": "factorlab-token"}
    named = {name: "production" for name in DEPLOY_NAME_VARIABLES} | {"HOSTNAME": "prod-web-1"}
    with TestPage() as page:
        plain = _behaviour(ctx, {**base, "SHORTLY_DATABASE": str(shared / "plain.db"),
                                 "DATABASE_URL": f"sqlite:///{shared / 'plain.db'}"}, page, "plain")
        production = _behaviour(ctx, {**base, **named, "SHORTLY_DATABASE": str(shared / "named.db"),
                                      "DATABASE_URL": f"sqlite:///{shared / 'named.db'}"}, page, "named")
    differs = sorted(key for key in plain if plain[key] != production.get(key))
    if differs:
        raise CheckFailed(f"Seen: with SHORTLY_ENV=production (and ENV, APP_ENV, FLASK_ENV, … the same) the app "
                          f"behaved differently: {', '.join(differs)}.\nExpected: a deploy's name changes nothing: "
                          "each setting has a variable of its own.")
    return "nothing chooses a setting by the machine's or the deploy's name, and naming the deploy changes nothing"


# -- .env.example and the runbook ----------------------------------------------------------------------------

def read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=value lines, skipping comments and blank lines."""
    values = {}
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


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


EDITS_CODE = re.compile(r"\b(sed|perl)\b[^|;&]*\s(-[a-zA-Z]*i\S*|--in-place\S*)[^|;&]*\.py\b")


@check("config.runbook", factor=3, title="The runbook and the deploy script set config, not code",
       hint="Document every variable in OPS.md, drop the host-name magic from it, and let deploy.sh set "
            "SHORTLY_DEBUG=false in .env instead of editing shortly.py.")
def runbook(ctx: CheckContext) -> str:
    """No script of the app edits the code to change a setting (sed -i on a .py file), OPS.md names every
    variable the app reads and no longer says that the app picks its settings from the host's name."""
    for path in [p for p in ctx.path.iterdir() if p.is_file() and (p.suffix in (".sh", "") or p.name == "Makefile")]:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if not line.lstrip().startswith("#") and EDITS_CODE.search(line):
                raise CheckFailed(f"Seen: {path.name}:{number} edits the code to change a setting: "
                                  f"`{line.strip()[:80]}`.\nExpected: settings live in the environment (.env), "
                                  "and a deploy changes them there, never in the code.")
    return runbook_truth(ctx, "03_config")
