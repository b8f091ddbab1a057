"""`factorlab solution ID`: the diff from the learner's folder to the reference solution."""

from __future__ import annotations

import difflib
from pathlib import Path

from .. import catalogue as cat
from ..files import walk
from ..progress import Progress
from . import UsageError, exercise_folder, ready_exercise


def folder_diff(mine: Path, reference: Path) -> str:
    """A unified diff of every text file that differs between two folders."""
    names = sorted({p.relative_to(mine).as_posix() for p in walk(mine)} |
                   {p.relative_to(reference).as_posix() for p in walk(reference)})
    chunks = []
    for name in names:
        a, b = mine / name, reference / name
        try:
            old = a.read_text().splitlines(keepends=True) if a.exists() else []
            new = b.read_text().splitlines(keepends=True) if b.exists() else []
        except UnicodeDecodeError:
            continue
        chunks.extend(difflib.unified_diff(old, new, f"yours/{name}" if a.exists() else "/dev/null",
                                           f"solution/{name}" if b.exists() else "/dev/null"))
    return "".join(chunks)


def run(args) -> int:
    catalogue = cat.load()
    exercise = ready_exercise(catalogue, args.id)
    folder = exercise_folder(catalogue, exercise, args.path)
    if not args.force and exercise.id not in Progress.load(catalogue.root).ever_passed:
        raise UsageError(f"the solution opens once `factorlab check {exercise.number}` passes "
                         f"(try `factorlab hint {exercise.number}`), or use --force")
    diff = folder_diff(folder, exercise.solution)
    print(diff if diff else "Your folder matches the reference solution.", end="" if diff else "\n")
    return 0
