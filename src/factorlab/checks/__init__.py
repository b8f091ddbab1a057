"""The check framework: a registry of named checks and the loop that runs them safely."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..catalogue import Catalogue, Exercise
from ..results import ERROR, FAILED, PASSED, CheckResult, Report
from ..runner import AppFailed, LocalRunner, Runner
from ..services import stop_shared

CHECK_TIMEOUT = 30.0
# The config every later app state requires to start at all; a check of an earlier factor adds it so that
# solutions of later factors (which fail fast without it) still pass every earlier check.
REQUIRED_APP_ENV = {"SHORTLY_SECRET_KEY": "factorlab-check-not-a-secret"}
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


def get(check_id: str) -> Check:
    _load_all()
    return REGISTRY[check_id]


def _load_all() -> None:
    from . import backing, codebase, config, dependencies, processes, release  # noqa: F401  (registers the checks)


def run_check(chk: Check, path: Path, runner_factory, catalogue: Catalogue | None = None) -> CheckResult:
    """Run one check in its own runner with a hard time limit; never raise."""
    outcome: dict[str, object] = {}
    runner = runner_factory(path)

    def body():
        try:
            outcome["message"] = chk.func(CheckContext(path, runner, catalogue))
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
    if runner.name != "local" and not runner.used and outcome["status"] != ERROR:
        # Say so rather than let a reader think the container confirmed it.
        message += " (read from the folder: no container needed)"
    return CheckResult(chk.id, chk.title, chk.factor, str(outcome["status"]), message,
                       chk.hint, round(time.monotonic() - started, 3))


RUNNERS = ("local", "docker")


def run_exercise(exercise: Exercise, path: Path, catalogue: Catalogue, *, runner: str = "local",
                 check_ids: list[str] | None = None, keep: bool = False) -> Report:
    """Run an exercise's checks (or the given ones) against the folder at path.

    runner: "local" (subprocesses) or "docker" (containers; RunnerUnavailable when no engine answers).
    keep: leave the containers and images a docker run made, for inspection.
    """
    _load_all()
    report = Report(exercise.id, str(path), runner)
    chosen = [REGISTRY[check_id] for check_id in check_ids or exercise.checks]
    factory = _runner_factory(runner, catalogue.app, keep)
    try:
        if hasattr(factory, "prepare"):
            factory.prepare(Path(path))
        # Checks are independent (each has its own runner, workspace and ports), so they run side by side.
        with ThreadPoolExecutor(max_workers=PARALLEL_CHECKS) as pool:
            report.results = list(pool.map(lambda chk: run_check(chk, Path(path), factory, catalogue), chosen))
    finally:
        if hasattr(factory, "close"):
            factory.close()
            report.kept = list(getattr(factory, "kept", []))
        stop_shared()  # the private PostgreSQL the checks made databases in (not `factorlab services up`'s)
    return report


def _runner_factory(name: str, app: str, keep: bool = False):
    if name == "local":
        return lambda path: LocalRunner(path, app)
    if name == "docker":
        from ..containers import DockerSession

        return DockerSession(app, keep=keep)
    raise ValueError(f"unknown runner {name!r}: expected one of {', '.join(RUNNERS)}")
