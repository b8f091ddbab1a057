"""`factorlab list` and `factorlab progress`: the catalogue as tables."""

from __future__ import annotations

from .. import catalogue as cat
from ..progress import Progress


def list_exercises(args) -> int:
    catalogue = cat.load()
    print(f"{'id':<22} {'factor':<22} {'time':>6}  checks")
    for ex in catalogue.exercises:
        checks = f"{len(ex.checks)}" if ex.ready else "coming soon"
        minutes = f"{ex.minutes} min" if ex.minutes else ""
        print(f"{ex.id:<22} {ex.title:<22} {minutes:>6}  {checks}")
        if getattr(args, "checks", False):
            from ..checks import get

            for check_id in ex.checks:
                check = get(check_id)
                print(f"    {check_id}: {check.title}\n        {check.doc}")
    ready = sum(ex.ready for ex in catalogue.exercises)
    if ready == len(catalogue.exercises):
        print(f"The course is complete: all {ready} factors have an exercise and checks. Then the capstone, "
              "notebooks/13_capstone.ipynb, runs your app as a small production system, and "
              "`factorlab check all` scores every factor at once.")
    else:
        print(f"{ready} of {len(catalogue.exercises)} factors are ready; the others are coming soon.")
    return 0


def show_progress(args) -> int:
    catalogue = cat.load()
    progress = Progress.load(catalogue.root)
    done = 0
    for ex in catalogue.exercises:
        state = progress.of(ex.id) if ex.ready else "coming soon"
        done += state == "passed"
        print(f"{ex.factor:>3}. {ex.title:<22} {state}")
    ready = sum(ex.ready for ex in catalogue.exercises)
    print(f"{done} of {ready} available exercises passed")
    return 0


def binder(args) -> int:
    from ..binder import origin_binder_url

    catalogue = cat.load()
    try:
        print(origin_binder_url(catalogue.root))
    except ValueError as exc:
        from . import UsageError
        raise UsageError(str(exc)) from None
    return 0


def hub_link(args) -> int:
    from ..hub import origin_hub_url

    catalogue = cat.load()
    try:
        print(origin_hub_url(catalogue.root, args.hub))
    except ValueError as exc:
        from . import UsageError
        raise UsageError(str(exc)) from None
    return 0
