"""`factorlab grade SUBMISSIONS…`: grade a class, in containers by default, into CSV, JSON and HTML."""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
from pathlib import Path

from .. import catalogue as cat
from ..runners import RunnerUnavailable
from . import UsageError

UNSANDBOXED = ("warning: --runner local: the students' code runs unsandboxed, as processes of yours outside any "
               "container, bounded only by the course's own time, memory and process limits. Grade with the docker "
               "runner wherever an engine is available.")


def run(args) -> int:
    from .. import gradebook, grading
    from ..submission import course_commit

    catalogue = cat.load()
    try:
        exercises = grading.parse_factors(args.factors, catalogue)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.runner == "docker":
        from ..docker.engine import engine_available

        if not engine_available():
            raise RunnerUnavailable("no Docker engine answers: start one, or grade with --runner local (the "
                                    "students' code then runs unsandboxed)")
    else:
        print(UNSANDBOXED, file=sys.stderr)
    out = Path(args.out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix="work-", dir=out))
    bar = Bar()
    try:
        result = grading.grade(args.submissions, catalogue, exercises, workspace, runner=args.runner,
                               jobs=args.jobs, cumulative=not args.own, on_start=bar.start, on_done=bar.step)
    finally:
        bar.close()
        if args.keep_work:
            print(f"kept the grading workspace: {workspace}", file=sys.stderr)
        else:
            shutil.rmtree(workspace, ignore_errors=True)
    paths = gradebook.write(result, out, course_commit(catalogue.root))
    full = sum(gradebook.score(s, result) == len(exercises) for s in result.graded)
    graded = len(result.graded)
    print(f"graded {graded} submission(s), rejected {len(result.rejected)}, in {result.seconds:.0f} s "
          f"({result.seconds / max(graded, 1):.1f} s per graded submission, --jobs {args.jobs}); "
          f"{full} pass every factor of {exercises[0].number}-{exercises[-1].number}; wrote "
          f"{paths['csv']}, {paths['json'].name} and {paths['html'].name}")
    return 0


class Bar:
    """A progress bar on the terminal (tqdm: an estimate of the time left), silent when stderr is not one."""

    def __init__(self):
        self._bar = None
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="exercise", desc="grading", file=sys.stderr, disable=None,
                         dynamic_ncols=True)

    def step(self, sub, exercise: cat.Exercise) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.set_postfix_str(f"{sub.id} {exercise.number}", refresh=False)
                self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
