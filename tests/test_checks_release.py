"""Factor V: the reference release.py keeps its contract, and the checks catch each way of breaking it."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from factorlab import catalogue
from factorlab.checks.code_writes import app_modules, writes_next_to_code
from factorlab.checks.runbook import still_says
from factorlab.checks.shell import PythonRun, python_run

from conftest import ROOT
from helpers import verdict

SOLUTION = ROOT / "solutions" / "05_build_release_run"


def variant(tmp_path: Path, *replacements: tuple[str, str, str]) -> Path:
    """A copy of the solution with some text replaced: (file, old, new)."""
    folder = tmp_path / "app"
    shutil.copytree(SOLUTION, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name, old, new in replacements:
        text = (folder / name).read_text()
        assert old in text, old
        (folder / name).write_text(text.replace(old, new))
    return folder


# ---------------------------------------------------------------------------
# The reference tool, driven directly
# ---------------------------------------------------------------------------
@pytest.fixture
def app(tmp_path):
    folder = tmp_path / "app"
    shutil.copytree(SOLUTION, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / ".env").write_text("SHORTLY_SECRET_KEY=from-the-env-file\n")
    (folder / "shortly.log").write_text("written by a run in place\n")
    yield folder
    for path in [tmp_path, *tmp_path.rglob("*")]:  # releases are read-only; let tmp_path go
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)


def tool(app: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "release.py", *args], cwd=app, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "SHORTLY_DEPLOY_ROOT": "", **(env or {})})


def last_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_build_is_the_code_alone_and_named_by_its_content(app, tmp_path):
    build = last_line(tool(app, "build"))
    folder = tmp_path / "shortly-deploy" / "builds" / build  # the default root: next to the app's folder
    names = {p.name for p in folder.iterdir()}
    assert {"shortly.py", "release.py", "requirements.txt"} <= names
    assert not names & {".env", "shortly.log"}, "local config and files .gitignore lists are no part of a build"
    assert last_line(tool(app, "build")) == build
    (app / "shortly.py").write_text((app / "shortly.py").read_text() + "\n# changed\n")
    assert last_line(tool(app, "build")) != build


def test_root_from_the_option_before_or_after_the_command_or_the_environment(app, tmp_path):
    for args, env, root in ((["--root", str(tmp_path / "a"), "build"], {}, "a"),
                            (["build", "--root", str(tmp_path / "b")], {}, "b"),
                            (["build"], {"SHORTLY_DEPLOY_ROOT": str(tmp_path / "c")}, "c")):
        build = last_line(tool(app, *args, env=env))
        assert (tmp_path / root / "builds" / build / "shortly.py").is_file()


def test_a_release_is_numbered_read_only_and_holds_its_config(app, tmp_path):
    root = tmp_path / "shortly-deploy"
    build = last_line(tool(app, "build"))
    releases = [last_line(tool(app, "release", build, "--config", ".env")) for _ in range(11)]
    assert releases == [f"v{n}" for n in range(1, 12)]
    assert tool(app, "list").stdout.splitlines() == [*releases[:-1], "v11 (current)"], "numeric order: v2 before v10"
    folder = root / "releases" / "v11"
    assert os.readlink(root / "current") == "releases/v11"
    assert (folder / "release.env").read_text() == "SHORTLY_SECRET_KEY=from-the-env-file\nSHORTLY_RELEASE=v11\n"
    assert "release.env" in (folder / "MANIFEST").read_text()
    assert all(not p.stat().st_mode & 0o222 for p in [folder, *folder.rglob("*")])


def test_verify_names_what_changed_was_added_or_went_missing(app, tmp_path):
    build = last_line(tool(app, "build"))
    release = last_line(tool(app, "release", build, "--config", ".env"))
    assert tool(app, "verify").returncode == 0
    folder = tmp_path / "shortly-deploy" / "releases" / release
    folder.chmod(0o755)
    (folder / "OPS.md").chmod(0o644)
    (folder / "OPS.md").write_text("edited on the box\n")
    (folder / "requirements.txt").unlink()
    (folder / "hotfix.py").write_text("")
    done = tool(app, "verify", release)
    assert done.returncode == 1
    assert all(f"{what}: {name}" in done.stdout for what, name in
               (("changed", "OPS.md"), ("missing", "requirements.txt"), ("added", "hotfix.py")))
    refused = tool(app, "run", release)
    assert refused.returncode == 1 and "changed: OPS.md" in refused.stderr


def test_rollback_steps_back_one_release_at_a_time(app):
    build = last_line(tool(app, "build"))
    for _ in range(3):
        tool(app, "release", build, "--config", ".env")
    assert [last_line(tool(app, "rollback")) for _ in range(2)] == ["v2", "v1"]
    assert tool(app, "list").stdout.splitlines() == ["v1 (current)", "v2", "v3"]
    done = tool(app, "rollback")
    assert done.returncode == 1 and "nothing to roll back to" in done.stderr
    assert last_line(tool(app, "release", build, "--config", ".env")) == "v4", "an id is never reused"


# ---------------------------------------------------------------------------
# The deploy script, read as the commands it runs (the mutation suite runs the other checks)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("script, status, seen", [
    ((SOLUTION / "deploy.sh").read_text(), "passed", ""),
    ("python release.py --root /srv/d build\npython release.py --root /srv/d release b1 --config .env\n"
     "exec python release.py run\n", "passed", ""),
    ('tool() { .venv/bin/python ./release.py --root "$ROOT" "$@"; }\nb=$(tool build | tail -n 1)\n'
     'tool release "$b" --config .env && tool run\n', "passed", ""),
    ((ROOT / "legacy" / "deploy.sh").read_text(), "failed", "deploy.sh:9 edits a file in place"),
    ("python release.py build\npython release.py release b1 --config .env\nsed --in-place s/a/b/ .env\n"
     "python release.py run\n", "failed", "edits a file in place"),
    ("python release.py build && python release.py release b1 --config .env\nnohup python3 shortly.py --daemon &\n",
     "failed", "deploy.sh:2 starts the app from the checkout"),
    ("APP=shortly.py\npython release.py build\npython release.py release b --config .env\npython3 \"$APP\" &\n",
     "failed", "starts the app from the checkout"),
    ("python release.py build\necho DEBUG=false >> .env\npython release.py release b --config .env\n"
     "python release.py run\n", "failed", "writes into .env of the checkout"),
    ("# python release.py build\npython release.py release b1 --config .env\nsed -n 1p .env | grep -i x\n",
     "failed", "never runs `release.py build` or `release.py run`"),
    ("b=$(python3 -m release build | tail -n 1)\n./release.py release \"$b\" --config .env\npython -u -mrelease run\n",
     "passed", ""),
    ("git fetch && git reset --hard origin/main\ngit checkout -q v2.3\npython -c 'import secrets; print(1)'\n"
     "python release.py build\npython release.py release b --config .env\npython release.py run\n", "passed", ""),
    ("git stash\ngit pull\ngit -C . stash apply\npython release.py build\n", "failed",
     "puts changes made on the box back into the code (`git stash apply`)"),
    ("git pull\ngit cherry-pick abc123\npython release.py build\n", "failed", "makes a commit on the box"),
    ("git pull\ngit checkout stash@{0} -- shortly.py\npython release.py build\n", "failed",
     "changes single files of the checkout (`git checkout … shortly.py`)"),
    ("git restore --source=HEAD~1 shortly.py\n", "failed", "changes single files of the checkout"),
    ("git pull\ngit checkout -- shortly.py\n", "failed", "changes single files of the checkout"),
    ("python release.py build\npython release.py release b --config .env\nnohup python3 -m shortly &\n", "failed",
     "starts the app from the checkout"),
    ("python release.py build\npython release.py release b --config .env\n"
     "python -c 'from shortly import app; app.run(port=5000)'\n", "failed", "starts the app from the checkout"),
    ("python release.py build\npython release.py release b --config .env\nwaitress-serve --port=5000 shortly:app\n",
     "failed", "starts the app from the checkout"),
    (None, "failed", "no deploy.sh"),
])
def test_deploy_script(tmp_path, script, status, seen):
    folder = variant(tmp_path)
    if script is None:
        (folder / "deploy.sh").unlink()
    else:
        (folder / "deploy.sh").write_text(script)
    result = verdict("build_release_run.deploy_script", folder)
    assert result[0] == status and seen in result[1], result


@pytest.mark.parametrize("words, run", [
    ("python release.py build", PythonRun("script", "release.py", ["build"])),
    (".venv/bin/python3.11 -u -W ignore -m release run v2", PythonRun("module", "release", ["run", "v2"])),
    ("python -mshortly --daemon", PythonRun("module", "shortly", ["--daemon"])),
    ("python -Bc 'import shortly'", PythonRun("code", "import shortly", [])),
    ("python -X dev shortly.py", PythonRun("script", "shortly.py", [])),
    ("gunicorn shortly:app", None),
])
def test_what_python_runs(words, run):
    import shlex
    assert python_run(shlex.split(words)) == run


# ---------------------------------------------------------------------------
# Writes next to the code, read as code (build_release_run.read_only_code)
# ---------------------------------------------------------------------------
def writes(tmp_path: Path, code: str, **more: str) -> list[str]:
    for name, text in {"shortly.py": code, **more}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    return [f"{w.file}:{w.line}" for w in writes_next_to_code(tmp_path)]


@pytest.mark.parametrize("code", [
    "import os\nHERE = os.path.dirname(os.path.abspath(__file__))\nopen(os.path.join(HERE, 'x.pid'), 'w')\n",
    "from pathlib import Path\n(Path(__file__).parent / 'misses.txt').write_text('x')\n",
    "from pathlib import Path\nLOG = Path(__file__).with_name('shortly.log')\nwith LOG.open('a') as f:\n    f.write('x')\n",
    "import logging, os\nfrom logging.handlers import RotatingFileHandler as R\n"
    "h = R(os.path.join(os.path.dirname(__file__), 'app.log'))\n",
    "import os, sqlite3\nDB = os.environ.get('DB') or os.path.dirname(__file__) + '/shortly.db'\nsqlite3.connect(DB)\n",
    "import os\nfrom sqlalchemy import create_engine\n"
    "URL = os.environ.get('DATABASE_URL') or f'sqlite:///{os.path.dirname(__file__)}/s.db'\nengine = create_engine(URL)\n",
    "import os\ndef note(path, line):\n    with open(path, 'a') as f:\n        f.write(line)\n"
    "def miss(code):\n    note(os.path.join(os.path.dirname(__file__), 'misses.txt'), code)\n",
    "import os\ndef here():\n    return os.path.dirname(__file__)\nopen(os.path.join(here(), 'x'), mode='x')\n",
    "import os\nfrom flask import Flask\napp = Flask(__name__)\n"
    "app.config['REPORT'] = os.path.join(app.root_path, 'report.txt')\n"
    "def purge():\n    open(app.config['REPORT'], 'w').write('1')\n",
    "import os, shutil\nclass Store:\n    def __init__(self):\n        self.folder = os.path.dirname(__file__)\n"
    "    def keep(self, src):\n        shutil.copy(src, self.folder)\n",
    "import os\nfd = os.open(os.path.join(os.path.dirname(__file__), 'x.pid'), os.O_WRONLY | os.O_CREAT)\n",
])
def test_writes_next_to_the_code_are_found(tmp_path, code):
    assert writes(tmp_path, code)


@pytest.mark.parametrize("code", [
    "import os\nHERE = os.path.dirname(__file__)\nROBOTS = open(os.path.join(HERE, 'robots.txt')).read()\n",
    "import os\nLOG = os.path.abspath(os.environ.get('LOG_FILE') or 'shortly.log')\nopen(LOG, 'a')\n",
    "import os\nNAME = os.path.basename(__file__)\nopen(NAME + '.log', 'a')\n",  # in the working directory
    "import os\nfrom flask import Flask\nHERE = os.path.dirname(__file__)\n"
    "app = Flask(__name__, static_folder=os.path.join(HERE, 'static'))\nopen(app.config.get('LOG', 'x.log'), 'a')\n",
    "import os\nHERE = os.path.dirname(__file__)\ndef save(path):\n    open(path, 'w')\nsave('var/x.txt')\n"
    "if os.path.exists(os.path.join(HERE, 'x')):\n    open('flag', 'w')\n",
    "import os\ndef log_file():\n    path = os.path.join(os.path.dirname(__file__), 'x')\n    return 'shortly.log'\n"
    "open(log_file(), 'a')\ndef other():\n    path = 'y.txt'\n    open(path, 'w')\n",
])
def test_reads_and_writes_elsewhere_pass(tmp_path, code):
    assert writes(tmp_path, code) == []


def test_the_release_tool_and_tests_may_write_next_to_themselves(tmp_path):
    tool = "import os, shutil\nROOT = os.path.join(os.path.dirname(__file__), '..', 'deploy')\nos.makedirs(ROOT)\n"
    test = "import os\nopen(os.path.join(os.path.dirname(__file__), 'out.txt'), 'w')\n"
    worker = "import os\nopen(os.path.join(os.path.dirname(__file__), 'worker.pid'), 'w')\n"
    assert writes(tmp_path, "x = 1\n", **{"release.py": "import deploytool\n" + tool, "deploytool.py": tool, "tests/test_app.py": test,
                                            "worker.py": worker}) == ["worker.py:2"]


def test_app_modules_are_the_app_and_what_imports_it(tmp_path):
    for name, text in {"shortly.py": "import helpers\n", "wsgi.py": "from shortly import app\n",
                       "helpers.py": "", "release.py": "import shortly\n", "pkg/__init__.py": "from .. import x\n",
                       "serve/__main__.py": "from wsgi import app\n"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert app_modules(tmp_path) == {"shortly", "wsgi", "serve"}


# ---------------------------------------------------------------------------
# What the runbook says, and what it warns against (the catalogue's retired patterns, read as the runbook check
# reads them)
# ---------------------------------------------------------------------------
RETIRED = catalogue.load(ROOT).get("05_build_release_run").runbook["retired"]


@pytest.mark.parametrize("text, said", [
    ("In an emergency, fix the running release in place: chmod it first.", True),
    ("Releases are read-only.\n\n- edit the release, then restart", True),
    ("    tail -f /srv/d/releases/v*/shortly.log", True),
    ("    chmod -R u+w $SHORTLY_DEPLOY_ROOT/current", True),
    ("    cd $SHORTLY_DEPLOY_ROOT/current && sha256sum * > MANIFEST", True),
    ("For a one-line fix, edit shortly.py in /srv/d/current and restart.", True),
    ("Then rewrite its checksums.", True),
    ("Never edit a release, not even as root: run refuses it.", False),
    ("Do not\nedit a release.", False),
    ("If you edit a release, `run` refuses it.", False),
    ("Don't edit a release. Make a new one.", False),
    ("To change a release's config, make a new release.", False),
    ("To update the MANIFEST, make a new release.", False),
    ("Change nothing in releases/: they are read-only.", False),
    ("The log is no longer in current/shortly.log: see var/.", False),
    ("Update the release notes in CHANGES.md.", False),
])
def test_what_the_runbook_may_no_longer_say(text, said):
    assert any(still_says(text, pattern) for pattern, _ in RETIRED) is said
