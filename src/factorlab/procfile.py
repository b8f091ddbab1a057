"""Procfiles: the process types of an app, one `name: command` line each, as Heroku, foreman and honcho read them.

    web: gunicorn shortly:app
    worker: python -m shortly_worker

A platform runs a line with a shell (`sh -c`), in the app's folder, with $PORT set for a process that serves.
Blank lines and `#` comments are skipped; any other line that is not `name: command` is an error, said with its
line number, rather than skipped as some tools do: a typo must not silently lose a process type.
"""

from __future__ import annotations

import re
from pathlib import Path

NAME = "Procfile"
WEB, WORKER = "web", "worker"  # the process types the course's app has (the worker from factor VIII on)
LINE = re.compile(r"^([A-Za-z0-9_-]+):[ \t]*(\S.*?)\s*$")


class ProcfileError(Exception):
    """The Procfile is missing, unreadable or malformed, or lacks the process type asked for."""


def parse(text: str) -> dict[str, str]:
    """The process types of a Procfile's text, in order: name -> command line."""
    types: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LINE.match(line)
        if not match:
            raise ProcfileError(f"{NAME} line {number} is not `name: command`: {line.strip()[:80]!r}")
        name, command = match.groups()
        if name in types:
            raise ProcfileError(f"{NAME} names the process type {name!r} twice (lines with `{name}:`)")
        types[name] = command
    return types


def read(folder: Path) -> dict[str, str]:
    """The process types of folder/Procfile."""
    path = Path(folder) / NAME
    if not path.is_file():
        raise ProcfileError(f"there is no {NAME} in the app's folder")
    if path.stat().st_size > 64 * 1024:
        raise ProcfileError(f"{NAME} is over 64 KiB: not a Procfile")
    try:
        return parse(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ProcfileError(f"{NAME} is not UTF-8 text") from None


def command(folder: Path, process_type: str) -> str:
    """The command line of one process type of folder's Procfile."""
    types = read(folder)
    if process_type not in types:
        named = ", ".join(types) or "none"
        raise ProcfileError(f"{NAME} has no `{process_type}:` line (its process types: {named})")
    return types[process_type]
