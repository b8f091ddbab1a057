"""The starters as the course ships them: each exercise folder's git tree id, recorded in the catalogue.

`factorlab reset` restores a starter from that tree, so it brings back what the course shipped whatever the
learner has committed since; `python -m factorlab.dev.starters` records the ids after a starter changes.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from .catalogue import Catalogue, Exercise


class StarterError(Exception):
    """The shipped starter cannot be found (not a git checkout, or its tree is not in this clone)."""


def git(root: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})
    if check and done.returncode != 0:
        raise StarterError(f"git {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def tree_of(catalogue: Catalogue, exercise: Exercise) -> str:
    """The tree id exercises/ID would have if committed as it is now (what git add -A would take)."""
    rel = exercise.starter.relative_to(catalogue.root).as_posix()
    with tempfile.TemporaryDirectory(prefix="factorlab-index-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        git(catalogue.root, "add", "-A", "--", rel, env=env)
        return git(catalogue.root, "write-tree", f"--prefix={rel}/", env=env).strip()


def shipped_files(root: Path, tree: str) -> dict[str, tuple[str, str]]:
    """The files of a tree: path → (mode, blob id); StarterError when this clone does not have it."""
    if subprocess.run(["git", "-C", str(root), "cat-file", "-e", f"{tree}^{{tree}}"], capture_output=True).returncode:
        raise StarterError(f"the starter's tree {tree[:10]} is not in this clone of the course")
    found = {}
    for entry in git(root, "ls-tree", "-r", "-z", tree).split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            mode, kind, blob = meta.split()
            if kind == "blob":
                found[path] = (mode, blob)
    return found


def shipped_texts(catalogue: Catalogue, exercise: Exercise) -> dict[str, str]:
    """The text of each file of the starter as the course ships it (from its recorded tree), whatever has been
    done to exercises/ID since; outside a git checkout of the course, the folder as it is."""
    try:
        if not exercise.starter_tree:
            raise StarterError("no tree recorded")
        found = shipped_files(catalogue.root, exercise.starter_tree)
        return {path: git(catalogue.root, "cat-file", "blob", blob) for path, (_, blob) in sorted(found.items())}
    except (StarterError, OSError, subprocess.SubprocessError):
        return {p.relative_to(exercise.starter).as_posix(): p.read_text(errors="replace")
                for p in sorted(exercise.starter.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def shipped_in(root: Path, exercise: Exercise, rel: str) -> str:
    """The latest commit (short id and subject) whose exercises/ID is the shipped starter, or ""."""
    for line in git(root, "log", "--all", "--format=%h %s", f"--find-object={exercise.starter_tree}", check=False) \
            .splitlines():
        commit = line.split()[0]
        if git(root, "rev-parse", f"{commit}:{rel}", check=False).strip() == exercise.starter_tree:
            return line
    return ""


def restore(catalogue: Catalogue, exercise: Exercise) -> str:
    """Put exercises/ID back as shipped: its files from the recorded tree, every other file of the folder that
    git does not ignore removed. Returns where it came from, in words."""
    if not exercise.starter_tree:
        raise StarterError(f"the catalogue records no shipped starter for {exercise.id}")
    root, folder = catalogue.root, exercise.starter
    files = shipped_files(root, exercise.starter_tree)
    rel = folder.relative_to(root).as_posix()
    present = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", rel).split("\0")
    for name in present:
        path = root / name
        if name and path.relative_to(folder).as_posix() not in files and (path.is_file() or path.is_symlink()):
            path.unlink()
    for name, (mode, blob) in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        data = subprocess.run(["git", "-C", str(root), "cat-file", "blob", blob], capture_output=True,
                              check=True, timeout=60).stdout
        if mode == "120000":
            path.symlink_to(data.decode())
        else:
            path.write_bytes(data)
            path.chmod(0o755 if mode == "100755" else 0o644)
    for here, dirs, names in os.walk(folder, topdown=False):  # folders the learner added, now empty
        if here != str(folder) and not os.listdir(here):
            os.rmdir(here)
    commit = shipped_in(root, exercise, rel)
    return f"tree {exercise.starter_tree[:10]}" + (f", as in commit {commit}" if commit else "")
