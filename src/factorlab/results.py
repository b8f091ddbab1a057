"""Check results: one per check, gathered in a report that prints, renders and serialises."""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field

SCHEMA_VERSION = 1
PASSED, FAILED, ERROR = "passed", "failed", "error"
_MARK = {PASSED: "✅", FAILED: "❌", ERROR: "⚠️"}
_COLOUR = {PASSED: "#2e7d32", FAILED: "#c62828", ERROR: "#ef6c00"}
PLANNED = "planned"  # a factor whose checks are not written yet (the scorecard's grey badge)
# JupyterLab typesets $…$ in HTML outputs as LaTeX: a message that names $PORT twice would turn into math. These
# classes (MathJax 3's, and MathJax 2's for older front ends) leave a table's text as it is.
NO_MATH = "mathjax_ignore tex2jax_ignore"
CELL = "style='text-align:left;vertical-align:top;padding:4px 8px'"  # every table cell, so tables align alike


def badge(text: str, status: str) -> str:
    """A coloured label for a status, drawn with CSS (no emoji font needed)."""
    return (f"<span style='color:white;background:{_COLOUR.get(status, '#757575')};border-radius:4px;"
            f"padding:1px 6px;white-space:nowrap'>{html.escape(text)}</span>")


@dataclass
class CheckResult:
    """The verdict of one check."""

    check: str
    title: str
    factor: int
    status: str
    message: str
    hint: str = ""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == PASSED


@dataclass
class Report:
    """The results of checking one folder against one exercise."""

    exercise: str
    path: str
    runner: str
    results: list[CheckResult] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # containers and images a `--keep` docker run left in place

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when every check passed, 1 otherwise (errors included: the app did not pass)."""
        return 0 if self.passed else 1

    def summary(self) -> str:
        counts = {s: sum(r.status == s for r in self.results) for s in (PASSED, FAILED, ERROR)}
        words = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        return f"{self.exercise}: {words or 'no checks'}"

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "exercise": self.exercise,
            "path": self.path,
            "runner": self.runner,
            "passed": self.passed,
            "results": [asdict(r) for r in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_text(self, color: bool = False) -> str:
        lines = []
        for r in self.results:
            mark = _MARK[r.status]
            lines.append(f"{mark} {r.title} [{r.check}]")
            lines.extend("   " + line for line in r.message.splitlines())
            if not r.ok and r.hint:
                lines.append(f"   hint: {r.hint}")
        lines.append(self.summary())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        cell = CELL
        rows = "".join(
            "<tr>"
            f"<td {cell}>{badge(r.status, r.status)}</td>"
            f"<td {cell}><b>{html.escape(r.title)}</b><br><code>{html.escape(r.check)}</code></td>"
            f"<td {cell}><span style='white-space:pre-wrap'>{html.escape(r.message)}</span></td>"
            f"<td {cell}>{html.escape(r.hint) if not r.ok else ''}</td>"
            "</tr>"
            for r in self.results
        )
        head = "".join(f"<th {cell}>{name}</th>" for name in ("result", "check", "what was seen", "hint"))
        return (
            f"<table class='{NO_MATH}'><caption style='text-align:left'><b>{html.escape(self.summary())}</b></caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        )
