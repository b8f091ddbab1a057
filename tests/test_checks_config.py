"""Factor III checks, on small folders."""

import pytest

from factorlab.checks.config import read_env_file

from helpers import verdict, write_app


@pytest.mark.parametrize("line, status", [
    ('SECRET_KEY = "FAKE-legacy-secret-key"', "failed"),
    ("api_token: 'abcdef123456'", "failed"),
    ('key = os.environ.get("SHORTLY_SECRET_KEY", "dev-secret")', "failed"),
    ("curl https://x.invalid/admin/purge?token=letmein123", "failed"),
    ("DATABASE_URL=postgresql://shortly:hunter22@db/shortly", "failed"),
    ('SECRET_KEY = os.environ["SHORTLY_SECRET_KEY"]', "passed"),
    ("SHORTLY_SECRET_KEY=change-me", "passed"),
    ('TOKEN_HEADER = "Authorization"', "passed"),
    ('TOKEN_VARIABLE = "SHORTLY_PREVIEW_TOKEN"', "passed"),
    ('password = "<your password>"', "passed"),
])
def test_no_secrets_in_source(tmp_path, line, status):
    app = write_app(tmp_path / "app", {"shortly.py": "x = 1\n", "notes.md": line + "\n"})
    assert verdict("config.no_secrets_in_source", app)[0] == status


@pytest.mark.parametrize("gitignore, status", [("", "failed"), (".env\n", "passed"), ("/.env\n", "passed")])
def test_a_local_env_file_must_be_ignored(tmp_path, gitignore, status):
    app = write_app(tmp_path / "app", {"shortly.py": "", ".env": "SHORTLY_SECRET_KEY=mine\n", ".gitignore": gitignore})
    assert verdict("config.no_secrets_in_source", app)[0] == status


@pytest.mark.parametrize("code, status", [
    ("import socket\nENV = 'prod' if socket.gethostname().startswith('prod') else 'dev'\n", "failed"),
    ("import platform\nif platform.node() == 'web1':\n    pass\n", "failed"),
    ("import os\nENV = os.environ.get('SHORTLY_ENV')\n", "passed"),
])
def test_no_hostname_switch(tmp_path, code, status):
    assert verdict("config.no_hostname_switch", write_app(tmp_path / "app", {"shortly.py": code}))[0] == status


def test_read_env_file(tmp_path):
    path = tmp_path / ".env.example"
    path.write_text("# comment\n\nA=1\nexport B='two'\nC=\"three\"\nnot a line\n")
    assert read_env_file(path) == {"A": "1", "B": "two", "C": "three"}


FAIL_FAST = ("import os, sys\nfrom flask import Flask\napp = Flask(__name__)\n"
             "if not os.environ.get('SHORTLY_SECRET_KEY'):\n    sys.exit('set SHORTLY_SECRET_KEY')\n"
             "@app.get('/')\ndef home():\n    return 'ok'\n")


@pytest.mark.parametrize("example, status, seen", [
    (None, "failed", "no .env.example"),
    ("SHORTLY_DEBUG=false\n", "failed", "does not list SHORTLY_SECRET_KEY"),
    ("SHORTLY_SECRET_KEY=change-me\n", "passed", "lists 1 variable"),
])
def test_env_example(tmp_path, example, status, seen, no_leftovers):
    files = {"shortly.py": FAIL_FAST} | ({".env.example": example} if example else {})
    got = verdict("config.env_example", write_app(tmp_path / "app", files))
    assert got[0] == status and seen in got[1], got


def test_fails_fast(tmp_path, no_leftovers):
    got = verdict("config.fails_fast", write_app(tmp_path / "app", {"shortly.py": FAIL_FAST}))
    assert got == ("passed", "without SHORTLY_SECRET_KEY the app exits with code 1 and names the variable")
