"""One module per CLI command; each exposes run(args) -> exit code."""

from __future__ import annotations

from pathlib import Path

from ..catalogue import Catalogue, Exercise


class UsageError(Exception):
    """A command was asked for something that cannot be; exit 2 with this one line."""


def ready_exercise(catalogue: Catalogue, key: str) -> Exercise:
    exercise = catalogue.get(key)
    if not exercise.ready:
        ready = ", ".join(ex.id for ex in catalogue.exercises if ex.ready)
        raise UsageError(f"{exercise.id} has no checks yet: expected one of {ready}")
    return exercise


def exercise_folder(catalogue: Catalogue, exercise: Exercise, path: str | None) -> Path:
    """The folder to check: --path, or the exercise's starter folder; it must hold the app module."""
    folder = Path(path).expanduser().resolve() if path else exercise.starter
    module = catalogue.app_file
    if not folder.exists():
        raise UsageError(f"no such folder: {path or folder}: expected an exercise folder holding {module}")
    if not folder.is_dir() or not (folder / module).is_file():
        raise UsageError(f"not an exercise folder: {path or folder}: expected a folder holding {module}")
    return folder
