"""`factorlab reset ID`: restore an exercise's starter as the course shipped it, and forget its progress."""

from __future__ import annotations

from .. import catalogue as cat
from ..progress import Progress
from ..starters import StarterError, restore
from . import UsageError, ready_exercise


def run(args) -> int:
    catalogue = cat.load()
    exercise = ready_exercise(catalogue, args.id)
    rel = exercise.starter.relative_to(catalogue.root).as_posix()
    if not args.yes:
        try:
            answer = input(f"Restore {rel} to the starter the course shipped? Your changes there will be lost "
                           "(what you committed stays in git's history). [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing changed.")
            return 1
    try:
        source = restore(catalogue, exercise)
    except StarterError as exc:
        raise UsageError(f"cannot reset {rel}: {exc}; expected a git clone of the course") from None
    Progress.load(catalogue.root).forget(exercise.id)
    print(f"{rel} is back to the starter the course shipped ({source}); its progress and hints start over.")
    return 0
