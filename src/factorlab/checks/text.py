"""Words for what a check saw: the end of an output, how a command ended, paths a reader can follow."""

from __future__ import annotations


def ended(code: int | None) -> str:
    """How a command ended, in words."""
    return "did not finish in time" if code is None else f"exited with code {code}"


def tail(output: str, lines: int = 5) -> str:
    """The last lines of an output, indented after a colon, for a "Seen:" line ("" when it printed nothing)."""
    last = [line[:200] for line in output.strip().splitlines()[-lines:]]
    return (":\n  " + "\n  ".join(last)) if last else ""


def last_line(output: str) -> str:
    """The last non-blank line of an output, stripped."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def listing(items: list[str], limit: int = 4) -> str:
    """Items joined with "; ", the rest counted: "a; b; c; d; and 3 more"."""
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")
