"""Factor V: the reference release.py keeps its contract, and the checks catch each way of breaking it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from factorlab.checks import build_release_run as release_checks
from factorlab.checks.deploy_root import make_writable

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
    make_writable(tmp_path / "shortly-deploy")  # releases are read-only; let tmp_path go


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
# The checks, on broken variants of the solution
# ---------------------------------------------------------------------------
def test_a_tampered_release_is_caught_even_as_root(tmp_path):
    # A verify that trusts the permissions: "nobody can write a read-only file". Root can, and the check does.
    trusting = variant(tmp_path, ("release.py",
                                  "    found = differences(folder)\n    if found:\n        print(f\"release ",
                                  "    found = [p.name for p in folder.rglob('*') if p.stat().st_mode & 0o222]\n"
                                  "    if found:\n        print(f\"release "))
    status, message = verdict("build_release_run.immutable", trusting)
    assert status == "failed" and "still exited 0" in message, message


def test_a_run_that_does_not_verify_is_caught(tmp_path, monkeypatch):
    monkeypatch.setattr(release_checks, "RUN_REFUSAL_TIMEOUT", 3.0)
    careless = variant(tmp_path, ("release.py", "    folder = chosen(root, args.id)\n    found = differences(folder)",
                                  "    folder = chosen(root, args.id)\n    found = []"))
    status, message = verdict("build_release_run.immutable", careless)
    assert status == "failed" and "started the edited release" in message, message


@pytest.mark.parametrize("file, old, new, check_id, seen", [
    ("release.py", '    return "b" + digest.hexdigest()[:12]', '    import time\n    return f"b{time.time_ns()}"',
     "build_release_run.ordered_ids", "two build ids"),
    ("release.py", '(" (current)" if release_id == current else "")', '""', "build_release_run.ordered_ids", "oldest first"),
    ("release.py", 'values["SHORTLY_RELEASE"] = release_id', 'values.pop("SHORTLY_ADMIN_TOKEN", None)',
     "build_release_run.ordered_ids", "release.env holds SHORTLY_RELEASE=None"),
    ("release.py", "    if not earlier:\n        fail(",
     "    if not earlier:\n        return print(current)\n        fail(", "build_release_run.rollback", "nothing before v1"),
    ("release.py", "    point_current(root, earlier[-1])\n", "", "build_release_run.rollback", "current pointing at v2"),
    ("release.py", "    make_read_only(folder)\n", "", "build_release_run.read_only_code", "is writable"),
    ("shortly.py", 'os.path.abspath(app.config.get("LOG_FILE") or "shortly.log")',
     'os.path.join(os.path.dirname(__file__), "shortly.log")', "build_release_run.read_only_code", "shortly.log into its code"),
    ("shortly.py", "    return jsonify(release=RELEASE)", '    return jsonify(release="v1")',
     "build_release_run.rollback", "answered 'v1'"),
])
def test_each_broken_contract_fails_its_check(tmp_path, file, old, new, check_id, seen):
    status, message = verdict(check_id, variant(tmp_path, (file, old, new)))
    assert status == "failed" and seen in message, message


def test_without_release_py_every_check_fails_clearly(tmp_path):
    folder = variant(tmp_path)
    (folder / "release.py").unlink()
    for check_id in ("build_release_run.immutable", "build_release_run.ordered_ids", "build_release_run.rollback", "build_release_run.read_only_code"):
        assert verdict(check_id, folder) == ("failed", "Seen: no release.py in the app's folder.\nExpected: a "
                                             "command-line tool, release.py, that builds, releases, lists, verifies, "
                                             "rolls back and runs the app.")


@pytest.mark.parametrize("script, status, seen", [
    ((SOLUTION / "deploy.sh").read_text(), "passed", ""),
    ("python release.py --root /srv/d build\npython release.py --root /srv/d release b1 --config .env\n"
     "exec python release.py run\n", "passed", ""),
    ((ROOT / "legacy" / "deploy.sh").read_text(), "failed", "deploy.sh:9 edits a file in place"),
    ("python release.py build\npython release.py release b1 --config .env\nsed --in-place s/a/b/ .env\n"
     "python release.py run\n", "failed", "edits a file in place"),
    ("python release.py build && python release.py release b1 --config .env\nnohup python3 shortly.py --daemon &\n",
     "failed", "deploy.sh:2 starts the app from the checkout"),
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
