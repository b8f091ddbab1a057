"""`factorlab check ID`: run an exercise's checks and record the verdict."""

from __future__ import annotations

import sys

from .. import catalogue as cat
from .. import scorecard
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


ALL = "all"  # `factorlab check all`: the last ready exercise's folder, with every factor's checks


def run(args) -> int:
    catalogue = cat.load()
    every = args.id.strip().lower() == ALL
    key = scorecard.last_ready(catalogue).id if every else args.id
    report = check(catalogue, key, args.path, runner=args.runner, cumulative=args.cumulative or every,
                   keep=args.keep)
    if args.json:
        print(report.to_json())
    elif every:
        print(report.to_text() + "\n\n" + scorecard.to_text(scorecard.by_factor(report, catalogue)))
    else:
        print(report.to_text())
    if report.kept:
        print("kept for inspection (docker logs NAME; remove with docker rm -f / docker rmi):\n  "
              + "\n  ".join(report.kept), file=sys.stderr)
    return exit_code(report)
