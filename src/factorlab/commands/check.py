"""`factorlab check ID`: run an exercise's checks and record the verdict."""

from __future__ import annotations

import sys

from .. import catalogue as cat
from ..checks import run_exercise
from ..progress import Progress
from ..results import ERROR, FAILED, Report
from . import exercise_folder, ready_exercise


def check(catalogue: cat.Catalogue, key: str, path: str | None = None, *, runner: str = "local",
          cumulative: bool = False, record: bool = True, keep: bool = False) -> Report:
    """Check a folder against an exercise (and, if cumulative, every earlier one) and record progress."""
    exercise = ready_exercise(catalogue, key)
    folder = exercise_folder(catalogue, exercise, path)
    ids = catalogue.checks_through(exercise) if cumulative else None
    report = run_exercise(exercise, folder, catalogue, runner=runner, check_ids=ids, keep=keep)
    if record and folder.resolve() == exercise.starter.resolve():  # progress counts the exercise folder, not other copies
        Progress.load(catalogue.root).record(exercise.id, report.passed)
    return report


def exit_code(report: Report) -> int:
    statuses = {r.status for r in report.results}
    return 1 if FAILED in statuses else 2 if ERROR in statuses else 0


def run(args) -> int:
    catalogue = cat.load()
    report = check(catalogue, args.id, args.path, runner=args.runner, cumulative=args.cumulative, keep=args.keep)
    print(report.to_json() if args.json else report.to_text())
    if report.kept:
        print("kept for inspection (docker logs NAME; remove with docker rm -f / docker rmi):\n  "
              + "\n  ".join(report.kept), file=sys.stderr)
    return exit_code(report)
