"""Factor V: the reference release.py keeps its contract, and the checks catch each way of breaking it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


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
