"""A learner's folder as the course sees it: which files count, copies of it, and snapshots.

One list says what is not part of an app's code: tool folders (git, virtual environments, caches)
and what a run of the app leaves behind (its SQLite file, log and pid files). Copies for checks,
notebook workspaces, image builds, the file scans of static checks and `factorlab watch` all use it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

# Folders of tools, never of the app.
TOOL_DIRS = frozenset({".git", ".venv", "venv", "__pycache__", ".pytest_cache", "node_modules",
                       ".ipynb_checkpoints", ".mypy_cache", ".ruff_cache", ".factorlab"})
# What a run of the app leaves in its working directory, and a learner's local config: a copy made to run
# the app starts from the code, not from the learner's data or secrets (a deploy never gets their .env).
LEFT_BY_A_RUN = ("*.pyc", "shortly.db", "shortly.db-journal", "shortly.log*", "shortly.pid", ".env")
MAX_FILE = 1024 * 1024


SHM = Path("/dev/shm")
SHM_SPARE = 256 * 1024 * 1024  # a check's copies take a few MiB; a small /dev/shm (a container's 64 MiB) is not used


def memory_folder() -> Path | None:
    """/dev/shm, memory-backed, where Linux has one with room to spare: throwaway files (a check's copies, a
    check's PostgreSQL cluster) are made and deleted there faster than on some disks. None elsewhere."""
    try:
        found = os.statvfs(SHM)
    except OSError:
        return None
    return SHM if sys.platform == "linux" and found.f_bavail * found.f_frsize >= SHM_SPARE else None


def scratch_base() -> Path:
    """Where checks make their folders: $FACTORLAB_SCRATCH; else a folder of this user's in memory_folder();
    else factorlab's cache folder. Isolated app instances see it as it is (runners.isolation binds it back
    into their private /dev/shm)."""
    from .process import cache_root

    if os.environ.get("FACTORLAB_SCRATCH"):
        return Path(os.environ["FACTORLAB_SCRATCH"])
    memory = memory_folder()
    if memory is not None:
        base = memory / f"factorlab-scratch-{os.getuid()}"
        try:
            base.mkdir(mode=0o755, exist_ok=True)
            found = os.lstat(base)
            if stat.S_ISDIR(found.st_mode) and found.st_uid == os.getuid() and not found.st_mode & 0o022:
                return base  # made by this user, and only this user writes in it
        except OSError:
            pass
    return cache_root() / "scratch"


def scratch(prefix: str) -> Path:
    """A new folder for a check's copies and shared files, under scratch_base()."""
    from .process import run_tagged

    base = scratch_base()
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=run_tagged(prefix), dir=base))


def skipped(name: str, is_dir: bool) -> bool:
    """Is this folder or file left out of copies of an app?"""
    if is_dir:
        return name in TOOL_DIRS
    return any(fnmatch.fnmatch(name, pattern) for pattern in LEFT_BY_A_RUN)


def ignore(folder: str, names: list[str]) -> set[str]:
    """For shutil.copytree(ignore=...): the names in folder that copies of an app leave out."""
    return {name for name in names if skipped(name, os.path.isdir(os.path.join(folder, name))
                                              and not os.path.islink(os.path.join(folder, name)))}


def copy_app(source: Path, dest: Path) -> Path:
    """Copy an app's folder, leaving out tool folders and what a run left behind; symlinks stay links."""
    shutil.copytree(source, dest, ignore=ignore, symlinks=True)
    return Path(dest)


def walk(root: Path, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """The app's files under root, sorted: no tool folders, no symlinks, nothing over MAX_FILE."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in TOOL_DIRS and not os.path.islink(os.path.join(folder, d)))
        for name in sorted(files):
            path = Path(folder, name)
            if path.is_symlink() or (suffixes and path.suffix not in suffixes):
                continue
            try:
                if path.stat().st_size <= MAX_FILE:
                    found.append(path)
            except OSError:
                continue
    return found


def text_of(path: Path) -> str | None:
    """A file's text (UTF-8), or None when it is not text."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def committed(root: Path) -> list[Path]:
    """The files of root that its repository holds or would take with `git add -A`: what git tracks, and
    what it does not ignore. Outside a repository, root's own .gitignore files decide, as if root were one."""
    root = Path(root)
    listed = _git_listed(root)
    if listed is None:  # no git program: every file counts
        return walk(root)
    found = []
    for rel in sorted(set(listed)):
        path = root / rel
        if path.is_file() and not path.is_symlink() and not any(part in TOOL_DIRS for part in Path(rel).parts):
            found.append(path)
    return found


def _git_listed(root: Path) -> list[str] | None:
    args = ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."]
    base = ["git", "-c", "core.excludesFile=/dev/null", "-c", "core.quotePath=false"]
    try:
        inside = subprocess.run([*base, "-C", str(root), "rev-parse", "--is-inside-work-tree"],
                                capture_output=True, text=True, timeout=20)
        tracked = inside.returncode == 0 and inside.stdout.strip() == "true" and subprocess.run(
            [*base, "-C", str(root), "check-ignore", "-q", "."], capture_output=True, timeout=20).returncode != 0
        if tracked:  # a repository holds the folder: its view counts (else the folder's own, as a repository)
            done = subprocess.run([*base, "-C", str(root), *args], capture_output=True, timeout=20)
        else:
            with tempfile.TemporaryDirectory(prefix="factorlab-git-") as scratch:
                subprocess.run(["git", "init", "-q", "--bare", scratch], check=True, capture_output=True, timeout=20)
                done = subprocess.run([*base, f"--git-dir={scratch}", f"--work-tree={root}", "-C", str(root), *args],
                                      capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return [name for name in done.stdout.decode(errors="replace").split("\0") if name]


def snapshot(folder: Path, *, content: bool = False, bytecode: bool = False) -> dict[str, object]:
    """Every file and folder under folder (Python's bytecode caches left out unless bytecode): its size and
    modification time, or with content=True its sha256; a folder maps to "folder"."""
    seen: dict[str, object] = {}
    folder = Path(folder)
    for here, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if bytecode or d != "__pycache__"]
        for name in dirs:
            seen[Path(here, name).relative_to(folder).as_posix()] = "folder"
        for name in files:
            path = Path(here, name)
            try:
                stat = path.lstat()
                if content and path.is_file() and not path.is_symlink():
                    seen[path.relative_to(folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
                else:
                    seen[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
            except OSError:
                continue
    return seen


def changes(before: dict[str, object], after: dict[str, object]) -> list[str]:
    """The names whose entry differs between two snapshots: created, changed or deleted."""
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
