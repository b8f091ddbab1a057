"""Run one check on a small folder written by a test."""

from pathlib import Path

from factorlab import checks
from factorlab.runners.local import LocalSession


def write_app(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def verdict(check_id: str, folder: Path):
    result = checks.run_check(checks.get(check_id), folder, LocalSession("shortly:app"))
    return result.status, result.message


def listening_addresses(port: int) -> set[str]:
    """The addresses on which a TCP socket of this network namespace listens on port."""
    from factorlab.process import listening_addresses as read

    return read(port) or set()
