"""factorlab.intake: every hostile archive is rejected with a reason and leaves nothing behind, anywhere; valid
archives unpack to exactly their files, with safe modes; the limits are parameters."""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import stat
import struct
import tempfile
import zlib
from pathlib import Path

import pytest

from factorlab import intake
from factorlab.dev import hostile
from factorlab.dev.hostile import directory, file, link, tar_bytes, zip_bytes


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("corpus")
    return folder, hostile.write_corpus(folder)


def canaries(around: Path) -> list[Path]:
    """Canary files wherever a hostile archive could have put one: around the destination, at the top of
    the temporary folder, in the current directory."""
    found = [*around.rglob("*canary*"), *Path(tempfile.gettempdir()).glob("*canary*"), *Path.cwd().glob("*canary*")]
    if Path("/tmp").is_dir():
        found += Path("/tmp").glob("*canary*")
    return found


def reject_all(folder: Path, cases: dict[str, str], work: Path) -> list[str]:
    """Unpack each case into work/NAME; the problems found (none expected)."""
    problems = []
    for name, phrase in cases.items():
        dest = work / name
        try:
            got = intake.unpack(folder / name, dest)
            problems.append(f"{name}: not rejected, unpacked {got[:5]}")
        except intake.Rejected as exc:
            reason = str(exc)
            if phrase not in reason.lower() or "\n" in reason:
                problems.append(f"{name}: reason {reason!r} lacks {phrase!r}")
        if os.path.lexists(dest):
            problems.append(f"{name}: {dest} left behind")
        if canaries(work.parent):
            problems.append(f"{name}: canaries outside the destination: {canaries(work.parent)}")
    return problems


def test_every_hostile_archive_is_rejected_with_its_reason_and_leaves_nothing(corpus, tmp_path):
    folder, cases = corpus
    assert len(cases) >= 30 and not [name for name in cases if "canary" in name]
    work = tmp_path / "work"
    work.mkdir()
    assert reject_all(folder, cases, work) == []
    assert list(work.iterdir()) == []


def test_hostile_cases_after_valid_files_are_rejected_and_what_was_written_is_removed(tmp_path):
    """With a valid submission's files first, a rejection comes after files were written: they go too."""
    valid = tmp_path / "valid.zip"
    valid.write_bytes(zip_bytes(VALID))
    folder = tmp_path / "corpus"
    cases = hostile.write_corpus(folder, valid)
    work = tmp_path / "work"
    work.mkdir()
    assert reject_all(folder, cases, work) == []
    assert list(work.iterdir()) == []


def test_the_corpus_is_the_same_every_time(corpus, tmp_path):
    folder, cases = corpus
    again = hostile.write_corpus(tmp_path / "again")
    assert again == cases

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    assert {n: digest(tmp_path / "again" / n) for n in again} == {n: digest(folder / n) for n in cases}


# -- valid archives -------------------------------------------------------------------------------------------------

VALID = [
    file("README.md", b"# my submission\n", 0o600),
    directory("app"),
    file("app/main.py", b"print('hello')\n", 0o666),
    file("app/run.sh", b"#!/bin/sh\nexec python main.py\n", 0o4755),  # setuid: dropped, x kept
    file("app/sub/data.txt", b"data\n", 0o2640),  # setgid without x: a plain 0o644 file
    link("app/current", "main.py"),
    link("app/sub/up", "../main.py"),
    directory("app/empty"),
]
EXPECTED = ["README.md", "app/current", "app/main.py", "app/run.sh", "app/sub/data.txt", "app/sub/up"]


def valid_archive(kind: str) -> bytes:
    if kind == "zip":
        return zip_bytes(VALID)
    plain = tar_bytes(VALID)
    return {"tar": plain, "tar.gz": tar_bytes(VALID, compress=True), "tar.bz2": bz2.compress(plain),
            "tar.xz": lzma.compress(plain)}[kind]


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz", "tar.bz2", "tar.xz"])
def test_a_valid_archive_unpacks_to_exactly_its_files_with_safe_modes(kind, tmp_path):
    archive = tmp_path / "submission.bin"  # the kind comes from the content, not the name
    archive.write_bytes(valid_archive(kind))
    assert intake.archive_kind(archive) == ("zip" if kind == "zip" else "tar")
    dest = tmp_path / "out"
    assert intake.unpack(archive, dest) == EXPECTED
    found = {p.relative_to(dest).as_posix(): p for p in dest.rglob("*")}
    assert sorted(found) == sorted([*EXPECTED, "app", "app/sub", "app/empty"])
    modes = {name: stat.S_IMODE(p.lstat().st_mode) for name, p in found.items() if not p.is_symlink()}
    assert modes == {"README.md": 0o644, "app": 0o755, "app/main.py": 0o644, "app/run.sh": 0o755,
                     "app/sub": 0o755, "app/sub/data.txt": 0o644, "app/empty": 0o755}
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert os.readlink(dest / "app/current") == "main.py" and os.readlink(dest / "app/sub/up") == "../main.py"
    assert (dest / "app/sub/up").read_bytes() == b"print('hello')\n"
    assert (dest / "app/run.sh").read_bytes() == b"#!/bin/sh\nexec python main.py\n"


def test_a_tar_of_dot_and_an_empty_zip_unpack(tmp_path):
    """`tar -C folder -cf x.tar .` names the top "./" and its files "./name"."""
    archive = tmp_path / "dot.tar"
    archive.write_bytes(tar_bytes([directory("."), file("./a.txt", b"a"), directory("./d"), file("./d/b.txt")]))
    assert intake.unpack(archive, tmp_path / "dot") == ["a.txt", "d/b.txt"]
    empty = tmp_path / "empty.zip"
    empty.write_bytes(zip_bytes([]))
    assert intake.unpack(empty, tmp_path / "none") == [] and list((tmp_path / "none").iterdir()) == []


def test_archive_kind_is_by_content(tmp_path):
    kinds = {"a.tgz": valid_archive("tar.gz"), "b.zip": valid_archive("tar.xz"), "c.tar": valid_archive("zip"),
             "d.zip": b"", "e.zip": b"just text\n" * 100, "f.gz": zlib.compress(b"x")}
    for name, data in kinds.items():
        (tmp_path / name).write_bytes(data)
    assert {name: intake.archive_kind(tmp_path / name) for name in kinds} == \
        {"a.tgz": "tar", "b.zip": "tar", "c.tar": "zip", "d.zip": None, "e.zip": None, "f.gz": None}
    assert intake.archive_kind(tmp_path / "missing.zip") is None


# -- sizes, limits, and the destination -----------------------------------------------------------------------


def test_a_zip_lying_about_its_size_is_still_rejected(tmp_path):
    """Both headers say 10 bytes for 2 MiB deflated: zipfile stops at 10 and the CRC fails; nothing is kept."""
    data = bytearray(zip_bytes([file("big.bin", bytes(2 * 1024**2))]))
    struct.pack_into("<I", data, data.index(b"PK\x03\x04") + 22, 10)
    struct.pack_into("<I", data, data.index(b"PK\x01\x02") + 24, 10)
    archive = tmp_path / "lying.zip"
    archive.write_bytes(bytes(data))
    with pytest.raises(intake.Rejected, match="not a readable archive"):
        intake.unpack(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_sizes_are_counted_as_written_whatever_the_header_says(tmp_path, monkeypatch):
    """With the checks on declared sizes switched off, the bytes written still hit each limit."""
    monkeypatch.setattr(intake._Tree, "judge_declared", lambda self, total: None)
    real_file = intake._Tree.file
    monkeypatch.setattr(intake._Tree, "file", lambda self, name, mode, declared, chunks:
                        real_file(self, name, mode, 0, chunks))  # every member says it is empty
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_bytes([file("one.bin", bytes(3000)), file("two.bin", bytes(3000))], compress=True))
    with pytest.raises(intake.Rejected, match="file too large: 'one.bin' unpacks to more than the limit of 2000 bytes"):
        intake.unpack(archive, tmp_path / "out1", intake.Limits(max_file_bytes=2000))
    with pytest.raises(intake.Rejected, match="zip bomb"):
        intake.unpack(archive, tmp_path / "out2", intake.Limits(max_total_bytes=5000))
    assert not (tmp_path / "out1").exists() and not (tmp_path / "out2").exists()


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_the_limits_are_parameters(kind, tmp_path):
    pack = zip_bytes if kind == "zip" else tar_bytes

    def rejected(members, limits: intake.Limits) -> str:
        archive = tmp_path / f"a.{kind}"
        archive.write_bytes(pack(members))
        with pytest.raises(intake.Rejected) as caught:
            intake.unpack(archive, tmp_path / "out", limits)
        assert not (tmp_path / "out").exists()
        return str(caught.value)

    four = [file(f"f{i}.txt", b"x") for i in range(4)]
    assert "too many files" in (reason := rejected(four, intake.Limits(max_files=3))) and "3" in reason
    assert "file too large" in rejected([file("a.bin", bytes(101))], intake.Limits(max_file_bytes=100))
    assert "zip bomb" in rejected([file(f"{i}.bin", bytes(400)) for i in range(3)], intake.Limits(max_total_bytes=1000))
    assert "too deep" in rejected([file("a/b/c.txt")], intake.Limits(max_depth=2))
    assert "too long" in rejected([file("abcdef.txt")], intake.Limits(max_path=5))
    assert "archive is too large" in rejected([file("a.txt")], intake.Limits(max_archive_bytes=10))
    archive = tmp_path / f"a.{kind}"
    archive.write_bytes(pack(four))
    assert intake.unpack(archive, tmp_path / "fits", intake.Limits(max_files=4)) == [f"f{i}.txt" for i in range(4)]


@pytest.mark.parametrize("members, phrase", [
    ([file("a"), file("a/b")], "is a file"),  # a file, then a folder of the same name
    ([file("a/b"), file("a")], "both a folder and a file"),
    ([file("./a"), file("a")], "same name"),
    ([directory("d"), link("d/l", "."), file("x")], "loop"),
    ([link("l", "x/../../y")], "points outside"),
    ([link("l", "")], "empty target"),
    ([file("C:\\x")], "absolute path"),
    ([file("\\\\server\\share\\x")], "absolute path"),
    ([file("a/../b")], "'..'"),
])
def test_names_that_clash_or_lead_out_are_rejected(members, phrase, tmp_path):
    archive = tmp_path / "a.tar"
    archive.write_bytes(tar_bytes(members))
    with pytest.raises(intake.Rejected) as caught:
        intake.unpack(archive, tmp_path / "out")
    assert phrase in str(caught.value) and not (tmp_path / "out").exists()


def test_a_destination_that_exists_is_a_programming_mistake(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes([file("a.txt", b"a")]))
    (tmp_path / "there").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    for dest in (tmp_path / "there", tmp_path / "link"):
        with pytest.raises(ValueError, match="exists already"):
            intake.unpack(archive, dest)
    assert list((tmp_path / "there").iterdir()) == [] and list((tmp_path / "elsewhere").iterdir()) == []


def test_a_fifo_given_as_the_archive_is_rejected_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.zip"
    os.mkfifo(fifo)
    with pytest.raises(intake.Rejected, match="not a regular file"):
        intake.unpack(fifo, tmp_path / "out")
    assert intake.archive_kind(fifo) is None and not (tmp_path / "out").exists()
