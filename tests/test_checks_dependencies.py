"""Factor II checks, on small folders."""

import pytest

from factorlab.checks.dependencies import distributions_for, third_party_imports

from helpers import verdict, write_app

APP = "import os\nimport requests\nfrom flask import Flask\nimport helper\napp = Flask(__name__)\n"


@pytest.mark.parametrize("manifest, status", [
    (None, "failed"), ("", "failed"), ("flask\n", "failed"), ("flask>=3\n", "failed"), ("flask==3.*\n", "failed"),
    ("-e .\n", "failed"), ("# pinned\nFlask==3.1.3  # web\nrequests[socks]==2.34.2\n", "passed"),
])
def test_manifest_pinned(tmp_path, manifest, status):
    files = {"shortly.py": APP} | ({"requirements.txt": manifest} if manifest is not None else {})
    assert verdict("dependencies.manifest_pinned", write_app(tmp_path / "app", files))[0] == status


def test_third_party_imports_skip_stdlib_and_local_modules(tmp_path):
    app = write_app(tmp_path / "app", {"shortly.py": APP, "helper.py": "import yaml.constructor\n"})
    assert set(third_party_imports(app)) == {"requests", "flask", "yaml"}


@pytest.mark.parametrize("module, dist", [("yaml", "pyyaml"), ("psycopg2", "psycopg2-binary"), ("flask", "flask"),
                                          ("dotenv", "python-dotenv")])
def test_distribution_names(module, dist):
    assert dist in distributions_for(module)


@pytest.mark.parametrize("manifest, status, seen", [
    ("Flask==3.1.3\n", "failed", "requests (imported at shortly.py:2)"),
    ("Flask==3.1.3\nrequests==2.34.2\n", "passed", "flask, requests"),
])
def test_imports_declared(tmp_path, manifest, status, seen):
    app = write_app(tmp_path / "app", {"shortly.py": APP, "helper.py": "", "requirements.txt": manifest})
    got = verdict("dependencies.imports_declared", app)
    assert got[0] == status and seen in got[1]


@pytest.mark.parametrize("code, status", [
    ("import subprocess\nsubprocess.run(['curl', 'x'])\n", "failed"),
    ("import os\nos.system('wget x')\n", "failed"),
    ("import subprocess as sp\n", "passed"),
    ("import requests\nrequests.get('http://x')\n", "passed"),
])
def test_no_system_tools(tmp_path, code, status):
    assert verdict("dependencies.no_system_tools", write_app(tmp_path / "app", {"shortly.py": code}))[0] == status
