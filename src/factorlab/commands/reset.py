"""`factorlab reset ID`: restore an exercise's starter files from the course's git history."""

from __future__ import annotations

import subprocess

from .. import catalogue as cat
from . import UsageError, ready_exercise


def _git(root, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)


def run(args) -> int:
    catalogue = cat.load()
    exercise = ready_exercise(catalogue, args.id)
    rel = exercise.starter.relative_to(catalogue.root).as_posix()
    if _git(catalogue.root, "ls-files", "--error-unmatch", rel).returncode != 0:
        raise UsageError(f"cannot reset {rel}: expected the course to be a git checkout that tracks it")
    if not args.yes:
        try:
            answer = input(f"Restore {rel} to the starter? Your changes there will be lost. [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing changed.")
            return 1
    for step in (("checkout", "HEAD", "--", rel), ("clean", "-fdq", "--", rel)):
        done = _git(catalogue.root, *step)
        if done.returncode != 0:
            raise UsageError(f"git {step[0]} failed: {done.stderr.strip()}")
    print(f"{rel} is back to the starter.")
    return 0
