"""Factor X's machinery: the example config read as a .env file is, development servers found by reading the code
as code, pytest's summary read from its last line, and a one-off run with only what requirements.txt installs
(the checks' behaviour is proven against mutants, tests/mutants/10_dev_prod_parity.toml)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from factorlab.checks.dev_prod_parity import _counts, dev_servers
from factorlab.checks.source import env_values
from factorlab.runners.local import LocalRunner

ROOT = Path(__file__).resolve().parents[1]


def test_env_values_reads_what_a_shell_and_python_dotenv_read():
    text = ("# a comment\nDATABASE_URL=postgresql://u:p@h:5432/d\nexport REDIS_URL='redis://h:6379/0'\n"
            'SHORTLY_DEBUG="false"\nEMPTY=\nWITH_NOTE=value # a note\n# COMMENTED=1\n')
    assert env_values(text) == {"DATABASE_URL": "postgresql://u:p@h:5432/d", "REDIS_URL": "redis://h:6379/0",
                                "SHORTLY_DEBUG": "false", "EMPTY": "", "WITH_NOTE": "value"}


def _app(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "shortly.py").write_text("from flask import Flask\n\napp = Flask(__name__)\n")
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("files", [
    {"shortly.py": "from flask import Flask\napp = Flask(__name__)\nif __name__ == '__main__':\n    app.run()\n"},
    {"shortly.py": "import flask\nweb = flask.Flask(__name__)\nsite = web\nsite.run(debug=True)\n"},
    {"dev.py": "import shortly\nshortly.app.run(port=8000)\n"},
    {"dev.py": "from shortly import app as application\nserver = application\nserver.run()\n"},
    {"serve.py": "from werkzeug.serving import run_simple as go\nimport shortly\ngo('127.0.0.1', 8000, shortly.app)\n"},
    {"Makefile": "dev:\n\tflask --app shortly run --debug\n"},
    {"dev.sh": "#!/bin/sh\nexec python3 shortly.py\n"},
    {"Procfile.dev": "web: flask run -p $PORT\n"},
], ids=["main", "aliased-module-app", "module-attribute", "imported-alias", "run-simple", "makefile", "script",
        "procfile-dev"])
def test_a_development_server_is_found_however_it_is_spelled(tmp_path, files):
    assert dev_servers(_app(tmp_path, files)), files


@pytest.mark.parametrize("files", [
    {"release.py": "import subprocess\nsubprocess.run(['true'], check=True)\n"},
    {"worker.py": "import shortly\nfrom rq import Worker\nWorker([shortly.jobs]).work()\n"},
    {"tools.py": "import asyncio\nasyncio.run(main())\n"},
    {"OPS.md": "Never use `flask --app shortly run`: laptops run the Procfile.\n"},
    {"Procfile": "web: gunicorn --bind 0.0.0.0:$PORT shortly:app\nworker: python worker.py\n"},
    {"Makefile": "# flask run is gone: use honcho\ndev:\n\thoncho start\n"},
], ids=["subprocess-run", "worker", "asyncio-run", "runbook-prose", "procfile", "comment"])
def test_code_that_serves_no_development_server_is_left_alone(tmp_path, files):
    assert dev_servers(_app(tmp_path, files)) == []


def test_counts_read_the_last_summary_of_pytest():
    output = "collected 3 items\n\ntest_x.py ..F\n=== 1 failed, 2 passed, 1 error in 0.1s ===\n"
    assert _counts(output) == {"passed": 2, "failed": 1, "error": 1}
    assert _counts("7 passed in 0.3s\n") == {"passed": 7, "failed": 0, "error": 0}
    assert _counts("no tests ran in 0.01s\n") == {"passed": 0, "failed": 0, "error": 0}


def test_a_clean_one_off_has_only_what_requirements_txt_installs(tmp_path):
    """The course's own Python has pytest; the app's venv has it only when requirements.txt declares it."""
    folder = tmp_path / "app"
    shutil.copytree(ROOT / "solutions" / "09_disposability", folder)
    probe = ["-c", "import importlib.util; print('pytest', importlib.util.find_spec('pytest') is not None)"]
    with LocalRunner(folder, "shortly:app") as runner:
        assert "pytest True" in runner.run_command(probe, {}).output
        assert "pytest False" in runner.run_command(probe, {}, clean=True).output
