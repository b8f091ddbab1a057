"""The `factorlab` command line: it only wires commands to their modules."""

from __future__ import annotations

import argparse
import os
import sys

from .catalogue import CatalogueError
from .commands import UsageError
from .entry import warm_up
from .runners import NAMES, RunnerUnavailable


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="factorlab", description="The Twelve-Factor App course: check your work.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help, func, with_id=True, id_help="exercise: 03, 03_config or config"):
        p = sub.add_parser(name, help=help, description=help)
        if with_id:
            p.add_argument("id", help=id_help)
        p.set_defaults(func=func)
        return p

    from .commands import check, grade, hint, listing, reset, services, solution, submit, watch

    p = command("list", "list the exercises", listing.list_exercises, with_id=False)
    p.add_argument("--checks", action="store_true", help="also list each exercise's checks and what they prove")
    p = command("check", "run an exercise's checks (exit 0 pass, 1 fail, 2 error)", check.run,
                id_help="exercise: 03, 03_config or config; or all: every factor's checks on the last exercise's "
                        "folder (or --path), with a scorecard by factor")
    p.add_argument("--path", help="the folder to check (default: exercises/ID; only that folder counts for progress)")
    p.add_argument("--runner", choices=NAMES, default="local",
                   help="where the app runs: subprocesses here (local) or containers (docker)")
    p.add_argument("--keep", action="store_true",
                   help="docker: keep the containers and images for inspection (docker ps -a, docker logs)")
    p.add_argument("--json", action="store_true", help="print results as JSON (docs/results.md)")
    p.add_argument("--cumulative", action="store_true", help="also run every earlier factor's checks")
    command("hint", "show one more hint", hint.run)
    p = command("solution", "show the diff to the reference solution", solution.run)
    p.add_argument("--path", help="your folder (default: exercises/ID)")
    p.add_argument("--force", action="store_true", help="show it even before your check passed")
    p = command("reset", "restore the exercise's starter files", reset.run)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    command("progress", "show which factors you have passed", listing.show_progress, with_id=False)
    p = command("watch", "re-run the check whenever you save", watch.run)
    p.add_argument("--path", help="the folder to watch (default: exercises/ID)")
    p.add_argument("--poll", action="store_true", help="poll for changes (for file systems without events)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    p.add_argument("--max-runs", type=int, default=0, help=argparse.SUPPRESS)
    command("binder", "print the Binder launch link for this checkout's origin", listing.binder, with_id=False)
    p = command("hub-link", "print the nbgitpuller link that opens this checkout's origin on a JupyterHub (docs/hub.md)",
                listing.hub_link, with_id=False)
    p.add_argument("hub", help="the hub's address: hub.example.edu or https://hub.example.edu/")
    p = command("submit", "pack your exercise folders into one archive to hand in (never a secret, a database "
                "or a log)", submit.run, with_id=False)
    p.add_argument("--student", help="your id, as your instructor asked (default: git's user.email)")
    p.add_argument("--out", help="where to write it (default: factorlab-submission-STUDENT.zip in the course folder)")
    p = command("grade", "instructors: grade submissions (archives, folders, git checkouts) into grades.csv, "
                "grades.json and report.html", grade.run, with_id=False)
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                   help="a submission: an archive (.zip, .tar, .tar.gz), a folder, or a git checkout")
    p.add_argument("--runner", choices=NAMES, default="docker",
                   help="where students' apps run: containers (docker, the default: sandboxed) or subprocesses "
                        "here (local: unsandboxed, with a warning)")
    p.add_argument("--jobs", type=int, default=2, help="exercise folders checked at once (default 2)")
    p.add_argument("--out", default="grades", help="the folder for the results (default: ./grades)")
    p.add_argument("--factors", help="the factors to grade: 01-06, 3,5 or 04 (default: every factor with checks)")
    p.add_argument("--own", action="store_true", help="check each exercise folder with its own factor's checks only, "
                   "not every earlier factor's too (about a third of the work through factor VI)")
    p.add_argument("--keep-work", action="store_true", help="keep the unpacked submissions (under --out)")
    p = command("services", "start, stop or show private PostgreSQL and Redis servers", services.run, with_id=False)
    p.add_argument("action", choices=["up", "down", "status"],
                   help="up: start both and print their URLs as export lines (eval \"$(factorlab services up)\"); "
                        "down: stop them and delete their data; status: are they running (exit 0 when both are)")
    return top


def main(argv: list[str] | None = None) -> int:
    warm_up(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, CatalogueError, RunnerUnavailable) as exc:
        print(f"factorlab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and cut short: not an error worth a word
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # never show the learner a traceback from factorlab itself
        print(f"factorlab: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
