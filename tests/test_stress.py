"""Verdicts do not depend on how busy the machine is: every starter's and solution's own checks, twice
over, while busy processes oversubscribe the cores, give the same verdicts as the self-test demands."""

from __future__ import annotations

import os
import sys

import pytest

from factorlab import checks
from factorlab.catalogue import load
from factorlab.process import Process

from conftest import ROOT

COURSE = load(ROOT)
READY = [ex for ex in COURSE.exercises if ex.ready]
RUNS = 2  # twice under load: the same verdicts both times, and the self-test's
BUSY_PER_CORE = 2

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def busy_machine(tmp_path_factory):
    """Two spinning processes per core, for as long as the module's tests run."""
    folder = tmp_path_factory.mktemp("busy")
    spinners = [Process.start([sys.executable, "-c", "while True:\n    pass\n"], cwd=str(folder), env=dict(os.environ))
                for _ in range(BUSY_PER_CORE * (os.cpu_count() or 2))]
    yield len(spinners)
    for spinner in spinners:
        spinner.stop(grace=0.5)


@pytest.mark.parametrize("state", ["starter", "solution"])
@pytest.mark.parametrize("exercise", READY, ids=lambda ex: ex.id)
def test_the_same_verdicts_under_load(exercise, state, busy_machine, no_leftovers):
    folder = exercise.starter if state == "starter" else exercise.solution
    seen = []
    for _ in range(RUNS):
        report = checks.run_exercise(exercise, folder, COURSE)
        seen.append({r.check: r.status for r in report.results})
        if state == "solution":
            assert report.passed, f"with {busy_machine} busy processes:\n{report.to_text()}"
        else:
            assert any(r.status == "failed" for r in report.results), report.to_text()
            assert all(r.status != "error" for r in report.results), report.to_text()
    assert all(verdicts == seen[0] for verdicts in seen), f"the verdicts changed from run to run: {seen}"
