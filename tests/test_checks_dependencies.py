"""Factor II checks, on small folders."""

from pathlib import Path

import pytest

from factorlab.checks.dependencies import distributions_for, outside_paths, third_party_imports

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


@pytest.mark.parametrize("files, status", [
    ({"shortly.py": "from subprocess import *\ncheck_output(['curl', 'x'])\n"}, "failed"),
    ({"shortly.py": "from os import *\nsystem('wget x')\n"}, "failed"),
    ({"shortly.py": "from subprocess import *\ndef check_output(x):\n    return x\ncheck_output('x')\n"}, "passed"),
    ({"shortly.py": "from compat import go\ngo(['curl', 'x'])\n",
      "compat.py": "from subprocess import run as go  # noqa\n"}, "failed"),
    ({"shortly.py": "import compat\ncompat.run(['curl', 'x'])\n", "compat.py": "from subprocess import *\n"}, "failed"),
    ({"shortly.py": "from pkg.a import go\ngo('x')\n", "pkg/__init__.py": "", "pkg/a.py": "from .b import go\n",
      "pkg/b.py": "from subprocess import run as go\n"}, "failed"),
    ({"shortly.py": "from compat import tidy\ntidy('x')\n", "compat.py": "def tidy(x):\n    return x.strip()\n"},
     "passed"),
    ({"shortly.py": "from a import x\n", "a.py": "from b import x\n", "b.py": "from a import x\n"}, "passed"),  # a cycle
])
def test_no_system_tools_follows_star_imports_and_the_apps_modules(tmp_path, files, status):
    assert verdict("dependencies.no_system_tools", write_app(tmp_path / "app", files))[0] == status


@pytest.mark.parametrize("code, found", [
    ("import importlib\nNAME = 'orjson'\nimportlib.import_module(NAME)\n", {"orjson"}),
    ("import importlib\nfor n in ('orjson', 'ujson'):\n    importlib.import_module(n)\n", {"orjson", "ujson"}),
    ("import importlib\nBASE = 'simple'\nimportlib.import_module(f'{BASE}json.decoder')\n", {"simplejson"}),
    ("import importlib\ndef load(name):\n    return importlib.import_module(name)\n", set()),  # not known: not read
    ("import importlib\nfrom settings import CODEC\nimportlib.import_module(CODEC)\n", {"orjson"}),
])
def test_modules_imported_by_a_name_in_a_constant(tmp_path, code, found):
    app = write_app(tmp_path / "app", {"shortly.py": code, "settings.py": "CODEC = 'orjson'\n"})
    assert set(third_party_imports(app)) == found


@pytest.mark.parametrize("code, outside", [
    ("import sys\nsys.path.insert(0, '/usr/lib/python3/dist-packages')\n", True),
    ("import sys, os\nsys.path.append(os.path.join('/usr/lib', 'python3', 'dist-packages'))\n", True),
    ("import site\nsite.addsitedir('/opt/shared/site-packages')\n", True),
    ("import sys\nHOST = '/usr/local/lib/python3.11/site-packages'\nsys.path[:0] = [HOST]\n", True),
    ("import sys\nfrom pathlib import Path\nsys.path.insert(0, str(Path('/srv') / 'libs'))\n", True),
    ("import sys, os\nsys.path.insert(0, os.path.join(os.path.dirname(__file__), 'vendor'))\n", False),
    ("import sys\nsys.path.append('vendor')\n", False),
])
def test_folders_outside_the_app_on_sys_path(tmp_path, code, outside):
    assert bool(outside_paths(write_app(tmp_path / "app", {"shortly.py": code}))) == outside


def _still_said(text: str) -> list[str]:
    from factorlab.catalogue import load
    from factorlab.checks.runbook import still_says

    retired = load(Path(__file__).resolve().parents[1]).get("02_dependencies").runbook["retired"]
    return [words for pattern, words in retired if still_says(text, pattern)]


@pytest.mark.parametrize("text, said", [
    ("    apt-get install python3 python3-venv curl\n", True),
    ("    # previews need curl (on CentOS: yum install -y curl)\n", True),
    ("    brew install curl\n", True),
    ("    apt-get install python3 python3-flask python3-requests\n", True),
    ("    apk add py3-flask\n", True),
    ("Nothing to pip install: the OS's packages are enough.\n", True),
    ("Don't forget to apt-get install curl.\n", True),
    ("    apt-get install python3 python3-venv\n    python3 -m venv .venv\n", False),
    ("The previews used to shell out to curl, which had to come from apt; you no longer\n"
     "apt-get install curl.\n", False),
    ("Never apt-get install python3-flask: the app's packages come from requirements.txt.\n", False),
    ("Purge once a week:\n\n    curl \"https://shortly.example.com/admin/purge?token=$T\"\n", False),
])
def test_what_the_runbook_may_no_longer_say(text, said):
    assert bool(_still_said("# Ops\n\n" + text)) == said
