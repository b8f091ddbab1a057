"""The course tests itself: every starter fails its own factor, every solution passes it and all before it."""

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from factorlab import checks, scorecard
from factorlab.catalogue import load
from factorlab.runners.local import LocalSession
from factorlab.services import stop_shared

from conftest import ROOT, outside_git, run_cli

COURSE = load(ROOT)
READY = [ex for ex in COURSE.exercises if ex.ready]
IGNORED = {"__pycache__"}


def names(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and not IGNORED & set(p.parts)}


@pytest.mark.parametrize("exercise", READY, ids=lambda ex: ex.id)
def test_starter_fails_its_own_factor(exercise, no_leftovers):
    report = checks.run_exercise(exercise, exercise.starter, COURSE)
    assert not report.passed, report.to_text()
    assert all(r.status != "error" for r in report.results), report.to_text()


@pytest.mark.parametrize("state", [None, *READY], ids=lambda ex: ex.id if ex else "legacy")
def test_the_scorecard_passes_every_factor_done_and_names_what_fails_next(state, tmp_path, no_leftovers):
    """Every check of the course on the legacy app and on each solution (what `factorlab check all` runs): the
    factors up to the solution's all pass, and the next one fails, its failing checks named factor by factor;
    so the last solution passes all twelve."""
    folder = state.solution if state else outside_git(tmp_path, COURSE.legacy)
    done = state.factor if state else 0
    report, scores = scorecard.score(folder, COURSE)
    text = scorecard.to_text(scores)
    assert [s.exercise.id for s in scores] == [ex.id for ex in READY]
    assert all(s.passed for s in scores[:done]), report.to_text()
    assert all(r.status != "error" for s in scores[:done + 1] for r in s.results), report.to_text()
    if done < len(READY):
        upcoming = scores[done]
        assert not upcoming.passed, f"{upcoming.exercise.id} passes on {folder}: its sin is not in that state"
        assert all(f"[{r.check}]" in text for r in upcoming.failing), text
    else:
        assert report.passed and text.endswith(f"scorecard: {len(READY)} of {len(READY)} factors pass"), text


@pytest.mark.parametrize("check_id", [c for ex in READY for c in ex.checks])
def test_the_legacy_app_fails_every_check(check_id, tmp_path, no_leftovers):
    legacy = outside_git(tmp_path, COURSE.legacy)
    try:
        result = checks.run_check(checks.get(check_id), legacy, LocalSession(COURSE.app), COURSE)
    finally:
        stop_shared()  # run_exercise does this after its checks; a lone run_check leaves it to its caller
    assert result.status == "failed", result


@pytest.mark.parametrize("exercise", READY, ids=lambda ex: ex.id)
def test_the_starter_is_the_previous_state_plus_todos(exercise):
    previous = COURSE.starting_point(exercise)
    assert "TODO" in "".join(p.read_text() for p in exercise.starter.rglob("*") if p.is_file()
                             and "__pycache__" not in p.parts)
    assert names(previous) <= names(exercise.starter) | {".gitignore"}, "a starter lost files of its starting point"


@pytest.mark.parametrize("exercise", READY, ids=lambda ex: ex.id)
def test_solutions_mirror_exercises(exercise):
    # Deleting a per-environment copy is itself factor I's fix, so only solutions may lack a file.
    assert names(exercise.solution) <= names(exercise.starter)
    extra = names(exercise.starter) - names(exercise.solution)
    assert all("_prod" in name for name in extra), f"stray files in the starter: {extra}"


def test_no_stray_folders():
    for top in ("exercises", "solutions"):
        assert {p.name for p in (ROOT / top).iterdir()} == {ex.id for ex in READY}, top


@pytest.mark.parametrize("state", ["legacy", *[f"solutions/{ex.id}" for ex in READY]])
def test_only_the_legacy_states_hold_the_fake_secrets(state):
    text = "".join(p.read_text() for p in (ROOT / state).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    holds = "FAKE-legacy-secret-key" in text
    assert holds == (state in ("legacy", "solutions/01_codebase", "solutions/02_dependencies"))
    assert not (ROOT / state / ".env").exists()


# The CLI adds parsing, exit codes and JSON to run_exercise, whose verdicts the tests above prove for every
# factor: three factors (the first, one in the middle, the last) prove the contract without running them all again.
@pytest.mark.parametrize("exercise", [READY[0], READY[len(READY) // 2], READY[-1]], ids=lambda ex: ex.id)
def test_the_cli_contract_on_the_real_course(exercise, no_leftovers):
    schema = json.loads((ROOT / "docs" / "results.schema.json").read_text())
    starter = run_cli("check", exercise.number, "--path", str(exercise.starter), "--json")
    solution = run_cli("check", exercise.number, "--path", str(exercise.solution), "--json")
    assert (starter.returncode, solution.returncode) == (1, 0), starter.stdout + solution.stdout
    for done in (starter, solution):
        jsonschema.validate(json.loads(done.stdout), schema)


def test_reset_brings_back_the_shipped_starter_after_the_learner_committed(tmp_path):
    clone = tmp_path / "course"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True)
    exercise = COURSE.get("01")
    folder = clone / "exercises" / exercise.id
    shutil.rmtree(folder)
    shutil.copytree(exercise.solution, folder)  # the exercise done, as a learner would
    (folder / "notes.md").write_text("what I learnt\n")
    for args in (["add", "-A"], ["-c", "user.name=l", "-c", "user.email=l@l.invalid", "commit", "-qm", "solved 01"]):
        subprocess.run(["git", "-C", str(clone), *args], check=True, capture_output=True)
    env = {"FACTORLAB_COURSE": str(clone)}
    assert run_cli("check", "01", env=env, cwd=clone).returncode == 0
    done = run_cli("reset", "01", "--yes", env=env, cwd=clone)
    assert done.returncode == 0, done.stderr
    assert "back to the starter the course shipped" in done.stdout and "solved 01" not in done.stdout
    def git(*args: str) -> bytes:
        return subprocess.run(["git", "-C", str(clone), *args], capture_output=True, check=True).stdout

    shipped = git("ls-tree", "-r", "--name-only", "-z", "HEAD~1", "--", f"exercises/{exercise.id}").decode()
    shipped = sorted(name for name in shipped.split("\0") if name)
    now = sorted(p.relative_to(clone).as_posix() for p in folder.rglob("*") if p.is_file())
    assert now == shipped, "the folder does not hold exactly the files the course shipped"
    for name in shipped:
        assert (clone / name).read_bytes() == git("show", f"HEAD~1:{name}"), f"{name} is not as shipped"
    assert "01_codebase" not in (clone / ".factorlab" / "progress.json").read_text()
