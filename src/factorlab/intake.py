"""Turning a submitted archive into a folder, safely: the one door every submission comes through.

Archives come from students and are untrusted: a member may try to leave the folder (`../x`, `/etc/x`, a link
out and a file written through it), be something other than a file (a device, a FIFO, a hard link to a
system file), or be far bigger unpacked than packed (a zip bomb). So nothing here trusts what an archive
says: names are checked before anything is written, every file is created fresh without following links,
and sizes are counted as the bytes are actually decompressed and written. A submission that breaks a rule
is `Rejected` with one line saying why, and leaves nothing behind.

The archive's kind comes from its content, not its name: a zip, or a tar (plain, gzip, bzip2 or xz).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import re
import shutil
import stat
import tarfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

MiB = 1024**2
CHUNK = 64 * 1024
RATIO_FLOOR = 1 * MiB  # below this much unpacked, no ratio is judged (small archives of text compress well)
NAME_MAX = 255  # bytes in one path component (Linux)
HEADROOM = 4096  # a tar's own bytes per member: headers, long-name and pax records, padding
GZIP, BZIP2, XZ = "gzip", "bzip2", "xz"
MAGIC = ((b"\x1f\x8b", GZIP), (b"BZh", BZIP2), (b"\xfd7zXZ\x00", XZ))
DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Limits:
    max_archive_bytes: int = 20 * MiB  # the archive file itself
    max_files: int = 2000  # members (files + folders)
    max_file_bytes: int = 5 * MiB  # one member, uncompressed
    max_total_bytes: int = 50 * MiB  # all members, uncompressed
    max_ratio: float = 100.0  # total uncompressed / archive size (only judged once total > 1 MiB)
    max_path: int = 255  # length of one member name
    max_depth: int = 16  # path components


LIMITS = Limits()


class Rejected(Exception):
    """A submission that is not graded; str(exc) is the reason, one line an instructor understands,
    e.g. "unsafe path in the archive: '../evil.py' leaves the submission's folder"."""


def archive_kind(path: Path) -> str | None:
    """"zip" or "tar" (plain, gzip, bzip2 or xz) by the file's content, None for anything else."""
    try:
        with _open_regular(Path(path)) as raw:
            return _sniff(raw)[0]
    except (OSError, Rejected):
        return None


def unpack(archive: Path, dest: Path, limits: Limits = LIMITS) -> list[str]:
    """Extract a .zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz (detected by content, not by name) into dest, which
    must not exist yet (it is created; its parent must exist). Returns the extracted relative names of files and
    links (not folders), sorted. Raises Rejected (and leaves nothing at dest: it removes what it wrote) for
    anything unsafe or over a limit; ValueError when dest exists already."""
    archive, dest = Path(archive), Path(dest)
    if os.path.lexists(dest):
        raise ValueError(f"{dest} exists already: unpack makes the folder itself")
    found = os.stat(archive)
    if stat.S_ISREG(found.st_mode):
        _judge_archive_size(found.st_size, limits)  # before opening it
    with _open_regular(archive) as raw:
        size = os.fstat(raw.fileno()).st_size
        _judge_archive_size(size, limits)  # the file opened, should it have changed since
        kind, compression, why = _sniff(raw)
        if kind is None:
            raise Rejected(f"not a readable archive: {why}")
        os.mkdir(dest, 0o755)
        try:
            os.chmod(dest, 0o755)
            tree = _Tree(dest, limits, size)
            if kind == "zip":
                _unpack_zip(raw, tree)
            else:
                _unpack_tar(raw, compression, tree)
            return tree.finish()
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise


# -- reading the archive ------------------------------------------------------------------------------------------


def _judge_archive_size(size: int, limits: Limits) -> None:
    if size > limits.max_archive_bytes:
        raise Rejected(f"the archive is too large: {size} bytes, over the limit of "
                       f"{_bytes(limits.max_archive_bytes)}")


@contextlib.contextmanager
def _open_regular(path: Path) -> Iterator[BinaryIO]:
    """The archive, opened for reading only if it is a regular file (O_NONBLOCK: a FIFO never blocks the open)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Rejected("not a readable archive: not a regular file")
        raw = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with raw:
        yield raw


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    """Any error of the standard library's readers on a hostile archive (BadZipFile, zlib.error, EOFError,
    tarfile.ReadError, OSError of gzip/bz2, and whatever a malformed structure raises) means: unreadable."""
    try:
        yield
    except Rejected:
        raise
    except Exception as exc:
        raise Rejected(f"not a readable archive: {_one_line(exc)}") from exc


def _decompressed(raw: BinaryIO, compression: str | None) -> BinaryIO:
    if compression == GZIP:
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == BZIP2:
        return bz2.BZ2File(raw, "rb")
    if compression == XZ:
        return lzma.LZMAFile(raw, "rb")
    return raw


def _tar_header(block: bytes) -> bool | None:
    """True for a valid tar header block, False for a block of zeros (an empty tar), None for anything else."""
    if len(block) != tarfile.BLOCKSIZE:
        return None
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.EOFHeaderError:
        return False
    except tarfile.HeaderError:
        return None
    return True


def _sniff(raw: BinaryIO) -> tuple[str | None, str | None, str]:
    """(kind, compression, why not): a plain tar when the file starts with a real tar header, then a zip (by its
    end-of-central-directory record), then a compressed tar (by the compressor's magic and a tar header inside)."""
    raw.seek(0)
    head = raw.read(tarfile.BLOCKSIZE)
    if not head:
        return None, None, "an empty file"
    if _tar_header(head):
        return "tar", None, ""
    raw.seek(0)
    if zipfile.is_zipfile(raw):
        return "zip", None, ""
    if head.startswith(b"PK\x03\x04"):
        return None, None, "a zip that is truncated or corrupted (its central directory is missing)"
    compression = next((name for magic, name in MAGIC if head.startswith(magic)), None)
    raw.seek(0)
    try:
        block = _decompressed(raw, compression).read(tarfile.BLOCKSIZE)
    except Exception as exc:
        return None, None, f"a {compression} stream that cannot be read ({_one_line(exc)})"
    if _tar_header(block) is not None:
        return "tar", compression, ""
    if compression:
        return None, None, f"a {compression} file, but not of a tar archive"
    return None, None, "neither a zip nor a tar archive (.zip, .tar, .tar.gz, .tar.bz2, .tar.xz)"


class _StrictInfo(tarfile.TarInfo):
    """tarfile ends an archive quietly at a bad header after the first one, or at a cut-off; here both are
    unreadable. Only a block of zeros (the end-of-archive marker) ends it."""

    @classmethod
    def fromtarfile(cls, tar):
        try:
            return super().fromtarfile(tar)
        except tarfile.EOFHeaderError:
            raise
        except tarfile.EmptyHeaderError:
            raise Rejected("not a readable archive: a tar that ends without its end-of-archive marker "
                           "(truncated?)") from None
        except tarfile.HeaderError as exc:
            raise Rejected(f"not a readable archive: a bad tar header ({_one_line(exc)})") from None


class _Budget:
    """The decompressed tar stream, refusing to give more than its budget: the bytes of files, already limited,
    plus headroom for the tar's own headers. tarfile reads long names and pax headers whole into memory, so
    a bomb hidden there is stopped here, before it is decompressed."""

    def __init__(self, inner: BinaryIO, budget: int):
        self.inner, self.budget, self.used = inner, budget, 0

    def read(self, n: int = -1) -> bytes:
        allowed = self.budget - self.used + 1
        n = allowed if n is None or n < 0 else min(n, allowed)
        with _reading():
            data = self.inner.read(n)
        self.used += len(data)
        if self.used > self.budget:
            raise Rejected(f"it unpacks to more than {_bytes(self.budget)} of tar data: looks like a zip bomb")
        return data


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        with _reading():
            data = stream.read(CHUNK)
        if not data:
            return
        yield data


def _unpack_tar(raw: BinaryIO, compression: str | None, tree: "_Tree") -> None:
    """Stream the tar member by member ("r|": no seeking back); every member's kind is judged before its data."""
    limits = tree.limits
    raw.seek(0)
    stream = _Budget(_decompressed(raw, compression),
                     limits.max_total_bytes + (limits.max_files + 1) * HEADROOM + 16 * tarfile.RECORDSIZE)
    with _reading():
        tar = tarfile.open(fileobj=stream, mode="r|", tarinfo=_StrictInfo)
    while True:
        with _reading():
            member = tar.next()
        if member is None:
            break
        tree.count()
        name = member.name
        if member.isdir():
            tree.folder(name)
        elif member.issym():
            tree.link(name, member.linkname)
        elif member.islnk():
            raise Rejected(f"a hard link in the archive: {_shown(name)} -> {_shown(member.linkname)} "
                           "(hard links are not accepted)")
        elif member.ischr() or member.isblk() or member.isfifo():
            what = "a character device" if member.ischr() else "a block device" if member.isblk() else \
                "a FIFO (named pipe)"
            raise Rejected(f"{what} in the archive: {_shown(name)} (only files, folders and links are accepted)")
        elif member.type in tarfile.REGULAR_TYPES:
            with _reading():
                data = tar.extractfile(member)
            tree.file(name, member.mode, member.size, _chunks(data))
        else:
            raise Rejected(f"an unsupported member type {member.type!r} in the archive: {_shown(name)}")
    # Read to the end of the compressed stream, so that its checksum (gzip CRC, xz check) is verified too.
    if compression:
        with _reading():
            while stream.read(CHUNK):
                pass


def _unpack_zip(raw: BinaryIO, tree: "_Tree") -> None:
    """Judge the central directory first (count, declared sizes), then extract member by member."""
    limits = tree.limits
    end = getattr(zipfile, "_EndRecData", None)  # the entry count, before zipfile reads every entry into memory
    if end is not None:
        with _reading():
            record = end(raw)
        if record and record[zipfile._ECD_ENTRIES_TOTAL] > limits.max_files:
            raise Rejected(f"too many files: {record[zipfile._ECD_ENTRIES_TOTAL]} members, over the limit of "
                           f"{limits.max_files}")
    with _reading():
        zf = zipfile.ZipFile(raw)
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_files:
            raise Rejected(f"too many files: {len(infos)} members, over the limit of {limits.max_files}")
        tree.judge_declared(sum(info.file_size for info in infos))
        for info in infos:
            tree.count()
            name = info.orig_filename  # zipfile cuts the name at a NUL; the check must see it
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if info.flag_bits & 0x1:
                raise Rejected(f"an encrypted member in the archive: {_shown(name)} (encrypted archives are not "
                               "accepted)")
            if kind == stat.S_IFLNK:
                tree.link(name, _zip_link_target(zf, info, limits))
            elif kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
                what = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
                        stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket"}[kind]
                raise Rejected(f"{what} in the archive: {_shown(name)} (only files, folders and links are "
                               "accepted)")
            elif kind == stat.S_IFDIR or name.endswith("/"):
                tree.folder(name)
            else:
                tree.file(name, mode, info.file_size, _zip_chunks(zf, info))


def _zip_chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The member's bytes as decompressed (zipfile stops at the declared size and checks the CRC at the end);
    lazy: the member is opened only once its name and size have passed."""
    with _reading():
        member = zf.open(info)
    with member:
        yield from _chunks(member)


def _zip_link_target(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> str:
    """A zip symlink's target is its content (read whole, so the CRC is checked)."""
    most = limits.max_path * 4
    with _reading():
        with zf.open(info) as member:
            data = member.read(most + 1)
            rest = member.read()
    if len(data) > most or rest:
        raise Rejected(f"a link whose target is too long in the archive: {_shown(info.orig_filename)}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(f"a link whose target is not UTF-8 in the archive: {_shown(info.orig_filename)}") from None


# -- writing the folder -------------------------------------------------------------------------------------------


class _Tree:
    """The folder being written, and the counts every limit is judged on. Every name is checked before it is
    used; every folder on the way is made here (never a link, never a file); every file is created new,
    without following a link (O_EXCL|O_NOFOLLOW)."""

    def __init__(self, root: Path, limits: Limits, archive_size: int):
        self.root, self.limits, self.archive_size = str(root), limits, max(archive_size, 1)
        self.members = 0
        self.total = 0
        self.kinds: dict[str, str] = {}  # relative name -> "file" | "folder" | "link", as written
        self.named: set[str] = set()  # the names members gave (folders made on the way are not in it)
        self.links: list[str] = []
        self.written: list[str] = []

    # -- the rules ------------------------------------------------------------------------------------------

    def count(self) -> None:
        self.members += 1
        if self.members > self.limits.max_files:
            raise Rejected(f"too many files: more than the limit of {self.limits.max_files} members")

    def judge_declared(self, declared_total: int) -> None:
        """Reject early on what the archive says it holds (the count as written still decides)."""
        self._judge_total(declared_total, "would unpack")

    def _judge_total(self, total: int, verb: str = "unpacks") -> None:
        limits = self.limits
        if total > limits.max_total_bytes:
            raise Rejected(f"it {verb} to more than the limit of {_bytes(limits.max_total_bytes)}: "
                           "looks like a zip bomb")
        if total > RATIO_FLOOR and total > limits.max_ratio * self.archive_size:
            raise Rejected(f"it {verb} to over {limits.max_ratio:g} times its own size ({total / MiB:.1f} MiB "
                           f"from {self.archive_size} bytes): looks like a zip bomb")

    def parts(self, name: str, folder: bool = False) -> tuple[str, ...]:
        """The member name's components, checked: relative, no '..', no backslash or control character, not
        too long or too deep. () is the top folder itself (a tar's "./")."""
        shown, limits = _shown(name), self.limits
        if not name:
            raise Rejected("an empty member name in the archive")
        if len(name) > limits.max_path:
            raise Rejected(f"a member name too long in the archive: {shown} has {len(name)} characters, over "
                           f"the limit of {limits.max_path}")
        if name.startswith(("/", "\\")) or DRIVE.match(name):
            raise Rejected(f"unsafe path in the archive: {shown} is an absolute path")
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
            raise Rejected(f"unsafe path in the archive: {shown} has a control character or is not UTF-8")
        if "\\" in name:
            raise Rejected(f"unsafe path in the archive: {shown} has a backslash")
        parts = tuple(p for p in name.split("/") if p not in ("", "."))
        if ".." in parts:
            depth = 0
            for part in parts:
                depth += -1 if part == ".." else 1
                if depth < 0:
                    raise Rejected(f"unsafe path in the archive: {shown} leaves the submission's folder")
            raise Rejected(f"unsafe path in the archive: {shown} has a '..' in it")
        if len(parts) > limits.max_depth:
            raise Rejected(f"a member too deep in the archive: {shown} has {len(parts)} levels, over the limit "
                           f"of {limits.max_depth}")
        if any(len(os.fsencode(part)) > NAME_MAX for part in parts):
            raise Rejected(f"a member name too long in the archive: {shown} has a part over {NAME_MAX} bytes")
        if not parts and not folder:
            raise Rejected(f"an empty member name in the archive: {shown}")
        return parts

    def _claim(self, parts: tuple[str, ...], kind: str, name: str) -> str:
        rel = "/".join(parts)
        if rel in self.named:
            raise Rejected(f"two members with the same name in the archive: {_shown(rel)}")
        self.named.add(rel)
        known = self.kinds.get(rel)
        if known is not None and not (known == kind == "folder"):
            raise Rejected(f"{_shown(name)} is both a {known} and a {kind} in the archive")
        return rel

    def _folders(self, parts: tuple[str, ...], name: str) -> None:
        """Make every folder on the way to parts (0o755), refusing any that is a link or a file."""
        for depth in range(1, len(parts) + 1):
            rel = "/".join(parts[:depth])
            known = self.kinds.get(rel)
            if known == "folder":
                continue
            if known == "link":
                raise Rejected(f"unsafe path in the archive: {_shown(name)} goes through the link {_shown(rel)}")
            if known == "file":
                raise Rejected(f"{_shown(name)} needs {_shown(rel)} to be a folder, but it is a file")
            path = os.path.join(self.root, rel)
            try:
                os.mkdir(path, 0o755)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(path).st_mode):  # never through a link, whoever made it
                    raise Rejected(f"unsafe path in the archive: {_shown(name)} goes through {_shown(rel)}, "
                                   "not a folder") from None
            os.chmod(path, 0o755)
            self.kinds[rel] = "folder"

    # -- the members ----------------------------------------------------------------------------------------

    def folder(self, name: str) -> None:
        parts = self.parts(name, folder=True)
        if parts:
            self._claim(parts, "folder", name)
            self._folders(parts, name)

    def file(self, name: str, mode: int, declared: int, chunks: Iterator[bytes]) -> None:
        """Write one file from its decompressed chunks, counting each byte against the limits as it is written.
        Mode 0o755 when the member had any x bit, else 0o644 (never setuid, setgid or sticky)."""
        limits, shown = self.limits, _shown(name)
        parts = self.parts(name)
        if declared > limits.max_file_bytes:
            raise Rejected(f"a file too large: {shown} is {declared} bytes, over the limit of "
                           f"{_bytes(limits.max_file_bytes)}")
        self._judge_total(self.total + declared, "would unpack")
        rel = self._claim(parts, "file", name)
        self._folders(parts[:-1], name)
        path = os.path.join(self.root, rel)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self.kinds[rel] = "file"
        with open(fd, "wb") as out:
            size = 0
            for chunk in chunks:
                size += len(chunk)
                self.total += len(chunk)
                if size > limits.max_file_bytes:
                    raise Rejected(f"a file too large: {shown} unpacks to more than the limit of "
                                   f"{_bytes(limits.max_file_bytes)}")
                self._judge_total(self.total)
                out.write(chunk)
            os.fchmod(fd, 0o755 if mode & 0o111 else 0o644)
        self.written.append(rel)

    def link(self, name: str, target: str) -> None:
        """A symbolic link, kept only when relative and (lexically, from its own folder) inside the submission,
        and not to a folder that holds it (a loop that would make copies and walks endless)."""
        shown = f"{_shown(name)} -> {_shown(target)}"
        parts = self.parts(name)
        if not target:
            raise Rejected(f"a link with an empty target in the archive: {_shown(name)}")
        if len(target) > self.limits.max_path or any(unicodedata.category(c) in ("Cc", "Cs") for c in target):
            raise Rejected(f"a link with an unsafe target in the archive: {shown}")
        if target.startswith(("/", "\\")) or DRIVE.match(target):
            raise Rejected(f"a link to an absolute path in the archive: {shown}")
        if "\\" in target:
            raise Rejected(f"a link with a backslash in its target in the archive: {shown}")
        here = list(parts[:-1])
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part != "..":
                here.append(part)
            elif here:
                here.pop()
            else:
                raise Rejected(f"a link that points outside the submission: {shown}")
        if len(here) < len(parts) and tuple(here) == parts[:len(here)]:
            raise Rejected(f"a link to a folder that holds it (a loop): {shown}")
        rel = self._claim(parts, "link", name)
        self._folders(parts[:-1], name)
        os.symlink(target, os.path.join(self.root, rel))
        self.kinds[rel] = "link"
        self.links.append(rel)

    def finish(self) -> list[str]:
        """With every member written, resolve each link as the system will: a link that is inside by itself
        may still lead outside, or to a folder holding it, through other links."""
        root = os.path.realpath(self.root)
        for rel in self.links:
            path = os.path.join(root, rel)
            real = os.path.realpath(path)
            folder = os.path.dirname(path)
            shown = f"{_shown(rel)} -> {_shown(os.readlink(path))}"
            if not real.startswith(root + os.sep):
                if real == root:
                    raise Rejected(f"a link to a folder that holds it (a loop): {shown}")
                raise Rejected(f"a link that points outside the submission through other links: {shown}")
            if folder == real or folder.startswith(real + os.sep):
                raise Rejected(f"a link to a folder that holds it (a loop), through other links: {shown}")
        return sorted(self.written + self.links)


def _shown(name: str, most: int = 80) -> str:
    """A member name for a reason: its repr (control characters visible), cut to about 80 characters."""
    return repr(name if len(name) <= most else name[: most - 1] + "…")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _bytes(n: int) -> str:
    return f"{n} bytes ({n / MiB:.1f} MiB)" if n >= MiB else f"{n} bytes"
