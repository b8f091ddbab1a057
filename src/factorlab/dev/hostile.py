"""Hostile archives, for testing the intake of submissions (factorlab.intake) and `factorlab grade`.

    write_corpus(folder, valid_submission=None) -> {file name: phrase its rejection reason must contain}

One file per case: paths that leave the folder, links out, hard links, devices, FIFOs, zip bombs, too many
files, a file too large, broken, empty and non-archives. Each is what an unsafe extractor would fall for,
yet harmless should one extract it: every name a case would write contains "factorlab-…-canary" (and no
case writes through a link that leads out), so a test can look for canaries outside the destination. When a
valid submission (a zip, a tar or a folder) is given, its files come first in the cases about paths and
links, so that a rejection arrives after some files were already written.

Standard library only; the same bytes every time (fixed times, modes, owners and order).
"""

from __future__ import annotations

import gzip
import io
import random
import stat
import struct
import tarfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

MiB = 1024**2
DATE = (2024, 1, 1, 0, 0, 0)  # zip members' time
MTIME = 1_704_067_200  # tar members' time (the same day)
NOT_READABLE = "not a readable archive"
UNSAFE = "unsafe path"


def canary(what: str, suffix: str = ".txt") -> str:
    """A member name a test can search for: "factorlab-WHAT-canary.txt"."""
    return f"factorlab-{what}-canary{suffix}"


@dataclass
class Member:
    """One member of an archive to write: a file (data), a folder, or a link (target)."""

    name: str
    data: bytes = b""
    mode: int = stat.S_IFREG | 0o644  # a zip's external attributes, high 16 bits
    tar_type: bytes = tarfile.REGTYPE
    target: str = ""
    deflate: bool = True


def file(name: str, data: bytes = b"", mode: int = 0o644) -> Member:
    return Member(name, data, stat.S_IFREG | mode)


def directory(name: str) -> Member:
    return Member(name.rstrip("/") + "/", mode=stat.S_IFDIR | 0o755, tar_type=tarfile.DIRTYPE)


def link(name: str, target: str) -> Member:
    return Member(name, target.encode(), stat.S_IFLNK | 0o777, tarfile.SYMTYPE, target)


def zip_bytes(members: list[Member]) -> bytes:
    """A zip of the members, in order (a link: S_IFLNK in the external attributes, its target as content)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": a case wants it
        with zipfile.ZipFile(buffer, "w") as archive:
            for member in members:
                info = zipfile.ZipInfo(member.name, DATE)
                info.create_system = 3  # unix: the mode is in the high bits of external_attr
                info.external_attr = member.mode << 16
                info.compress_type = zipfile.ZIP_DEFLATED if member.deflate and member.data else zipfile.ZIP_STORED
                archive.writestr(info, member.data)
    return buffer.getvalue()


def tar_bytes(members: list[Member], compress: bool = False) -> bytes:
    """A tar of the members, in order, gzipped (no name, time 0 in the gzip header) if compress."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for member in members:
            info = tarfile.TarInfo(member.name.rstrip("/") if member.tar_type == tarfile.DIRTYPE else member.name)
            info.type, info.mtime, info.mode = member.tar_type, MTIME, stat.S_IMODE(member.mode)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if member.tar_type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = member.target
            if member.tar_type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                info.devmajor, info.devminor = 1, 3
            if member.tar_type == tarfile.REGTYPE:
                info.size = len(member.data)
                archive.addfile(info, io.BytesIO(member.data))
            else:
                archive.addfile(info)
    data = buffer.getvalue()
    return gzip.compress(data, mtime=0) if compress else data


def valid_members(source: Path) -> list[Member]:
    """The regular files of a valid submission (zip, tar of any compression, or folder), in a fixed order."""
    found: list[Member] = []
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.is_file() and not path.is_symlink() and ".git" not in path.relative_to(source).parts:
                mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
                found.append(file(path.relative_to(source).as_posix(), path.read_bytes(), mode))
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                if not info.is_dir() and not stat.S_ISLNK(info.external_attr >> 16):
                    mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
                    found.append(file(info.filename, archive.read(info), mode))
    else:
        with tarfile.open(source) as archive:
            for info in archive:
                if info.isreg():
                    mode = 0o755 if info.mode & 0o111 else 0o644
                    found.append(file(info.name, archive.extractfile(info).read(), mode))
    return found


def _patched_zip(members: list[Member], old: bytes, new: bytes) -> bytes:
    """A zip whose name bytes (in the local and the central header) are changed after writing: zipfile would
    not write a NUL in a name."""
    data = zip_bytes(members)
    assert len(old) == len(new) and data.count(old) == 2
    return data.replace(old, new)


def _lying_zip() -> bytes:
    """40 MiB of zeros in one member whose headers (local and central) say it holds 1000 bytes; the CRC is
    the real one's. A reader trusting the header would judge 1000 bytes; zipfile stops at them and finds the
    CRC wrong."""
    data = bytearray(zip_bytes([file(canary("lying-size", ".bin"), bytes(40 * MiB))]))
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 1000)
    struct.pack_into("<I", data, central + 24, 1000)
    return bytes(data)


def _pax_bomb() -> bytes:
    """A tar.gz whose first header is a pax header of 100 MiB of zeros: tarfile would read it whole into memory.
    Written as a multi-member gzip of one compressed MiB repeated, so it costs nothing to make."""
    size = 100 * MiB
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size, info.mtime = tarfile.XHDTYPE, size, MTIME
    header = info.tobuf(tarfile.USTAR_FORMAT)
    zeros = gzip.compress(bytes(MiB), mtime=0)
    return gzip.compress(header, mtime=0) + zeros * (size // MiB) + gzip.compress(bytes(2 * tarfile.BLOCKSIZE), mtime=0)


def _bad_header_tar() -> bytes:
    """A tar whose second header has a wrong checksum (tarfile alone would take it for the end of the archive)."""
    data = bytearray(tar_bytes([file(canary("header-1")), file(canary("header-2"), b"x" * 100)]))
    second = tarfile.BLOCKSIZE  # the first member is empty: a header alone
    data[second + 148: second + 156] = b"0000000\x00"
    return bytes(data)


def write_corpus(folder: Path, valid_submission: Path | None = None) -> dict[str, str]:
    """Write one file per hostile case into folder; return {file name: phrase its reason must contain}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    valid = valid_members(Path(valid_submission)) if valid_submission else []
    cases: dict[str, str] = {}

    def put(name: str, data: bytes, phrase: str) -> None:
        (folder / name).write_bytes(data)
        cases[name] = phrase

    def zipped(*members: Member) -> bytes:
        return zip_bytes([*valid, *members])

    def tarred(*members: Member, compress: bool = False) -> bytes:
        return tar_bytes([*valid, *members], compress)

    # Paths that leave the folder, or are not paths.
    put("zip-slip.zip", zipped(file("../" + canary("zip-slip"))), UNSAFE)
    put("zip-slip-inner.zip", zipped(file("exercises/../../" + canary("zip-slip-inner"))), UNSAFE)
    put("tar-slip.tar.gz", tarred(file("../" + canary("tar-slip")), compress=True), UNSAFE)
    put("tar-absolute.tar", tarred(file("/tmp/" + canary("tar-absolute"))), "absolute path")
    put("zip-absolute.zip", zipped(file("/tmp/" + canary("zip-absolute"))), "absolute path")
    put("zip-backslash.zip", zipped(file("..\\" + canary("zip-backslash"))), "backslash")
    put("zip-control-char.zip", zipped(file(canary("control\x1b[31m"))), "control character")
    nul = canary("nul-name", ".txt_py")
    put("zip-nul-name.zip", _patched_zip([*valid, file(nul)], nul.encode(), nul.encode().replace(b"_", b"\x00")),
        "control character")
    put("zip-too-deep.zip", zipped(file("d/" * 20 + canary("too-deep"))), "too deep")
    put("zip-long-name.zip", zipped(file(canary("long-name", "-" + "x" * 300))), "too long")
    put("zip-duplicate.zip", zipped(file(canary("duplicate"), b"one"), file(canary("duplicate"), b"two")),
        "same name")

    # Links and other members that are not files.
    up = "../" * 12
    put("tar-symlink-out.tar", tarred(link(canary("tar-symlink-out", ""), up + "etc")), "points outside")
    put("zip-symlink-out.zip", zipped(link(canary("zip-symlink-out", ""), up + "etc/passwd")), "points outside")
    put("tar-symlink-absolute.tar", tarred(link(canary("tar-symlink-absolute", ""), "/etc/passwd")),
        "link to an absolute path")
    put("zip-symlink-absolute.zip", zipped(link(canary("zip-symlink-absolute", ""), "/etc")),
        "link to an absolute path")
    # Each link inside by itself; l leads out through x, which is deeper than where it points: from chain/z,
    # ../a/b/d/x/../../.. is chain/a by the names, but chain/c/../../.. (the folder above the submission) on disk.
    chain = canary("link-chain", "")
    put("tar-link-chain.tar", tarred(directory(f"{chain}/c"), link(f"{chain}/a/b/d/x", "../../../c"),
                                     link(f"{chain}/z/l", "../a/b/d/x/../../..")), "points outside")
    put("tar-link-loop.tar", tarred(link("exercises/" + canary("link-loop", ""), "..")), "loop")
    through = canary("through-link", "")
    put("tar-through-link.tar", tarred(directory(f"{through}/sub"), link(f"{through}/lnk", "sub"),
                                       file(f"{through}/lnk/written.txt")), "through the link")
    put("tar-hard-link.tar", tarred(Member(canary("hard-link", ""), tar_type=tarfile.LNKTYPE, target="/etc/passwd")),
        "hard link")
    put("tar-char-device.tar", tarred(Member(canary("char-device", ""), tar_type=tarfile.CHRTYPE)),
        "character device")
    put("tar-block-device.tar", tarred(Member(canary("block-device", ""), tar_type=tarfile.BLKTYPE)),
        "block device")
    put("tar-fifo.tar", tarred(Member(canary("tar-fifo", ""), tar_type=tarfile.FIFOTYPE)), "fifo")
    put("zip-fifo.zip", zipped(Member(canary("zip-fifo", ""), mode=stat.S_IFIFO | 0o644)), "fifo")

    # Sizes: bombs, too many, too large (no valid files first: they would only dilute the ratio).
    put("zip-bomb.zip", zip_bytes([file(canary("zip-bomb", ".bin"), bytes(40 * MiB))]), "zip bomb")
    put("zip-lying-size.zip", _lying_zip(), NOT_READABLE)
    put("tar-bomb.tar.gz", tar_bytes([file(canary(f"tar-bomb-{i:02d}", ".bin"), bytes(4 * MiB)) for i in range(12)],
                                     compress=True), "zip bomb")
    put("tar-pax-bomb.tar.gz", _pax_bomb(), "zip bomb")
    put("zip-too-many-files.zip", zip_bytes([file(canary(f"many-{i:04d}")) for i in range(2500)]), "too many files")
    noise = random.Random(0).randbytes(6 * MiB)  # incompressible, yet the same every time
    put("zip-file-too-large.zip", zip_bytes([Member(canary("too-large", ".bin"), noise, deflate=False)]),
        "file too large")
    with open(folder / "oversized.zip", "wb") as sparse:  # 21 MiB of nothing: judged by its size alone
        sparse.truncate(21 * MiB)
    cases["oversized.zip"] = "archive is too large"

    # Broken, empty, or not an archive at all.
    sample = [*valid] or [file(canary(f"sample-{i}", ".bin"), random.Random(i).randbytes(8192)) for i in range(4)]
    whole_zip = zip_bytes(sample)
    put("zip-truncated.zip", whole_zip[: len(whole_zip) // 2], NOT_READABLE)
    whole_tgz = tar_bytes(sample, compress=True)
    put("tar-truncated.tar.gz", whole_tgz[: len(whole_tgz) // 2], NOT_READABLE)
    corrupt = bytearray(whole_tgz)
    corrupt[len(corrupt) // 2] ^= 0xFF
    put("tar-corrupt.tar.gz", bytes(corrupt), NOT_READABLE)
    put("tar-bad-header.tar", _bad_header_tar(), NOT_READABLE)
    put("empty.zip", b"", NOT_READABLE)
    put("not-an-archive.zip", b"This is my homework, I could not make the zip work, sorry.\n" * 20, NOT_READABLE)
    return cases
