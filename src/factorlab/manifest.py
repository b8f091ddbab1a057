"""An app's requirements.txt read as pip reads it: requirements, pins, options and the files it includes.

Every form the ecosystem's tools write is understood: `pip freeze` output, pip-compile's (continuation
lines, `--hash=…`, `# via` comments), `-r`/`-c` includes, index options, extras, environment markers and
direct references (`name @ url`). A clean environment, an image build and the static checks all read
the manifest through this module, so they agree on what it declares.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (InvalidSdistFilename, InvalidWheelFilename, canonicalize_name, parse_sdist_filename,
                             parse_wheel_filename)

MANIFEST = "requirements.txt"
# Options pip accepts in a requirements file that do not change what is required.
GLOBAL_OPTIONS = {"-i", "--index-url", "--extra-index-url", "--no-index", "-f", "--find-links", "--trusted-host",
                  "--pre", "--prefer-binary", "--only-binary", "--no-binary", "--require-hashes", "--use-feature",
                  "--config-settings"}
INCLUDES = {"-r": "requirement", "--requirement": "requirement", "-c": "constraint", "--constraint": "constraint"}
EDITABLE = {"-e", "--editable"}
COMMIT = re.compile(r"@[0-9a-f]{40}(#|$)")
HASH = re.compile(r"#(sha256|sha384|sha512)=[0-9a-f]+", re.I)
# An archive a code host makes of a branch, a tag or a commit: GitHub's /archive/<ref>.tar.gz (and
# /archive/refs/heads/<branch>.tar.gz), /tarball/<ref>, /zipball/<ref>; GitLab's /-/archive/<ref>/…; Bitbucket's
# /get/<ref>.tar.gz. Only a commit names fixed code.
REF_ARCHIVE = re.compile(r"/(archive|tarball|zipball|get)/|/refs/(heads|tags)/", re.I)
FULL_COMMIT = re.compile(r"(^|[/@])[0-9a-f]{40}([./]|$)", re.I)


class ManifestMissing(Exception):
    """There is no requirements.txt."""


@dataclass
class Declared:
    """One requirement line: what it names, and whether it fixes one exact version."""

    name: str  # canonical: lower case, runs of -_. as one -
    text: str  # as written, for messages
    where: str  # file:line
    pinned: bool
    constraint: bool = False


@dataclass
class Manifest:
    """What a folder's requirements.txt declares, with the files it includes."""

    folder: Path
    requirements: list[Declared] = field(default_factory=list)
    constraints: list[Declared] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # every manifest file read: path in the folder → bytes
    problems: list[str] = field(default_factory=list)  # lines pip would refuse, includes that cannot be read

    @property
    def names(self) -> set[str]:
        return {r.name for r in self.requirements}

    def unpinned(self) -> list[Declared]:
        """Requirements that neither fix a version themselves nor through a constraint that does."""
        fixed = {c.name for c in self.constraints if c.pinned}
        return [r for r in self.requirements if not r.pinned and r.name not in fixed]


def normalize(name: str) -> str:
    return canonicalize_name(name)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) with continuations joined and comments removed, as pip reads them."""
    found, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        line = re.sub(r"(^|\s)#.*$", "", raw)
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            found.append((start, line))
    if pending.strip():
        found.append((start, pending.strip()))
    return found


def _pinned(req: Requirement) -> bool:
    if req.url:
        return bool(COMMIT.search(req.url) or HASH.search(req.url) or _fixed_file(req.url, req.name))
    return any(s.operator == "===" or (s.operator == "==" and "*" not in s.version) for s in req.specifier)


def _fixed_file(url: str, name: str) -> bool:
    """Does a URL name one release's file: a wheel or sdist of this project with its version in the name
    (requests-2.34.2.tar.gz), or a code host's archive of a commit? An archive of a branch or a tag is not:
    the branch moves, and a tag can be moved."""
    path = urlsplit(url).path
    if REF_ARCHIVE.search(path):
        return bool(FULL_COMMIT.search(path.rsplit("/archive/", 1)[-1]))
    file = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    try:
        if file.endswith(".whl"):
            project, version = parse_wheel_filename(file)[:2]
        else:
            project, version = parse_sdist_filename(file)
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return False
    return project == canonicalize_name(name) and bool(version.release)


def read(folder: Path, name: str = MANIFEST) -> Manifest:
    """Read folder/name and everything it includes; ManifestMissing when there is no such file."""
    folder = Path(folder)
    if not (folder / name).is_file():
        raise ManifestMissing(name)
    manifest = Manifest(folder)
    _read_file(manifest, name, constraint=False)
    return manifest


def _read_file(manifest: Manifest, name: str, constraint: bool) -> None:
    path = (manifest.folder / name).resolve()
    rel = Path(name).as_posix()
    if rel in manifest.files:
        return
    try:
        path.relative_to(manifest.folder.resolve())
    except ValueError:
        manifest.problems.append(f"{rel} is outside the app's folder")
        return
    if not path.is_file():
        manifest.problems.append(f"{rel}, which it includes, does not exist")
        return
    data = path.read_bytes()
    manifest.files[rel] = data
    for number, line in logical_lines(data.decode(errors="replace")):
        _read_line(manifest, rel, number, line, constraint)


def _option(words: list[str]) -> tuple[str, str]:
    """The option a line starts with, and its value: -r FILE, -rFILE, --requirement FILE, --requirement=FILE."""
    first = words[0]
    if first.startswith("--"):
        option, equals, value = first.partition("=")
        return option, value if equals else (words[1] if len(words) > 1 else "")
    if len(first) > 2:
        return first[:2], first[2:]
    return first, words[1] if len(words) > 1 else ""


def _read_line(manifest: Manifest, rel: str, number: int, line: str, constraint: bool) -> None:
    where = f"{rel}:{number}"
    if line.startswith("-"):
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        option, value = _option(words)
        if option in INCLUDES:
            base = (manifest.folder / rel).parent.relative_to(manifest.folder)
            _read_file(manifest, (base / value).as_posix(), constraint or INCLUDES[option] == "constraint")
        elif option in EDITABLE:
            egg = re.search(r"#egg=([\w.-]+)", value)
            found = egg[1] if egg else Path(value.rstrip("/")).name or value
            manifest.requirements.append(Declared(normalize(found), line, where, False))
        elif option not in GLOBAL_OPTIONS:
            manifest.problems.append(f"{where}: an option pip does not take in a requirements file: {line[:60]!r}")
        return
    text = re.split(r"\s+--", line, maxsplit=1)[0].strip()  # requirement options: --hash=…, --config-settings…
    if re.match(r"^[a-z]+(\+[a-z]+)?://", text) and " @ " not in text:  # a bare URL: named after its file
        name = re.split(r"[-_]\d", Path(text.split("#")[0]).name)[0]
        text = f"{name} @ {text}"
    try:
        req = Requirement(text)
    except InvalidRequirement:
        manifest.problems.append(f"{where}: not a requirement pip understands: {line[:60]!r}")
        return
    declared = Declared(normalize(req.name), text, where, _pinned(req), constraint)
    (manifest.constraints if constraint else manifest.requirements).append(declared)
