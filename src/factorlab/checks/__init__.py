"""The check framework: a registry of named checks, and the loop that runs them safely.

One module per factor, named after the exercise's slug (`codebase`, `backing_services`, …), registers
that factor's checks with `@check("<slug name>.<check name>", …)`. The catalogue (exercises.toml) says
which checks each exercise runs; the modules are imported from it, so a new factor needs no list here.
"""

from __future__ import annotations

import importlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..catalogue import Catalogue, Exercise
from ..results import ERROR, FAILED, PASSED, CheckResult, Report
from ..runners import AppFailed, Runner, RunnerSession, open_session
from ..services import held

CHECK_TIMEOUT = 30.0
PARALLEL_CHECKS = 4


class CheckFailed(Exception):
    """The learner's app does not do what the check expects; the message says what was seen."""


@dataclass(frozen=True)
class Check:
    """A named, documented function that inspects an app and returns what it saw."""

    id: str
    factor: int
    title: str
    hint: str
    func: Callable[["CheckContext"], str]
    timeout: float = CHECK_TIMEOUT

    @property
    def doc(self) -> str:
        return (self.func.__doc__ or "").strip()

    @property
    def module(self) -> str:
        """The name of the module that must define it: the part of its id before the dot."""
        return self.id.split(".", 1)[0]


REGISTRY: dict[str, Check] = {}


def check(id: str, *, factor: int, title: str, hint: str, timeout: float = CHECK_TIMEOUT):
    """Register a check function under id."""
    def register(func):
        if id in REGISTRY:
            raise ValueError(f"check {id!r} is defined twice")
        REGISTRY[id] = Check(id, factor, title, hint, func, timeout)
        return func
    return register


@dataclass
class CheckContext:
    """What a check may look at: the learner's folder and a runner to start the app with."""

    path: Path
    runner: Runner
    catalogue: Catalogue | None = None

    @property
    def course_root(self) -> Path | None:
        return self.catalogue.root if self.catalogue else None


def get(check_id: str) -> Check:
    """The check called check_id, importing the module its id names (KeyError when there is none)."""
    if check_id not in REGISTRY:
        module = check_id.split(".", 1)[0]
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{module}":
                raise
    return REGISTRY[check_id]


def load(catalogue: Catalogue) -> list[Check]:
    """Every check the catalogue names, in catalogue order."""
    return [get(check_id) for exercise in catalogue.exercises for check_id in exercise.checks]


def run_check(chk: Check, path: Path, session: RunnerSession, catalogue: Catalogue | None = None) -> CheckResult:
    """Run one check with a runner of its own and a hard time limit; never raise."""
    outcome: dict[str, object] = {}
    runner = session.runner(path)

    def body():
        try:
            outcome["message"] = chk.func(CheckContext(Path(path), runner, catalogue))
            outcome["status"] = PASSED
        except (CheckFailed, AppFailed) as exc:
            outcome["status"], outcome["message"] = FAILED, str(exc)
        except Exception as exc:  # a bug or a broken machine, not the learner's app
            outcome["status"] = ERROR
            outcome["message"] = f"the check itself could not run: {type(exc).__name__}: {exc}"

    started = time.monotonic()
    worker = threading.Thread(target=body, daemon=True, name=f"check {chk.id}")
    worker.start()
    worker.join(chk.timeout)
    if worker.is_alive():
        runner.close()  # stopping the app unblocks a check waiting on it
        worker.join(5)
        outcome = {"status": FAILED,
                   "message": f"the check did not finish within {chk.timeout:g} s: the app hung and was stopped"}
    runner.close()
    message = str(outcome["message"])
    if not runner.used and outcome["status"] != ERROR:
        message += runner.untouched_note  # say so rather than let a reader think a container confirmed it
    if runner.instances > 1 and runner.notes:
        message += "\n(" + "; ".join(runner.notes) + ")"
    return CheckResult(chk.id, chk.title, chk.factor, str(outcome["status"]), message,
                       chk.hint, round(time.monotonic() - started, 3))


def run_exercise(exercise: Exercise, path: Path, catalogue: Catalogue, *, runner: str = "local",
                 check_ids: list[str] | None = None, keep: bool = False) -> Report:
    """Run an exercise's checks (or the given ones) against the folder at path.

    runner: "local" (subprocesses) or "docker" (containers; RunnerUnavailable when no engine answers).
    keep: leave the containers and images a docker run made, for inspection.
    """
    report = Report(exercise.id, str(path), runner)
    chosen = [get(check_id) for check_id in check_ids or exercise.checks]
    session = open_session(runner, catalogue.app, keep=keep)
    # held(): the private PostgreSQL the checks make databases in stops after the last run that uses it
    # (`factorlab services up`'s is never stopped).
    with held():
        try:
            session.prepare(Path(path))
            # Checks are independent (each has its own runner, workspace and ports), so they run side by side.
            with ThreadPoolExecutor(max_workers=PARALLEL_CHECKS) as pool:
                report.results = list(pool.map(lambda chk: run_check(chk, Path(path), session, catalogue), chosen))
        finally:
            session.close()
            report.kept = list(session.kept)
    return report
