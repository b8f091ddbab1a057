"""Factor III, config: store config in the environment."""

from __future__ import annotations

import ast
import re
import secrets
import sqlite3
from pathlib import Path

from ..testpage import TestPage
from . import CheckContext, CheckFailed, check
from .source import parse, python_files, text_files

REQUIRED = "SHORTLY_SECRET_KEY"
EXAMPLE = ".env.example"
SECRET_NAME = r"\w*(?:secret|token|passw(?:or)?d|api_?key|private_?key)\w*"
SECRET_PATTERNS = [
    (re.compile(rf"(?i)\b({SECRET_NAME})\b\s*[:=]\s*[\"']([^\"'\s]{{6,}})[\"']"), "a secret assigned in code"),
    (re.compile(rf"(?i)environ(?:\.get\(|\.setdefault\(|\[)\s*[\"']({SECRET_NAME})[\"']\s*,\s*[\"']([^\"']+)[\"']"),
     "a built-in default for a secret"),
    (re.compile(r"(?i)[?&](token|key|secret|password)=([A-Za-z0-9_\-]{6,})"), "a secret in a URL"),
    (re.compile(r"[a-z][a-z0-9+]*://([^/\s:@\"']+):([^@\s/\"']{3,})@"), "a password in a connection URL"),
]
PLACEHOLDER = re.compile(r"(?i)change-?me|example|placeholder|your[-_]|<[^>]*>|\$\{|x{4,}|\.\.\.")
# Values that name something rather than hide it: a header ("Authorization") or a variable ("SHORTLY_TOKEN").
NOT_A_SECRET = re.compile(r"[A-Za-z]{1,15}|[A-Z][A-Z0-9_]+")
HOSTNAME_CALLS = {("socket", "gethostname"), ("socket", "getfqdn"), ("platform", "node"), ("platform", "uname")}


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
       hint=f"Check for {REQUIRED} when the app starts; if it is missing, print its name and exit non-zero.")
def fails_fast(ctx: CheckContext) -> str:
    """Started without SHORTLY_SECRET_KEY, the app exits non-zero and names the variable."""
    code, output, serving = ctx.runner.run_to_exit({})
    expected = f"Expected: exit at once with a non-zero code and a message naming {REQUIRED}."
    if serving:
        raise CheckFailed(f"Seen: without {REQUIRED} the app started and served requests.\n{expected}")
    if code is None:
        raise CheckFailed(f"Seen: without {REQUIRED} the app neither served nor exited.\n{expected}")
    if code == 0:
        raise CheckFailed(f"Seen: without {REQUIRED} the app exited with code 0, as if all was well.\n{expected}")
    if REQUIRED not in output:
        tail = "\n  ".join(line[:200] for line in output.strip().splitlines()[-5:])
        raise CheckFailed(f"Seen: the app exited with code {code}, but its output does not name {REQUIRED}:\n  {tail}\n"
                          f"{expected}")
    return f"without {REQUIRED} the app exits with code {code} and names the variable"


@check("config.from_environment", factor=3, title="Same code, two environments, two behaviours",
       hint="Read SHORTLY_SECRET_KEY, SHORTLY_DATABASE and SHORTLY_PREVIEW_TOKEN from the environment.")
def from_environment(ctx: CheckContext) -> str:
    """Two instances with different env vars sign, store and authenticate with their own settings."""
    shared = ctx.runner.shared_dir()  # the app writes its database there, the check reads it
    with TestPage() as page:
        envs = {name: _distinct_env(shared, name) for name in ("blue", "green")}
        for name, env in envs.items():
            app = ctx.runner.start(env)
            created = app.post("/api/links", json={"url": page.url(f"/{name}")})
            if created.status_code != 201:
                raise CheckFailed(f"Seen: POST /api/links answered {created.status_code}.{app.last_words()}\n"
                                  "Expected: 201 and the new link.")
            code = created.json().get("code")
            cookie = app.client.cookies.get("session")
            app.stop()
            if _session_payload(cookie, env[REQUIRED]) is None:
                raise CheckFailed(f"Seen: the session cookie is not signed with the {REQUIRED} the app was given.\n"
                                  "Expected: the app's SECRET_KEY comes from the environment.")
            if code not in sqlite_codes(Path(env["SHORTLY_DATABASE"])):
                raise CheckFailed("Seen: the new link is not in the SQLite file named by SHORTLY_DATABASE "
                                  "(or, from factor IV on, DATABASE_URL).\n"
                                  "Expected: the database path comes from the environment.")
            sent = [h.get("Authorization") for h in page.headers_for(f"/{name}")]
            if f"Bearer {env['SHORTLY_PREVIEW_TOKEN']}" not in sent:
                raise CheckFailed(f"Seen: the preview request carried Authorization {sent[-1] if sent else None!r}.\n"
                                  "Expected: 'Bearer ' followed by the SHORTLY_PREVIEW_TOKEN the app was given.")
    return "two instances, two configs: each used its own secret key, database file and preview token"


def _secret_findings(root: Path) -> list[str]:
    findings = []
    for file, text in text_files(root):
        rel = file.relative_to(root).as_posix()
        for lineno, line in enumerate(text.splitlines(), 1):
            for pattern, what in SECRET_PATTERNS:
                match = pattern.search(line)
                value = match.group(2) if match else ""
                if match and not PLACEHOLDER.search(value) and not NOT_A_SECRET.fullmatch(value):
                    findings.append(f"{what} ({match.group(1)}) at {rel}:{lineno}")
                    break
    return findings


def _env_file_ignored(root: Path) -> bool:
    ignore = root / ".gitignore"
    lines = ignore.read_text(errors="replace").splitlines() if ignore.is_file() else []
    return any(line.strip().lstrip("/") in (".env", ".env*", "*.env") for line in lines)


@check("config.no_secrets_in_source", factor=3, title="No secrets in the source",
       hint="Move every key, token and password into an environment variable; keep only placeholders in .env.example.")
def no_secrets_in_source(ctx: CheckContext) -> str:
    """No file holds a secret value, and a local .env cannot be committed by accident."""
    findings = _secret_findings(ctx.path)
    if findings:
        shown = "; ".join(findings[:5]) + (f"; and {len(findings) - 5} more" if len(findings) > 5 else "")
        raise CheckFailed(f"Seen: {shown}.\nExpected: no secret values in the code or docs; "
                          "they arrive as environment variables.")
    if (ctx.path / ".env").exists() and not _env_file_ignored(ctx.path):
        raise CheckFailed("Seen: a .env file that .gitignore does not exclude.\n"
                          "Expected: .env listed in .gitignore, so local secrets never reach the repository.")
    return "no secret values found in the source"


@check("config.no_hostname_switch", factor=3, title="No switching on the machine's name",
       hint="Delete the gethostname() switch: give each setting its own environment variable.")
def no_hostname_switch(ctx: CheckContext) -> str:
    """The code never asks which machine it runs on to pick its settings."""
    for file in python_files(ctx.path):
        tree = parse(file)
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and (node.value.id, node.attr) in HOSTNAME_CALLS:
                raise CheckFailed(f"Seen: {node.value.id}.{node.attr} at {file.relative_to(ctx.path).as_posix()}:"
                                  f"{node.lineno}, settings chosen by the machine's name.\n"
                                  "Expected: every setting read from its own environment variable.")
    return "no hostname-based switches"


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
       hint="List every SHORTLY_ variable in .env.example with a harmless placeholder value and a comment.")
def env_example(ctx: CheckContext) -> str:
    """.env.example names the required variables, and the app starts with its values."""
    path = ctx.path / EXAMPLE
    if not path.is_file():
        raise CheckFailed(f"Seen: no {EXAMPLE}.\nExpected: a {EXAMPLE} listing every variable the app reads, "
                          "with placeholder values.")
    values = read_env_file(path)
    mentioned = set()
    for file in python_files(ctx.path):
        tree = parse(file)
        for node in ast.walk(tree) if tree else ():  # string literals only: names in comments do not count
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                mentioned |= set(re.findall(r"\bSHORTLY_[A-Z0-9_]+\b", node.value))
    missing = sorted((mentioned | {REQUIRED}) - set(values))
    if missing:
        raise CheckFailed(f"Seen: {EXAMPLE} does not list {', '.join(missing)}.\n"
                          "Expected: every variable the app reads, so a newcomer knows what to set.")
    workspace = ctx.runner.workspace()
    app = ctx.runner.start(values, workspace=workspace)
    status = app.get("/").status_code
    if status != 200:
        raise CheckFailed(f"Seen: started with the values of {EXAMPLE}, GET / answered {status}.{app.last_words()}\n"
                          "Expected: 200: the example is a working starting point.")
    return f"{EXAMPLE} lists {len(values)} variable(s) and the app starts with them"
