"""The factorlab command line, driven as a learner drives it, on the tiny fake course."""

import json
import shutil
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT, run_cli

SCHEMA = json.loads((ROOT / "docs" / "results.schema.json").read_text())


def fake_env(course):
    return {"FACTORLAB_COURSE": str(course.root)}


def test_list_shows_ready_and_planned_exercises(fake_course):
    out = run_cli("list", env=fake_env(fake_course)).stdout
    assert "03_config" in out and "coming soon" in out and "2 of 3 factors are ready" in out
    assert "complete" not in out
    real = run_cli("list", env={"FACTORLAB_COURSE": str(ROOT)}).stdout
    assert "coming soon" not in real and "The course is complete: all 12 factors have an exercise and checks" in real
    detailed = run_cli("list", "--checks", env=fake_env(fake_course)).stdout
    assert "config.fails_fast: Missing required config stops the app at once" in detailed
    assert "the app exits at once with a non-zero" in detailed


@pytest.mark.parametrize("args, message", [
    (("check", "13"), "unknown exercise '13': expected one of 01_codebase, 03_config, 04_backing_services"),
    (("check", "03", "--path", "/nonexistent/folder"), "no such folder"),
    (("check", "03", "--path", "."), "not an exercise folder"),
    (("check", "04"), "04_backing_services has no checks yet"),
    (("hint", "04"), "has no hints yet"),
])
def test_usage_errors_exit_2_with_one_line(fake_course, args, message):
    done = run_cli(*args, env=fake_env(fake_course), cwd=fake_course.root)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1 and not done.stdout


def test_argparse_usage_errors_exit_2(fake_course):
    assert run_cli("check", env=fake_env(fake_course)).returncode == 2


def test_check_exit_codes_and_json(fake_course, no_leftovers):
    env = fake_env(fake_course)
    starter = run_cli("check", "03", "--json", env=env)
    solution = run_cli("check", "config", "--path", str(fake_course.get("03").solution), "--json", env=env)
    assert (starter.returncode, solution.returncode) == (1, 0)
    for done in (starter, solution):
        jsonschema.validate(json.loads(done.stdout), SCHEMA)
    assert json.loads(solution.stdout)["passed"] is True


def test_check_all_runs_every_factor_on_the_last_exercise_and_prints_a_scorecard(fake_course, no_leftovers):
    env = fake_env(fake_course)
    last = fake_course.get("03")
    starter = run_cli("check", "all", env=env)
    assert starter.returncode == 1, starter.stdout + starter.stderr
    assert f"{last.id}: " in starter.stdout and "scorecard: 1 of 2 factors pass" in starter.stdout
    assert "❌  III  Config" in starter.stdout and "failed: " in starter.stdout.split("III  Config")[1]
    assert "[codebase.single_codebase]" in starter.stdout, "a factor that passes is run too"
    solution = run_cli("check", "ALL", "--path", str(last.solution), env=env)
    assert solution.returncode == 0 and solution.stdout.rstrip().endswith("scorecard: 2 of 2 factors pass")
    as_json = json.loads(run_cli("check", "all", "--path", str(last.solution), "--json", env=env).stdout)
    jsonschema.validate(as_json, SCHEMA)
    assert {r["check"] for r in as_json["results"]} == {*fake_course.get("01").checks, *last.checks}


def solve(exercise):
    """Do the exercise as a learner would: make the starter folder match the solution."""
    shutil.rmtree(exercise.starter)
    shutil.copytree(exercise.solution, exercise.starter)


def test_hints_come_one_more_at_a_time_and_are_remembered(fake_course):
    env = fake_env(fake_course)
    first = run_cli("hint", "01", env=env).stdout
    second = run_cli("hint", "01", env=env).stdout
    third = run_cli("hint", "01", env=env).stdout
    assert "Hint 1/2: first hint" in first and "second hint" not in first
    assert "Hint 2/2: second hint" in second and "last hint" in second
    assert third == second


def test_solution_waits_for_a_passing_check_unless_forced(fake_course):
    env = fake_env(fake_course)
    refused = run_cli("solution", "01", env=env)
    assert refused.returncode == 2 and "once `factorlab check 01` passes" in refused.stderr
    forced = run_cli("solution", "01", "--force", env=env)
    assert forced.returncode == 0 and "--- yours/tiny_prod.py" in forced.stdout
    assert run_cli("check", "01", "--path", str(fake_course.get("01").solution), env=env).returncode == 0
    assert run_cli("solution", "01", env=env).returncode == 2, "checking another folder must not unlock it"
    solve(fake_course.get("01"))
    assert run_cli("check", "01", env=env).returncode == 0
    opened = run_cli("solution", "01", env=env)
    assert opened.returncode == 0 and "diff" not in opened.stderr


def test_progress_shows_each_factor(fake_course):
    env = fake_env(fake_course)
    run_cli("check", "03", env=env)
    solve(fake_course.get("01"))
    run_cli("check", "01", "--path", str(fake_course.get("01").starter), env=env)
    out = run_cli("progress", env=env).stdout
    assert "1. Codebase" in out and "passed" in out
    assert "3. Config" in out and "failing" in out
    assert "4. Backing services       coming soon" in out
    assert "1 of 2 available exercises passed" in out


def git(root: Path, *args):
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
                   check=True, capture_output=True)


def test_reset_restores_the_starter_after_confirmation(fake_course):
    env = fake_env(fake_course)
    git(fake_course.root, "init", "-q")
    git(fake_course.root, "add", "-A")
    git(fake_course.root, "commit", "-qm", "course")
    tiny = fake_course.get("03").starter / "tiny.py"
    original = tiny.read_text()
    tiny.write_text("broken")
    (tiny.parent / "extra.py").write_text("x = 1")
    declined = run_cli("reset", "03", env=env, input="n\n")
    assert declined.returncode == 1 and tiny.read_text() == "broken"
    assert run_cli("reset", "03", env=env).returncode == 1  # no answer on stdin: nothing changes
    git(fake_course.root, "add", "-A")
    git(fake_course.root, "commit", "-qm", "my work")  # as the course tells a learner to
    run_cli("hint", "03", env=env)
    done = run_cli("reset", "03", "--yes", env=env)
    assert done.returncode == 0 and tiny.read_text() == original and not (tiny.parent / "extra.py").exists()
    assert "back to the starter the course shipped (tree fce58b5aad, as in commit" in done.stdout
    assert "course" in done.stdout and "my work" not in done.stdout
    assert "Hint 1/1" in run_cli("hint", "03", env=env).stdout, "the hints start over"


def test_reset_outside_git_is_a_usage_error(fake_course):
    done = run_cli("reset", "03", "--yes", env=fake_env(fake_course))
    assert done.returncode == 2 and "expected a git clone of the course" in done.stderr


@pytest.mark.parametrize("mode", [["--poll", "--interval", "0.2"], []])
def test_watch_reruns_the_check_when_a_file_changes(fake_course, mode, no_leftovers):
    env = fake_env(fake_course)
    import os
    import sys

    folder = fake_course.get("03").starter
    proc = subprocess.Popen([sys.executable, "-m", "factorlab", "watch", "03", "--max-runs", "2", *mode],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "waiting for a change" in line:
                break
        (folder / "tiny.py").write_text((fake_course.get("03").solution / "tiny.py").read_text())
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    text = "".join(lines) + out
    assert proc.returncode == 0, text + err
    assert text.count("03_config:") == 2 and "03_config: 2 passed" in text
    assert ("polling" in text) == bool(mode)


def test_no_docker_engine_exits_2_with_one_line(fake_course, tmp_path):
    done = run_cli("check", "01", "--runner", "docker", env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert done.returncode == 2
    assert done.stderr.strip() == "factorlab: no Docker engine: start Docker, or use --runner local"
    assert not done.stdout
