"""The mutation suite: every check fails wrong work, and every factor passes correct work written differently.

The corpus is tests/mutants/NN_slug.toml (format: src/factorlab/dev/mutants.py). The run ends with the kill
rate per check (tests/conftest.py prints it).
"""

from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from factorlab import checks, files
from factorlab.catalogue import load
from factorlab.dev import mutants

from conftest import JUDGED, ROOT

COURSE = load(ROOT)
READY = [ex for ex in COURSE.exercises if ex.ready]
VARIANTS = mutants.load(ROOT, COURSE)
TODO = re.compile(r"TODO:\s*(.*)")
JOBS = 2  # variants judged side by side


def todos(exercise) -> list[tuple[str, int, str]]:
    """(file, line number, text) of every TODO in an exercise's starter."""
    found = []
    for path in files.walk(exercise.starter):
        for number, line in enumerate((files.text_of(path) or "").splitlines(), 1):
            match = TODO.search(line)
            if match:
                found.append((path.relative_to(exercise.starter).as_posix(), number, line))
    return found


@pytest.fixture(scope="module")
def judged(request) -> dict[str, mutants.Outcome]:
    """The outcome of every variant this run selected, judged JOBS at a time before the first verdict is read: a
    check mostly waits on the processes it started, so two variants side by side on two cores take about half the
    time, and verdicts do not depend on how busy the machine is (tests/test_stress.py). The session may also hold
    nbval's notebook cells, which have no originalname."""
    selected = [item.callspec.params["variant"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_the_verdict_is_right" and hasattr(item, "callspec")]
    with ThreadPoolExecutor(max_workers=JOBS, thread_name_prefix="judge") as pool:
        return dict(zip((v.id for v in selected), pool.map(lambda v: mutants.judge(v, COURSE), selected)))


@pytest.mark.timeout(3600)  # the first verdict waits for the whole selection, judged side by side (each check of
# a variant has its own time limit, so a hanging variant still ends)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_the_verdict_is_right(variant, request, no_leftovers, judged):
    outcome = judged[variant.id]
    request.config.stash.setdefault(JUDGED, []).append(outcome)
    assert outcome.right, outcome.describe()


@pytest.mark.parametrize("exercise", READY, ids=lambda ex: ex.id)
def test_every_check_has_two_mutants_and_the_factor_two_alternatives(exercise):
    mine = [v for v in VARIANTS if v.exercise == exercise.id]
    for check_id in exercise.checks:
        killers = [v.name for v in mine if v.kind == "mutant" and check_id in v.kills]
        assert len(killers) >= 2, f"{check_id} has {len(killers)} mutant(s): {killers}"
    assert all(c in exercise.checks for v in mine if v.kind == "mutant" for c in v.kills), \
        "a mutant of a factor must fail that factor's own checks"
    assert len([v for v in mine if v.kind == "alternative"]) >= 2


@pytest.mark.parametrize("exercise", READY, ids=lambda ex: ex.id)
def test_every_todo_is_undone_by_a_mutant(exercise):
    undone = [v.undoes.split(":", 1) for v in VARIANTS if v.exercise == exercise.id and v.undoes]
    for name, number, line in todos(exercise):
        assert any(name == file.strip() and words.strip() in line for file, words in undone), \
            f"{exercise.id}/{name}:{number} has no mutant that undoes it: {line.strip()}"


@pytest.mark.parametrize("exercise, name", [(ex, name) for ex in READY for name in sorted({t[0] for t in todos(ex)})],
                         ids=lambda v: getattr(v, "id", v))
def test_a_starter_file_put_back_fails_the_exercise(exercise, name, tmp_path, no_leftovers):
    """The solution with one of the starter's TODO files back in place fails the learner's own check."""
    folder = files.copy_app(exercise.solution, tmp_path / "app")
    shutil.copyfile(exercise.starter / name, folder / name)
    mutants._git(folder, "init", "-q", "-b", "main")
    mutants._git(folder, "add", "-A")
    mutants._git(folder, "commit", "-q", "-m", "solution with a starter file")
    report = checks.run_exercise(exercise, folder, COURSE)
    assert not report.passed, f"with the starter's {name} the checks still pass:\n{report.to_text()}"
    assert all(r.status != "error" for r in report.results), report.to_text()


def test_a_variant_that_no_longer_applies_is_reported(tmp_path):
    variant = mutants.Variant("01_codebase", "mutant", "stale", "an edit of text that is not there",
                              (mutants.Edit("shortly.py", old="no such passage", new=""),), ("codebase.code_only",))
    outcome = mutants.judge(variant, COURSE)
    assert not outcome.right and "no longer applies" in outcome.describe()

