"""Factor I checks, on small folders."""

import subprocess

import pytest

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
