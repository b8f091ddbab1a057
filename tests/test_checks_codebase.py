"""Factor I checks, on small folders."""

import subprocess

import pytest

from factorlab.checks.codebase import _local, _setting_strings

from helpers import verdict, write_app

APP = "from flask import Flask\napp = Flask(__name__)\n" + "".join(f"# line {i}\nx{i} = {i}\n" for i in range(30))


def git(folder, *args):
    subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
                   check=True, capture_output=True)


@pytest.mark.parametrize("steps, status, seen", [
    ([], "failed", "not inside a git repository"),
    ([("init", "-q")], "failed", "no commits yet"),
    ([("init", "-q"), ("commit", "-q", "--allow-empty", "-m", "x")], "failed", "git does not track shortly.py"),
    ([("init", "-q"), ("add", "-A"), ("commit", "-q", "-m", "x")], "passed", "tracks the app's 1 Python file(s)"),
])
def test_git_repository(tmp_path, steps, status, seen):
    app = write_app(tmp_path / "app", {"shortly.py": APP})
    for step in steps:
        git(app, *step)
    assert verdict("codebase.git_repository", app)[0] == status
    assert seen in verdict("codebase.git_repository", app)[1]


def test_git_repository_refuses_a_folder_its_enclosing_repository_ignores(tmp_path):
    write_app(tmp_path, {".gitignore": "workspace/\n"})
    git(tmp_path, "init", "-q")
    app = write_app(tmp_path / "workspace" / "app", {"shortly.py": APP})
    status, message = verdict("codebase.git_repository", app)
    assert status == "failed" and "ignores it" in message


@pytest.mark.parametrize("files, status", [
    ({"shortly.py": APP}, "passed"),
    ({"shortly.py": APP, "shortly_prod.py": "x = 1\n"}, "failed"),
    ({"shortly.py": APP, "shortly-staging.py": "x = 1\n"}, "failed"),
    ({"shortly.py": APP, "prod.py": APP.replace("x1 ", "y1 ")}, "failed"),  # a near-copy under any name
    ({"shortly.py": APP, "test_shortly.py": "import shortly\n"}, "passed"),
    ({"shortly.py": APP, "shortly_test.py": "import shortly\n"}, "passed"),
])
def test_single_codebase(tmp_path, files, status):
    assert verdict("codebase.single_codebase", write_app(tmp_path / "app", files))[0] == status


@pytest.mark.parametrize("deploy, status", [
    ('if [ "$(hostname)" = prod-web-1 ]; then\n    git apply patches/fix.diff\nfi\npython3 shortly.py\n', "failed"),
    ('[[ $HOSTNAME == prod-* ]] && patch -p1 < prod.patch\npython3 shortly.py\n', "failed"),
    ('case "$DEPLOY_ENV" in\n  production) git checkout origin/production -- shortly.py ;;\nesac\n', "failed"),
    ('if [ "$SHORTLY_ENV" = staging ]; then cp /srv/staging/shortly.py shortly.py; fi\n', "failed"),
    ('PYTHONPATH=/srv/shortly nohup python3 -m shortly_live &\n', "failed"),
    ('PYTHONPATH=/opt/box python3 -m server\n', "failed"),  # a module from outside the folder
    ('.venv/bin/gunicorn shortly_prd:app\n', "failed"),
    ('python3 /srv/prod/shortly.py\n', "failed"),
    ('if [ "$(hostname)" = prod-web-1 ]; then python3 /opt/fast/server.py; else python3 shortly.py; fi\n', "failed"),
    # every deploy runs the same code: host tests that change no code, tools run with -m, the one app served
    ('git pull\nsed -i "s/^DEBUG = True/DEBUG = False/" shortly.py\n[ -f shortly.pid ] && kill "$(cat shortly.pid)"\n'
     'if [ "$(hostname)" = prod-web-1 ]; then sudo systemctl reload nginx; fi\npython3 shortly.py --daemon\n', "passed"),
    ('python3 -m venv .venv\n.venv/bin/python -m pip install -r requirements.txt\n'
     'if [[ $(hostname) == prod-* ]]; then .venv/bin/python -m gunicorn shortly:app; '
     'else .venv/bin/python -m flask --app shortly run; fi\n', "passed"),
    ('if [ "$(uname -s)" = Darwin ]; then sed -i "" "s/a/b/" shortly.py; fi\n', "passed"),  # not about the deploy
    ('if [[ $(hostname) == prod-* ]]; then git checkout -q v1.2; fi\n', "passed"),  # a deploy of an older commit
])
def test_single_codebase_reads_the_deploy_script(tmp_path, deploy, status):
    app = write_app(tmp_path / "app", {"shortly.py": APP, "deploy.sh": "#!/bin/bash\nset -e\n" + deploy})
    assert verdict("codebase.single_codebase", app)[0] == status


@pytest.mark.parametrize("runbook, status", [
    ("Prod runs `python3 -m shortly_prod`.\n", "failed"),
    ("Serve it with `gunicorn shortly_staging:app`.\n", "failed"),
    ("On prod-web-1, FLASK_APP=shortly_prod.\n", "failed"),
    ("Never make a per-host copy such as shortly_prod.py: deploys differ only in config.\n", "passed"),
    ("Production used to run\nshortly_prod.py, a copy; it was folded into shortly.py.\n", "passed"),
    ("Serve it with `gunicorn shortly:app` or `python3 -m flask --app shortly run`.\n", "passed"),
])
def test_single_codebase_reads_the_runbook(tmp_path, runbook, status):
    app = write_app(tmp_path / "app", {"shortly.py": APP, "OPS.md": "# Ops\n\n" + runbook})
    assert verdict("codebase.single_codebase", app)[0] == status


def test_a_committed_patch_to_the_app_is_a_copy(tmp_path):
    patch = "--- a/shortly.py\n+++ b/shortly.py\n@@ -1,1 +1,1 @@\n-x1 = 1\n+x1 = 2\n"
    app = write_app(tmp_path / "app", {"shortly.py": APP, "prod.diff": patch})
    status, message = verdict("codebase.single_codebase", app)
    assert status == "failed" and "prod.diff, a patch to shortly.py" in message


@pytest.mark.parametrize("branch, status", [("prd", "failed"), ("canary", "failed"), ("prod-web-1", "failed"),
                                            ("dev", "passed"), ("feature/new-ui", "passed")])
def test_single_codebase_branches_named_for_a_deploy(tmp_path, branch, status):
    app = write_app(tmp_path / "app", {"shortly.py": APP})
    git(app, "init", "-q", "-b", "main")
    git(app, "add", "-A")
    git(app, "commit", "-q", "-m", "one")
    git(app, "switch", "-q", "-c", branch)
    (app / "shortly.py").write_text(APP + "x = 'ahead'\n")
    git(app, "commit", "-q", "-am", "ahead")
    git(app, "switch", "-q", "main")
    assert verdict("codebase.single_codebase", app)[0] == status


@pytest.mark.parametrize("name, local", [
    (".env", True), (".env.production", True), ("config/prod.env", True), (".env.example", False),
    ("example.env", False), (".env.sample", False), ("shortly.db", True), ("shortly.db.bak", True),
    ("data/shortly.sqlite3-journal", True), ("shortly.py~", True), ("backup.dump", True), ("db.py", False),
    ("shortly.py", False), ("docs/database.md", False), ("shortly.log.3", True),
])
def test_what_is_not_code(name, local):
    assert bool(_local(name)) == local


@pytest.mark.parametrize("code, setting", [
    ('BASE = "https://shortly.example.com/"\n', True),
    ('SETTINGS = {"base": "https://shortly.example.com/"}\n', True),
    ('import os\nBASE = os.environ.get("BASE", "https://shortly.example.com/")\n', True),
    ('"""Served in production at https://shortly.example.com/."""\nBASE = "http://localhost:5000/"\n', False),
    ('def f():\n    """At https://shortly.example.com/."""\n', False),
    ('import logging\nlogging.info(f"prod is https://shortly.example.com/ ({1})")\n', False),
    ('print("see https://shortly.example.com/")\n', False),
])
def test_strings_that_can_set_something(tmp_path, code, setting):
    path = tmp_path / "shortly.py"
    path.write_text(code)
    assert any("shortly.example.com" in value for value in _setting_strings(path)) == setting
