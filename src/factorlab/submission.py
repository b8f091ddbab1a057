"""A learner's work as one archive an instructor can grade: `factorlab submit`.

The archive is a zip holding `submission.json` (the manifest) and `exercises/ID/…` for each exercise
folder of the learner's clone. It takes what the learner's git would commit (files.committed: tracked, or
not ignored), never what a run leaves behind (a database, a log, a pid file, a `.env`), and it refuses to
be made at all when a file it would take looks like a secret (secrets.find).
"""

from __future__ import annotations

import getpass
import hashlib
import io
import json
import os
import re
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from . import catalogue as cat
from . import files, secrets
from .progress import Progress

MANIFEST = "submission.json"
FORMAT = "factorlab-submission"
VERSION = 1
MAX_FILE = 5 * 1024 * 1024  # the graders' own cap on one file (intake.Limits.max_file_bytes)
STUDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
# Left out however git sees them: what a run writes (files.LEFT_BY_A_RUN) and any other database or log.
LEFT_OUT = ("*.db", "*.sqlite", "*.sqlite3", "*.db-journal", "*.log", "*.log.*", "*.pid", ".env", ".env.*")
KEPT_ENV = (".env.example", ".env.sample", ".env.template", ".env.dist")
FIXED_TIME = (2026, 1, 1, 0, 0, 0)  # every member's date: the same files make the same archive


class Refused(Exception):
    """The archive was not written; the message says why and what to do."""


@dataclass
class Packed:
    """What `submit` wrote."""

    path: Path
    student: str
    exercises: list[str]
    files: dict[str, str] = field(default_factory=dict)  # archive name -> sha256
    left_out: list[str] = field(default_factory=list)    # files the learner's folder has that were not taken

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def left_out(name: str) -> bool:
    """Is a file of this name never packed (data, logs, local config)?"""
    if name in KEPT_ENV:
        return False
    return files.skipped(name, False) or any(Path(name).match(pattern) for pattern in LEFT_OUT)


def collect(folder: Path) -> tuple[list[Path], list[str]]:
    """The files of folder a submission takes (what git would commit, minus data and local config), and the
    relative names of those it leaves out."""
    taken, dropped = [], []
    for path in files.committed(folder):
        if left_out(path.name):
            dropped.append(path.relative_to(folder).as_posix())
        else:
            taken.append(path)
    return taken, dropped


def default_student(root: Path) -> str | None:
    """Who submits, when not told: git's user.email for the clone, else the login name unless it is a
    shared account (Binder and hubs call everyone jovyan)."""
    try:
        email = subprocess.run(["git", "-C", str(root), "config", "user.email"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        email = ""
    if email and STUDENT.match(email):
        return email
    try:
        login = getpass.getuser()
    except Exception:
        return None
    return login if STUDENT.match(login) and login not in {"jovyan", "root", "runner", "user", "ubuntu"} else None


def course_commit(root: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def pack(catalogue: cat.Catalogue, student: str | None = None, out: Path | None = None) -> Packed:
    """Write the learner's exercise folders into one zip with a manifest; Refused when it must not be made."""
    root = catalogue.root
    student = student or default_student(root)
    if not student:
        raise Refused("say who you are: factorlab submit --student YOUR-ID (the id your instructor asked for; "
                      "letters, digits and . _ @ + -)")
    if not STUDENT.match(student):
        raise Refused(f"not a usable student id: {student!r}: use up to 64 letters, digits and . _ @ + - "
                      "(starting with a letter or digit)")
    members: dict[str, bytes] = {}
    found: list[secrets.Finding] = []
    dropped: list[str] = []
    exercises = []
    for exercise in catalogue.exercises:
        folder = exercise.starter
        if not folder.is_dir():
            continue
        exercises.append(exercise.id)
        taken, left = collect(folder)
        dropped += [f"exercises/{exercise.id}/{name}" for name in left]
        for path in taken:
            name = f"exercises/{exercise.id}/{path.relative_to(folder).as_posix()}"
            data = path.read_bytes()
            if len(data) > MAX_FILE:
                raise Refused(f"{name} is {len(data) / 2**20:.1f} MiB, over the {MAX_FILE // 2**20} MiB a "
                              "submission may hold in one file: is it data rather than code? Delete it, or list it "
                              "in .gitignore.")
            found += secrets.find(name, data)
            members[name] = data
    if not exercises:
        raise Refused(f"no exercise folders under {root / 'exercises'}: run factorlab submit in your clone of "
                      "the course")
    if found:
        raise Refused("nothing was written: these look like secrets, and a submission never carries one:\n"
                      + "\n".join(f"  {f}" for f in found)
                      + "\nMove real secrets into .env (never packed) and read them from the environment; "
                        "a made-up value should say so (start it with FAKE-, or use change-me).")
    checksums = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(members.items())}
    progress = Progress.load(root)
    manifest = {
        "format": FORMAT, "version": VERSION, "student": student,
        "course": {"version": __version__, "commit": course_commit(root)},
        "exercises": exercises,
        "files": checksums,
        "left_out": sorted(dropped),
        "verdicts": {ex: progress.of(ex) for ex in exercises},  # the learner's own last checks, for information
    }
    out = Path(out) if out else root / f"factorlab-submission-{student}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        _add(archive, MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n", 0o644)
        for name in sorted(members):
            source = catalogue.root / name
            mode = 0o755 if os.stat(source).st_mode & 0o111 else 0o644
            _add(archive, name, members[name], mode)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(out)
    return Packed(out, student, exercises, checksums, sorted(dropped))


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, FIXED_TIME)
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def read_manifest(root: Path) -> dict | None:
    """The manifest at the root of an unpacked submission, or None when there is none or it is unreadable."""
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # a manifest nested a million deep is not one
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def changed_files(root: Path, manifest: dict) -> list[str]:
    """The files of an unpacked submission that differ from the manifest's checksums (or are missing or extra)."""
    listed = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    present = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file() and not p.is_symlink()}
    present.pop(MANIFEST, None)
    differ = [name for name, digest in listed.items()
              if name not in present or hashlib.sha256(present[name].read_bytes()).hexdigest() != digest]
    extra = [name for name in present if name not in listed]
    return sorted(differ + extra)
