"""Does a file look like it holds a secret? `factorlab submit` refuses to pack one that does.

Three kinds of evidence, each named in the finding:
- the file's name is one that holds keys or credentials (id_rsa, *.pem, .netrc, …);
- its text holds a credential in a format that is never anything else (a private key block, a cloud or
  platform token with its well-known prefix, a URL with a password in it);
- a setting whose name says secret (…SECRET…, …TOKEN…, …PASSWORD…, …API_KEY…) is given a value that looks
  random. Python files are parsed (assignments, keyword arguments, dict entries, getenv defaults); other
  text files are read as NAME=value or NAME: value lines.

A value that says it is made up (FAKE-…, change-me, example, placeholder, …) is not a secret: the course's
legacy app holds such made-up values on purpose.
"""

from __future__ import annotations

import ast
import fnmatch
import math
import re
from collections import Counter
from dataclasses import dataclass

from .checks.secret_scan import NAMES_A_THING, PLACEHOLDER, SECRET_NAME

KEY_FILES = ("*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx", "*.ppk", "id_rsa", "id_dsa",
             "id_ecdsa", "id_ed25519", ".netrc", ".pgpass", ".htpasswd", ".pypirc", "credentials.json",
             "*service-account*.json", "*service_account*.json")
FORMATS = (
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Stripe live key", re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("an OpenAI-style API key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}")),
)
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://(?P<user>[^/\s:@'\"]*):(?P<password>[^@\s/'\"]+)@"
                          r"(?P<host>[^/\s:'\"?#]*)", re.I)
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0", ""}
BEARER = re.compile(r"\bBearer\s+(?P<value>[A-Za-z0-9._~+/=-]{16,})")
# NAME=value, NAME: value, "name": "value" anywhere on a line (JSON, YAML, .env, shell, docs)
NAMED_VALUE = re.compile(r"[\"']?(?P<name>[A-Za-z_][\w.-]*)[\"']?\s*[:=]\s*[\"']?(?P<value>[^\"'\s#,}]+)")
# Made up on purpose: factor III's placeholders (change-me, <your token>, …), and values that say they are fake,
# samples or for tests (the legacy app's FAKE-… secrets), or are a template's {field}.
MADE_UP = re.compile(r"fake|sample|dummy|insecure|^tests?([-_ ]|$)|^\{|\{\{|\$\(", re.I)
TEXT_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Finding:
    name: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.name}" + (f":{self.line}" if self.line else "") + f": {self.what}"


def made_up(value: str) -> bool:
    return bool(PLACEHOLDER.search(value) or MADE_UP.search(value) or NAMES_A_THING.match(value))


def random_looking(value: str) -> bool:
    """A value nobody types as a placeholder: 10 characters or more, no spaces, letters and digits mixed, and
    varied (about 3 bits of entropy per character or more: a token_hex has 4)."""
    if len(value) < 10 or " " in value or made_up(value):
        return False
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return False
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values()) >= 3.0


def _real_password(user: str, password: str, host: str) -> bool:
    """A password in a URL: a random-looking one anywhere; on a real host, any that is not made up. A local
    development default (postgres:postgres@localhost, shortly:dev@db, a compose service) is not a secret."""
    if made_up(password) or password == user:
        return False
    if random_looking(password):
        return True
    local = host.lower() in LOCAL_HOSTS or "." not in host
    return not local and len(password) >= 8


def find(name: str, data: bytes) -> list[Finding]:
    """What in the file called name (a path in the archive) looks like a secret; empty when nothing does."""
    base = name.rsplit("/", 1)[-1]
    if any(fnmatch.fnmatch(base.lower(), pattern) for pattern in KEY_FILES):
        return [Finding(name, 0, "a file of keys or credentials, by its name")]
    if b"\0" in data[:8192] or len(data) > TEXT_LIMIT:
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in FORMATS:
            if pattern.search(line):
                found.append(Finding(name, number, what))
        for match in URL_PASSWORD.finditer(line):
            if _real_password(match["user"], match["password"], match["host"]):
                found.append(Finding(name, number, "a URL with a password in it"))
        for match in BEARER.finditer(line):
            if random_looking(match["value"]):
                found.append(Finding(name, number, "a bearer token"))
    parsed = _python_settings(name, text) if base.endswith(".py") else None
    if parsed is not None:
        found += parsed
    else:  # not Python, or Python that does not parse: read as text
        for number, line in enumerate(text.splitlines(), 1):
            for match in NAMED_VALUE.finditer(line):
                if SECRET_NAME.search(match["name"]) and random_looking(match["value"]):
                    found.append(Finding(name, number, f"a random-looking value given to {match['name']}"))
    return sorted(set(found), key=lambda f: (f.line, f.what))


def _python_settings(name: str, text: str) -> list[Finding] | None:
    """Secrets in Python read as code, or None when it does not parse."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return None
    found = []

    def judge(setting: str | None, value: ast.AST, line: int) -> None:
        if (setting and SECRET_NAME.search(setting) and isinstance(value, ast.Constant)
                and isinstance(value.value, str) and random_looking(value.value)):
            found.append(Finding(name, line, f"a random-looking string given to {setting}"))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                judge(_target_name(target), node.value, node.lineno)
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                judge(keyword.arg, keyword.value, node.lineno)
            if len(node.args) >= 2 and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                judge(node.args[0].value, node.args[1], node.lineno)  # getenv("X_TOKEN", "…"), setdefault(…)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            positional = node.args.posonlyargs + node.args.args
            pairs = [*zip(positional[len(positional) - len(node.args.defaults):], node.args.defaults),
                     *zip(node.args.kwonlyargs, node.args.kw_defaults)]
            for arg, default in pairs:
                if default is not None:
                    judge(arg.arg, default, node.lineno)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    judge(key.value, value, node.lineno)
    return found


def _target_name(target: ast.AST) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
        return str(target.slice.value)
    return None
