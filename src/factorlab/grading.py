"""Grading a class: many submissions in, one verdict per submission, exercise and check out.

A submission is an archive (`factorlab submit`'s zip, or any zip or tar), a folder, or a git checkout (its
last commit). Each comes through the same door: packed if need be, then unpacked by `intake.unpack` into
the grading workspace, where every limit and every rule about paths and links applies; what fails there is
a rejected submission with its reason, and the others are graded all the same.

Each exercise folder a submission holds is checked as the learner would with `factorlab check ID
--cumulative`: the factor's checks and every earlier factor's (or, with --own, its factor's checks only: about
a third of the work through factor VI). The submission's folder becomes a git
repository of its own with one commit (a course clone's exercise folders are tracked by the course's
repository; factor I's checks look for that). Folders with the same files get the same checks, so the same
verdict: such a folder is checked once, and the verdict is shared (the report says so).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import catalogue as cat
from . import files, intake, submission
from .checks import run_exercise
from .results import ERROR, CheckResult, Report

GRADED, REJECTED = "graded", "rejected"
MISSING = "missing"  # an exercise the submission does not hold
GIT_TIMEOUT = 60
SAFE_GIT = ["git", "-c", "safe.bareRepository=explicit", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
            "-c", "core.excludesFile=/dev/null",
            "-c", "core.attributesFile=/dev/null", "-c", "protocol.allow=never", "-c", "protocol.file.allow=always",
            "-c", "core.symlinks=true"]
COMMIT_ENV = {"GIT_AUTHOR_NAME": "factorlab grade", "GIT_AUTHOR_EMAIL": "grade@factorlab.invalid",
              "GIT_COMMITTER_NAME": "factorlab grade", "GIT_COMMITTER_EMAIL": "grade@factorlab.invalid",
              "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
              "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0"}


# For every git this process runs, the checks' own included: a repository is only ever one named outright or a
# .git folder (never a folder that merely looks like one, which a submission can hold), and no config of a
# repository's may run a command. Config given this way overrides any repository's own.
HARDENED_GIT = {"safe.bareRepository": "explicit", "core.fsmonitor": "false", "core.hooksPath": "/dev/null",
                "protocol.ext.allow": "never", "core.sshCommand": "false"}


@contextlib.contextmanager
def hardened_git(environ=os.environ):
    """While it lasts, every git started from this process also reads HARDENED_GIT (GIT_CONFIG_COUNT/KEY/VALUE,
    which outrank a repository's own config); the environment is restored afterwards."""
    saved = {k: v for k, v in environ.items() if k.startswith("GIT_CONFIG_")}
    count = int(environ.get("GIT_CONFIG_COUNT", "0") or 0)
    for key, value in HARDENED_GIT.items():
        environ[f"GIT_CONFIG_KEY_{count}"], environ[f"GIT_CONFIG_VALUE_{count}"] = key, value
        count += 1
    environ["GIT_CONFIG_COUNT"] = str(count)
    try:
        yield
    finally:
        for key in [k for k in environ if k.startswith("GIT_CONFIG_")]:
            del environ[key]
        environ.update(saved)


@dataclass
class Submission:
    """One submission as graded: where it came from, who it is, and its verdicts (or why it was rejected)."""

    source: str
    id: str = ""
    status: str = GRADED
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    manifest: dict | None = None
    root: Path | None = None
    reports: dict[str, Report] = field(default_factory=dict)  # exercise id -> its cumulative report
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def reject(self, reason: str) -> "Submission":
        self.status, self.reason, self.root = REJECTED, reason, None
        return self


@dataclass
class Grading:
    """Everything one `factorlab grade` found."""

    exercises: list[cat.Exercise]
    runner: str
    submissions: list[Submission]
    seconds: float = 0.0
    cumulative: bool = True  # each folder with every earlier factor's checks too (else its own factor's only)

    @property
    def graded(self) -> list[Submission]:
        return [s for s in self.submissions if s.status == GRADED]

    @property
    def rejected(self) -> list[Submission]:
        return [s for s in self.submissions if s.status == REJECTED]


def parse_factors(text: str | None, catalogue: cat.Catalogue) -> list[cat.Exercise]:
    """--factors: "01-06", "3-5", "01,03,07", "4", or None for every exercise with checks."""
    ready = [ex for ex in catalogue.exercises if ex.ready]
    if not text:
        return ready
    chosen: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"not a factor range: {part.strip()!r}: expected e.g. 01-06, 3,5 or 04") from None
        if not 1 <= first <= last <= 12:
            raise ValueError(f"not a factor range: {part.strip()!r}: factors go from 01 to 12")
        chosen.update(range(first, last + 1))
    picked = [ex for ex in ready if ex.factor in chosen]
    if not picked:
        raise ValueError(f"no factor in {text!r} has checks yet: expected some of "
                         + ", ".join(ex.number for ex in ready))
    return picked


# -- intake -----------------------------------------------------------------------------------------------


def _git(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")}, **COMMIT_ENV}
    return subprocess.run([*SAFE_GIT, *args], cwd=cwd, env=env, capture_output=True, timeout=GIT_TIMEOUT, **kwargs)


def is_checkout(folder: Path) -> bool:
    """Is folder the top of a git work tree whose repository is its own .git folder? (A .git file points
    elsewhere, as may alternates or a commondir: that is some other repository on this disk, not graded.)"""
    dot_git = folder / ".git"
    if dot_git.is_symlink() or not dot_git.is_dir():
        return False
    if (dot_git / "objects" / "info" / "alternates").exists() or (dot_git / "commondir").exists():
        raise intake.Rejected("a git checkout whose repository borrows objects from elsewhere on this disk "
                              "(alternates or a shared commondir): clone it normally and give the clone")
    try:
        done = _git(["rev-parse", "--show-toplevel"], folder)
    except (OSError, subprocess.SubprocessError):
        return False
    top = os.fsdecode(done.stdout.rstrip(b"\n"))
    return done.returncode == 0 and Path(top).resolve() == folder.resolve()


def _pack_folder(folder: Path, tar_path: Path, limits: intake.Limits) -> None:
    """A plain folder as a tar of its regular files: no links, nothing else special, no tool folders (.git,
    virtual environments, caches). The limits apply as they do to an archive."""
    count = 0
    with tarfile.open(tar_path, "w") as tar:
        for here, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d not in files.TOOL_DIRS and not os.path.islink(os.path.join(here, d)))
            for name in sorted(names):
                path = Path(here, name)
                found = path.lstat()
                if not stat.S_ISREG(found.st_mode):
                    continue
                count += 1
                rel = path.relative_to(folder).as_posix()
                if count > limits.max_files:
                    raise intake.Rejected(f"too many files: over the limit of {limits.max_files}")
                if found.st_size > limits.max_file_bytes:
                    raise intake.Rejected(f"a file too large: {rel} is {found.st_size} bytes, over the limit of "
                                          f"{limits.max_file_bytes}")
                info = tarfile.TarInfo(rel)
                info.size, info.mode = found.st_size, 0o755 if found.st_mode & 0o111 else 0o644
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)


def _archive_checkout(folder: Path, tar_path: Path, limits: intake.Limits) -> None:
    """A git checkout's last commit as a tar of its exercises/ (and manifest): what the learner committed and
    pushed, not their loose files.

    Read from a bare clone, never from the checkout itself: the checkout's own config could define a filter or
    a hook that runs a command (git archive applies smudge filters the config names). A clone takes the
    objects and refs, not the config. The repository's size is judged before the clone, and the tar is cut off
    at the archive limit as it is written: a small repository can hold a tree that unpacks to gigabytes."""
    _judge_repository_size(folder / ".git", limits)
    bare = tar_path.with_suffix(".git")
    try:
        cloned = _git(["clone", "-q", "--bare", "--no-local", "--", str(folder.resolve()), str(bare)], tar_path.parent)
        if cloned.returncode != 0:
            raise intake.Rejected("a git checkout that cannot be cloned: " + _last_line(cloned.stderr, "?"))
        listed = _git(["--git-dir", str(bare), "ls-tree", "-z", "--name-only", "HEAD"], tar_path.parent)
        if listed.returncode != 0:
            raise intake.Rejected("a git checkout whose last commit cannot be read: "
                                  + _last_line(listed.stderr, "no commits"))
        top = {os.fsdecode(name) for name in listed.stdout.split(b"\0") if name}
        if "exercises" not in top:
            raise intake.Rejected("no exercises/ folder in its last commit: expected a clone of the course")
        paths = ["exercises", *([submission.MANIFEST] if submission.MANIFEST in top else [])]
        _stream_to(tar_path, [*SAFE_GIT, "--git-dir", str(bare), "archive", "--format=tar", "HEAD", "--", *paths],
                   limits.max_archive_bytes)
    finally:
        shutil.rmtree(bare, ignore_errors=True)


def _judge_repository_size(git_dir: Path, limits: intake.Limits) -> None:
    cap, total = 10 * limits.max_archive_bytes, 0
    for here, _, names in os.walk(git_dir):
        for name in names:
            try:
                total += os.lstat(os.path.join(here, name)).st_size
            except OSError:
                continue
        if total > cap:
            raise intake.Rejected(f"a git repository over {cap // 2**20} MiB: too large to grade (its exercises "
                                  "alone, as an archive, would do)")


def _stream_to(path: Path, command: list[str], cap: int) -> None:
    """Run command, writing its output to path; stop it (Rejected) past cap bytes or GIT_TIMEOUT seconds."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")}, **COMMIT_ENV}
    with open(path, "wb") as out, tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=env)
        timer = threading.Timer(GIT_TIMEOUT, proc.kill)
        timer.start()
        written = 0
        try:
            while chunk := proc.stdout.read(1 << 16):
                written += len(chunk)
                if written > cap:
                    raise intake.Rejected(f"its last commit's exercises make an archive over the limit of "
                                          f"{cap} bytes (a git bomb?)")
                out.write(chunk)
            code = proc.wait()  # its output ended: it has exited, or the timer killed it
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            timer.cancel()
            proc.stdout.close()
        if code != 0:
            errors.seek(0)
            raise intake.Rejected("git could not archive its last commit"
                                  + (f" within {GIT_TIMEOUT} s" if code < 0 else ": " + _last_line(errors.read(), "?")))


def _last_line(data: bytes, default: str) -> str:
    lines = data.decode(errors="replace").strip().splitlines()
    return lines[-1][:200] if lines else default


def _find_root(unpacked: Path) -> Path:
    """The folder holding exercises/: the top, or the one folder at the top (an archive of a clone)."""
    if (unpacked / "exercises").is_dir():
        return unpacked
    entries = [p for p in unpacked.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink() \
            and (entries[0] / "exercises").is_dir():
        return entries[0]
    raise intake.Rejected("no exercises/ folder in it: expected exercises/01_codebase/… as factorlab submit "
                          "packs it, or a clone of the course")


def _drop_git_folders(root: Path) -> list[str]:
    """Remove any .git the submission carries: the grader's git must never read a repository config of theirs
    (core.fsmonitor, core.pager and the like run commands)."""
    dropped = []
    for here, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            if name.lower() == ".git":
                path = Path(here, name)
                dropped.append(path.relative_to(root).as_posix())
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        dirs[:] = [d for d in dirs if d.lower() != ".git"]
    return dropped


def _commit(root: Path) -> None:
    """Make the submission a repository of its own with one commit, as a clone of the course is."""
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "--no-verify", "-m", "submission"]):
        done = _git(args, root)
        if done.returncode != 0:
            raise intake.Rejected(f"its files could not be committed to a repository (git {args[0]}: "
                                  + done.stderr.decode(errors="replace").strip()[-200:] + ")")


def take(source: str, index: int, workspace: Path, catalogue: cat.Catalogue,
         limits: intake.Limits = intake.LIMITS) -> Submission:
    """Bring one submission into workspace/index (unpacked, checked against its manifest, committed)."""
    sub = Submission(printable(source))
    path = Path(source).expanduser()
    sub.id = _name_of(path)
    here = workspace / f"{index:03d}"
    here.mkdir(parents=True)
    try:
        if path.is_symlink() and not path.exists():
            raise intake.Rejected("a broken link, not a submission")
        if path.is_file():
            archive = path
        elif path.is_dir():
            archive = here / "source.tar"
            if is_checkout(path):
                _archive_checkout(path, archive, limits)
                sub.notes.append("a git checkout: its last commit was graded")
            else:
                _pack_folder(path, archive, limits)
        else:
            raise intake.Rejected("no such file or folder" if not path.exists() else "not a file or a folder")
        intake.unpack(archive, here / "files", limits)
        if archive.parent == here:
            archive.unlink()
        root = _find_root(here / "files")
        dropped = _drop_git_folders(root)
        if dropped:
            sub.notes.append(f"left out {len(dropped)} .git folder(s) it carried; the grader makes its own")
        sub.manifest = submission.read_manifest(root)
        if sub.manifest is None:
            sub.notes.append(f"no {submission.MANIFEST}: the id is the {'folder' if path.is_dir() else 'file'}'s name")
        else:
            student = sub.manifest.get("student")
            if isinstance(student, str) and submission.STUDENT.match(student):
                if student != sub.id and not sub.id.startswith(student):
                    sub.notes.append(f"its manifest names {student!r}, its name says {sub.id!r}: graded as {student!r}")
                sub.id = student
            else:
                sub.notes.append(f"{submission.MANIFEST} names no usable student id: the id is the file's name")
            changed = submission.changed_files(root, sub.manifest)
            if changed:
                sub.notes.append(f"{len(changed)} file(s) differ from the manifest's checksums (changed after "
                                 f"factorlab submit?): " + ", ".join(changed[:5]) + (" …" if len(changed) > 5 else ""))
            commit = (sub.manifest.get("course") or {}).get("commit") if isinstance(sub.manifest.get("course"), dict) else None
            mine = submission.course_commit(catalogue.root)
            if commit and mine and commit != mine:
                sub.notes.append(f"made from course commit {str(commit)[:12]}; graded with {mine[:12]}")
        _commit(root)
        sub.root = root
    except intake.Rejected as exc:
        shutil.rmtree(here, ignore_errors=True)
        return sub.reject(str(exc))
    except Exception as exc:  # whatever one submission does, the others are graded
        shutil.rmtree(here, ignore_errors=True)
        return sub.reject(printable(f"could not be read: {type(exc).__name__}: {exc}"))
    return sub


def printable(text: str) -> str:
    """text as it can be written to UTF-8 files: a name that is not UTF-8 shows its bytes as \\xNN."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _name_of(path: Path) -> str:
    name = path.name or path.resolve().name
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    name = name.removeprefix("factorlab-submission-")
    return "".join(c if c.isalnum() or c in "._@+-" else "_" for c in name)[:64] or "submission"


def mark_duplicates(subs: list[Submission]) -> None:
    """Submissions that give the same student id are all rejected, each naming the others: which one is the
    student's is for the instructor to find out (a manifest's id is whatever its maker wrote)."""
    holders: dict[str, list[Submission]] = {}
    for sub in subs:
        if sub.status == GRADED:
            holders.setdefault(sub.id, []).append(sub)
    for student, same in holders.items():
        if len(same) > 1:
            for sub in same:
                others = ", ".join(o.source for o in same if o is not sub)
                sub.reject(f"duplicate student id {student!r}: {others} gives it too; none of them is graded")


# -- checking ---------------------------------------------------------------------------------------------


def content_key(exercise: cat.Exercise, folder: Path, cumulative: bool = True) -> str:
    """Same exercise, same checks and same files: same verdict."""
    digest = hashlib.sha256(f"{exercise.id}\0{cumulative}\0".encode())
    for here, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted([*dirs, *names]):
            path = os.path.join(here, name)
            rel = os.path.relpath(path, folder).encode("utf-8", "surrogateescape")
            if os.path.islink(path):
                what = b"link\0" + os.fsencode(os.readlink(path))
            elif os.path.isdir(path):
                what = b"folder"
            else:
                with open(path, "rb") as handle:
                    what = b"file\0" + hashlib.sha256(handle.read()).digest()
            digest.update(rel + b"\0" + what + b"\0")
    return digest.hexdigest()


def grade(sources: list[str], catalogue: cat.Catalogue, exercises: list[cat.Exercise], workspace: Path, *,
          runner: str = "docker", jobs: int = 2, cumulative: bool = True, limits: intake.Limits = intake.LIMITS,
          on_start: Callable[[int], None] | None = None,
          on_done: Callable[[Submission, cat.Exercise], None] | None = None) -> Grading:
    """Take every submission in, then check each exercise folder they hold, jobs at a time."""
    with hardened_git():
        return _grade(sources, catalogue, exercises, workspace, runner, jobs, cumulative, limits, on_start, on_done)


def _grade(sources, catalogue, exercises, workspace, runner, jobs, cumulative, limits, on_start, on_done) -> Grading:
    started = time.monotonic()
    subs = [take(source, i, workspace, catalogue, limits) for i, source in enumerate(sources)]
    mark_duplicates(subs)
    units: list[tuple[Submission, cat.Exercise]] = []
    for sub in subs:
        for exercise in exercises if sub.status == GRADED else ():
            folder = sub.root / "exercises" / exercise.id
            if folder.is_symlink():
                sub.notes.append(f"exercises/{exercise.id} is a link to {os.readlink(folder)!r}, not a folder: "
                                 "not graded")
                sub.missing.append(exercise.id)
            elif folder.is_dir():
                units.append((sub, exercise))
            else:
                sub.missing.append(exercise.id)
    if on_start:
        on_start(len(units))
    shared: dict[str, tuple[threading.Event, list[Report]]] = {}
    lock = threading.Lock()

    def check(unit: tuple[Submission, cat.Exercise]) -> None:
        sub, exercise = unit
        folder = sub.root / "exercises" / exercise.id
        began = time.monotonic()
        try:
            key = content_key(exercise, folder, cumulative)
        except OSError:  # a file it cannot read: checked on its own, shared with none
            key = f"{sub.source}\0{exercise.id}"
        with lock:
            first = key not in shared
            if first:
                shared[key] = (threading.Event(), [])
        done, holder = shared[key]
        if first:
            try:
                holder.append(_run(exercise, folder, catalogue, runner, cumulative))
            finally:
                done.set()
            report = holder[0]
        else:
            done.wait()
            original = holder[0]
            report = Report(original.exercise, str(folder), original.runner, [
                CheckResult(**{**r.__dict__, "message": r.message + "\n(the same files as another submission's: "
                                                                       "its verdict is shared)"})
                for r in original.results])
        with lock:
            sub.reports[exercise.id] = report
            sub.seconds += time.monotonic() - began
        if on_done:
            on_done(sub, exercise)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(check, units))
    return Grading(exercises, runner, subs, time.monotonic() - started, cumulative)


def _run(exercise: cat.Exercise, folder: Path, catalogue: cat.Catalogue, runner: str,
         cumulative: bool = True) -> Report:
    """One exercise folder's check (cumulative: with every earlier factor's checks); never raises (a failure of
    the grader is an error result)."""
    ids = catalogue.checks_through(exercise) if cumulative else list(exercise.checks)
    try:
        return run_exercise(exercise, folder, catalogue, runner=runner, check_ids=ids)
    except Exception as exc:  # the engine went away, a bug: the verdict is an error, the others go on
        from .checks import get

        return Report(exercise.id, str(folder), runner, [
            CheckResult(c.id, c.title, c.factor, ERROR, f"the grader could not run it: {type(exc).__name__}: {exc}",
                        c.hint) for c in map(get, ids)])
