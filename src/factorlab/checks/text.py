"""Words for what a check saw: the end of an output, how a command ended, paths a reader can follow."""

from __future__ import annotations

import re

# What varies from run to run in a process's output, named, so that a message quoting it is the same every time.
VARYING = [(re.compile(r"\d{4}-\d{2}-\d{2}[T ]?"), "<date>"),
           (re.compile(r"\d{2}:\d{2}:\d{2}([.,]\d+)?(Z|[+-]\d{2}:?\d{2})?"), "<time>"),
           (re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b"), "<id>"),
           (re.compile(r"\b[0-9a-f]{32}\b"), "<id>"), (re.compile(r"\b\d{9,}(\.\d+)?\b"), "<time>"),
           (re.compile(r"(?i)\bpid:?\s*\d+\b"), "pid: <pid>"), (re.compile(r"\[\d{2,}\]"), "[<pid>]")]


def ended(code: int | None) -> str:
    """How a command ended, in words."""
    return "did not finish in time" if code is None else f"exited with code {code}"


def steady(text: str) -> str:
    """text with what varies from run to run (dates, times, ids, pids) named: <date>, <time>, <id>, <pid>."""
    for pattern, name in VARYING:
        text = pattern.sub(name, text)
    return text


def tail(output: str, lines: int = 5) -> str:
    """The last lines of an output, indented after a colon, for a "Seen:" line ("" when it printed nothing); what
    varies from run to run named (steady)."""
    last = [steady(line)[:200] for line in output.strip().splitlines()[-lines:]]
    return (":\n  " + "\n  ".join(last)) if last else ""


def last_line(output: str) -> str:
    """The last non-blank line of an output, stripped."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def listing(items: list[str], limit: int = 4) -> str:
    """Items joined with "; ", the rest counted: "a; b; c; d; and 3 more"."""
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")
