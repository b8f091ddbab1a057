"""Factor III: the code and text analyses behind the checks, on small folders (the mutation suite runs the
checks themselves against wrong and right variants of the solution)."""

import re

import pytest

from factorlab.checks import CheckContext
from factorlab.checks.config import deploy_name_switches, deploy_named_files, deploy_sections, edits_code, read_env_file
from factorlab.checks.runbook import in_the_past
from factorlab.checks.secret_scan import secret_findings
from factorlab.checks.shell import commands
from factorlab.checks.source import env_file_names, environment_reads
from factorlab.runners.local import LocalRunner

from conftest import ROOT
from helpers import verdict, write_app


def findings(tmp_path, files: dict[str, str], course=None) -> list[str]:
    app = write_app(tmp_path / "app", {"shortly.py": "x = 1\n", **files})
    with LocalRunner(app) as runner:
        return secret_findings(CheckContext(app, runner, course))


@pytest.mark.parametrize("name, text, found", [
    ("notes.md", 'SECRET_KEY = "FAKE-legacy-secret-key"', True),
    ("notes.md", "api_token: 'abcdef123456'", True),
    ("shortly.py", 'key = os.environ.get("SHORTLY_SECRET_KEY", "dev-secret")', True),
    ("shortly.py", 'key = app.config.get("SECRET_KEY") or "dev-secret"', True),
    ("shortly.py", 'app.config.update(SECRET_KEY="s3cr3t-value")', True),
    ("shortly.py", 'if request.args.get("token") != "letmein-2026":\n    pass', True),
    ("shortly.py", 'def fetch(url, token="abc-123-def"):\n    pass', True),
    ("config.json", '{"admin_password": "hunter22"}', True),
    ("notes.md", "curl https://x.invalid/admin/purge?token=letmein123", True),
    ("notes.md", "DATABASE_URL=postgresql://shortly:hunter22@db/shortly", True),
    ("shortly.py", 'SECRET_KEY = os.environ["SHORTLY_SECRET_KEY"]', False),
    ("notes.md", "SHORTLY_SECRET_KEY=change-me", False),
    ("shortly.py", 'TOKEN_HEADER = "Authorization"', False),
    ("shortly.py", 'TOKEN_VARIABLE = "SHORTLY_PREVIEW_TOKEN"', False),
    ("notes.md", 'password = "<your password>"', False),
    ("notes.md", "# SHORTLY_ADMIN_TOKEN=<token of the purge URL>", False),
    ("notes.md", 'curl "https://x.invalid/admin/purge?token=$SHORTLY_ADMIN_TOKEN"', False),
])
def test_secrets_are_found_in_code_and_text(tmp_path, name, text, found):
    assert bool(findings(tmp_path, {name: text + "\n"})) is found


def test_the_legacy_app_s_secrets_are_burned(tmp_path, course):
    leaked = findings(tmp_path, {"notes.txt": "the old token was FAKE-preview-token-0000\n"}, course)
    assert leaked and "leaked" in leaked[0]


@pytest.mark.parametrize("gitignore, found", [("", True), (".env\n", False), ("/.env\n", False)])
def test_a_local_env_file_must_be_ignored(tmp_path, gitignore, found):
    assert bool(findings(tmp_path, {".env": "SHORTLY_SECRET_KEY=change-me\n", ".gitignore": gitignore})) is found


@pytest.mark.parametrize("code, found", [
    ("import socket\nENV = 'prod' if socket.gethostname().startswith('prod') else 'dev'\n", True),
    ("import platform\nif platform.node() == 'web1':\n    pass\n", True),
    ("import os\nif os.environ.get('SHORTLY_ENV') == 'production':\n    LEVEL = 'WARNING'\n", True),
    ("import os\nstage = os.getenv('STAGE', 'dev')\nLEVEL = 'W' if stage in ('prod', 'live') else 'D'\n", True),
    ("import os\nS = {'production': 1, 'development': 2}[os.environ['APP_ENV']]\n", True),
    ("class ProductionConfig:\n    DEBUG = False\n", True),
    ("import os\nENV = os.environ.get('SHORTLY_ENV')\n", False),
    ("import os\nLEVEL = os.environ.get('SHORTLY_LOG_LEVEL', 'DEBUG')\n", False),
    ("def f(mode):\n    return mode == 'fast'\n", False),
])
def test_deploy_name_switches_are_read_as_code(tmp_path, code, found):
    assert bool(deploy_name_switches(write_app(tmp_path / "app", {"shortly.py": code}))) is found


@pytest.mark.parametrize("name, found", [("settings_production.py", True), ("config/staging.py", True),
                                         (".env.production", True), (".env.example", False),
                                         ("tests/test_prod.py", False), ("production_report.py", False)])
def test_settings_files_named_for_a_deploy(tmp_path, name, found):
    assert bool(deploy_named_files(write_app(tmp_path / "app", {name: "X = 1\n"}))) is found


def test_what_the_code_reads_from_the_environment(tmp_path):
    app = write_app(tmp_path / "app", {"shortly.py": (
        "import os\nfrom os import environ, getenv\nfrom flask import Flask\napp = Flask(__name__)\n"
        "app.config.from_prefixed_env('SHORTLY')\n"
        "a = os.environ['A_URL']\nb = environ.get('B_URL')\nc = getenv('C_URL', 'x')\nif 'D_URL' in os.environ:\n"
        "    pass\ne = app.config.get('PREVIEW_TOKEN')\nf = app.config['DEBUG']\ng = os.environ.get('PATH')\n")})
    assert set(environment_reads(app)) == {"A_URL", "B_URL", "C_URL", "D_URL", "SHORTLY_PREVIEW_TOKEN",
                                           "SHORTLY_DEBUG"}


def test_read_env_file(tmp_path):
    path = tmp_path / ".env.example"
    path.write_text("# comment\n\nA=1\nexport B='two'\nC=\"three\"\nnot a line\n# D=optional\n")
    assert read_env_file(path) == {"A": "1", "B": "two", "C": "three"}
    assert env_file_names(path.read_text()) == {"A", "B", "C", "D"}


FAIL_FAST = ("import os, sys\nfrom flask import Flask\napp = Flask(__name__)\n"
             "if not os.environ.get('SHORTLY_SECRET_KEY'):\n    sys.exit('set SHORTLY_SECRET_KEY')\n"
             "@app.get('/')\ndef home():\n    return 'ok'\n")


def test_fails_fast(tmp_path, no_leftovers):
    got = verdict("config.fails_fast", write_app(tmp_path / "app", {"shortly.py": FAIL_FAST}))
    assert got[0] == "passed" and "exits with a non-zero code and names the variable" in got[1]


def test_the_real_solution_reads_what_it_documents():
    assert set(environment_reads(ROOT / "solutions" / "03_config")) == {
        "SHORTLY_SECRET_KEY", "SHORTLY_DATABASE", "SHORTLY_PREVIEW_TOKEN", "SHORTLY_ADMIN_TOKEN", "SHORTLY_DEBUG",
        "SHORTLY_LOG_LEVEL"}


@pytest.mark.parametrize("name, text, found", [
    ("shortly.py", 'TOKENS = tuple(t for t in (TOKEN, "b7f3c9e1d2a8-oncall") if t)', True),
    ("shortly.py", 'ADMIN_TOKENS = [os.environ.get("A"), "q8Zr2LxW7v1Nc4Tb"]', True),
    ("shortly.py", 'x = 1  # ADMIN_TOKEN = "q8Zr2LxW7v1Nc4Tb"  # the old one', True),
    ("shortly.py", "x = 1  # the old admin_token: q8Zr2LxW7v1Nc4Tb", True),
    ("shortly.py", 'def purge():\n    """Prod\'s admin_token: 7Hq2-kd81-ZpW0."""', True),
    ("shortly.py", '# ADMIN_TOKEN = app.config.get("ADMIN_TOKEN")\nx = 1', False),
    ("shortly.py", 'SECRET_FIELDS = ("admin_token", "api_key")', False),
    ("shortly.py", 'TOKEN = request.args.get("admin_token")', False),
    ("notes.md", "SHORTLY_SECRET_KEY=replace-with-a-long-random-string", False),
    ("notes.md", "SHORTLY_ADMIN_TOKEN=replace-me", False),
    ("notes.md", "SHORTLY_ADMIN_TOKEN=fill-me-in", False),
])
def test_secrets_in_collections_comments_and_docstrings(tmp_path, name, text, found):
    assert bool(findings(tmp_path, {name: text + "\n"})) is found


@pytest.mark.parametrize("code, found", [
    ("with open('/etc/hostname') as f:\n    PROD = f.read().startswith('prod-')\n", True),
    ("from pathlib import Path\nNAME = Path('/proc/sys/kernel/hostname').read_text()\n", True),
    ("import subprocess\nNAME = subprocess.check_output(['hostname'])\n", True),
    ("import os\nif os.environ.get('HOSTNAME', '').startswith('prod-'):\n    LEVEL = 'WARNING'\n", True),
    ("from flask import request\ndef f():\n    return request.host.split(':')[0] == 'shortly.example.com'\n", True),
    ("from flask import request\ndef f():\n    host = request.host\n    return host.endswith('.example.com')\n", True),
    ("from flask import request\ndef f(code):\n    return request.host_url + code\n", False),
    ("import os\nURL = os.environ['DATABASE_URL']\nPG = URL.startswith('postgresql://')\n", False),
    ("from flask import request\ndef f():\n    return request.headers.get('Content-Type') == 'application/json'\n", False),
])
def test_machine_names_and_addresses_are_read_as_code(tmp_path, code, found):
    assert bool(deploy_name_switches(write_app(tmp_path / "app", {"shortly.py": code}))) is found


@pytest.mark.parametrize("name, text, found", [
    ("settings.toml", "[development]\nttl = 1\n[production]\nttl = 30\n", True),
    ("config/settings.yml", "# ttl\nstaging:\n  ttl: 1\nproduction:\n  ttl: 30\n", True),
    ("config.json", '{"envs": {"dev": {"ttl": 1}, "prod": {"ttl": 30}}}', True),
    ("settings.ini", "[production]\nttl = 30\n[staging]\nttl = 1\n", True),
    ("settings.toml", "[shortly]\ndatabase = 'shortly.db'\n", False),
    ("settings.toml", "[production]\nttl = 30\n", False),
    ("pyproject.toml", "[tool.hatch.envs.dev]\nx = 1\n[tool.hatch.envs.prod]\nx = 2\n", False),
    ("settings.yml", "test:\n  a: 1\nlocal:\n  a: 2\n", False),
])
def test_settings_files_with_a_section_per_deploy(tmp_path, name, text, found):
    assert bool(deploy_sections(write_app(tmp_path / "app", {name: text}))) is found


def test_environment_reads_follow_aliases(tmp_path):
    app = write_app(tmp_path / "app", {"shortly.py": (
        "import os\nenv = os.environ\nget = os.environ.get\n"
        "def load(environ=os.environ):\n    return environ.get('A1'), environ['A2']\n"
        "x = env.get('A3')\ny = get('A4')\nif 'A5' in env:\n    pass\n"
        "copy = dict(os.environ)\ncopy['PYTHONPATH'] = 'x'\nz = copy.get('NOT_READ')\n")})
    assert set(environment_reads(app)) == {"A1", "A2", "A3", "A4", "A5"}


@pytest.mark.parametrize("script, edits", [
    ("sed -i 's/^DEBUG = .*/DEBUG = False/' shortly.py", True),
    ("perl -pi -e 's/x/y/' shortly.py", True),
    ("sed 's/x/y/' shortly.py > shortly.py.new && mv shortly.py.new shortly.py", True),
    ("cp \"settings/$(hostname).py\" settings_local.py", True),
    ("echo 'DEBUG = False' | tee -a shortly.py", True),
    ("sed -i 's/^SHORTLY_DEBUG=.*/SHORTLY_DEBUG=false/' .env", False),
    ("nohup .venv/bin/python shortly.py --daemon > /dev/null 2>&1 &", False),
    ("cp .env.example .env", False),
])
def test_scripts_that_edit_the_code(script, edits):
    assert any(edits_code(c) for c in commands(script)) is edits


@pytest.mark.parametrize("text, past", [
    ("The app picks the production settings on hosts named prod-*.", False),
    ("On machines whose name starts with prod- the app switches to production settings automatically.", False),
    ("Fine. (Until March the app picked the production settings on hosts named prod-*; that is gone.)", True),
    ("The app no longer picks production settings by itself.", True),
    ("The app does not pick production settings on hosts named prod-*.", True),
    ("Nothing else changes. On hosts named prod-* the app picks the production settings.", False),
])
def test_the_runbook_may_tell_the_history(course, text, past):
    pattern = course.get("03_config").runbook["retired"][0][0]
    matches = list(re.finditer(pattern, text))
    assert matches and all(in_the_past(text, m) for m in matches) is past
