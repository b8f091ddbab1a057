"""`factorlab hint ID`: reveal the exercise's hints one more at a time."""

from __future__ import annotations

from .. import catalogue as cat
from ..progress import Progress
from . import UsageError


def run(args) -> int:
    catalogue = cat.load()
    exercise = catalogue.get(args.id)
    if not exercise.hints:
        raise UsageError(f"{exercise.id} has no hints yet")
    shown = Progress.load(catalogue.root).next_hint(exercise.id, len(exercise.hints))
    for number, hint in enumerate(exercise.hints[:shown], 1):
        print(f"Hint {number}/{len(exercise.hints)}: {hint}")
    if shown < len(exercise.hints):
        print(f"(run `factorlab hint {exercise.number}` again for the next hint)")
    else:
        print(f"(that was the last hint; `factorlab solution {exercise.number}` shows the reference once your check passes)")
    return 0
