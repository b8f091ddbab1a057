"""Helpers that read the learner's source files (never import or run them)."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

SKIPPED_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", ".pytest_cache", ".ipynb_checkpoints"}
MAX_FILE = 1024 * 1024
# CPython 3.11's ast.parse is not safe to call from several threads at once (checks run side by side):
# it can fail with "SystemError: AST constructor recursion depth mismatch".
_PARSING = threading.Lock()


def walk(root: Path, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Files under root, sorted, skipping tool folders and large files."""
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if any(part in SKIPPED_DIRS for part in rel) or not path.is_file() or path.is_symlink():
            continue
        if suffixes and path.suffix not in suffixes:
            continue
        if path.stat().st_size <= MAX_FILE:
            found.append(path)
    return found


def python_files(root: Path) -> list[Path]:
    return walk(root, (".py",))


def app_module_file(ctx) -> str:
    """The file name of the app module named in the catalogue (shortly:app → shortly.py)."""
    return ctx.catalogue.app_file if ctx.catalogue else "shortly.py"


def parse(path: Path) -> ast.Module | None:
    """Parse a Python file; None when it has a syntax error (a run-time check reports that)."""
    text = path.read_text(errors="replace")
    try:
        with _PARSING:
            return ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError):
        return None


def text_files(root: Path) -> list[Path]:
    """Files under root that decode as text."""
    out = []
    for path in walk(root):
        try:
            path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        out.append(path)
    return out
