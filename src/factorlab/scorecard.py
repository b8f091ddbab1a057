"""The scorecard: every ready factor's checks run on one folder in one go, the verdict told factor by factor.

`factorlab check all` prints it, and the capstone notebook shows it as a table. A factor passes when each of
its checks passed; otherwise the scorecard names the checks that did not.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from . import catalogue as cat
from .checks import run_exercise
from .results import CELL, FAILED, NO_MATH, PASSED, CheckResult, Report, badge

ROMAN = ["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]


@dataclass
class FactorScore:
    """One factor's line of the scorecard: its exercise and the results of its checks."""

    exercise: cat.Exercise
    results: list[CheckResult]

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    @property
    def failing(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok]

    def verdict(self) -> str:
        if self.passed:
            return "passes"
        return f"{len(self.failing)} of {len(self.results)} checks fail"


def last_ready(catalogue: cat.Catalogue) -> cat.Exercise:
    """The last exercise with checks: `all` stands for it, with every earlier factor's checks."""
    ready = [ex for ex in catalogue.exercises if ex.ready]
    if not ready:
        raise cat.CatalogueError("no exercise has checks yet")
    return ready[-1]


def every_check(catalogue: cat.Catalogue) -> list[str]:
    return catalogue.checks_through(last_ready(catalogue))


def by_factor(report: Report, catalogue: cat.Catalogue) -> list[FactorScore]:
    """A report's results grouped under the factor each check belongs to, in factor order (a factor none of
    whose checks ran is left out)."""
    owner = {check_id: ex for ex in catalogue.exercises for check_id in ex.checks}
    scores: dict[str, FactorScore] = {}
    for result in report.results:
        exercise = owner[result.check]
        scores.setdefault(exercise.id, FactorScore(exercise, [])).results.append(result)
    return sorted(scores.values(), key=lambda s: s.exercise.factor)


def score(folder: Path, catalogue: cat.Catalogue, *, runner: str = "local") -> tuple[Report, list[FactorScore]]:
    """Run every ready check on folder (side by side, as one cumulative check does) and group the verdicts."""
    report = run_exercise(last_ready(catalogue), Path(folder), catalogue, runner=runner,
                          check_ids=every_check(catalogue))
    return report, by_factor(report, catalogue)


def to_text(scores: list[FactorScore]) -> str:
    """One line per factor, then the failing checks by name under it; the last line counts the factors."""
    lines = []
    for s in scores:
        mark = "✅" if s.passed else "❌"
        lines.append(f"{mark} {ROMAN[s.exercise.factor]:>4}  {s.exercise.title:<22} {s.verdict()}")
        lines.extend(f"         {r.status}: {r.title} [{r.check}]" for r in s.failing)
    passed = sum(s.passed for s in scores)
    lines.append(f"scorecard: {passed} of {len(scores)} factors pass")
    return "\n".join(lines)


def to_html(scores: list[FactorScore], caption: str = "") -> str:
    """The scorecard as a table: the factor, a badge, and the title of every check that did not pass."""
    rows = []
    for s in scores:
        verdict = badge(s.verdict(), PASSED if s.passed else FAILED)
        failing = "<br>".join(f"{html.escape(r.title)} <code>{html.escape(r.check)}</code>" for r in s.failing)
        cells = [ROMAN[s.exercise.factor],
                 f"<a href='{html.escape(s.exercise.url)}'>{html.escape(s.exercise.title)}</a>", verdict, failing]
        rows.append("<tr>" + "".join(f"<td {CELL}>{text}</td>" for text in cells) + "</tr>")
    head = "".join(f"<th {CELL}>{name}</th>" for name in ("#", "factor", "checks", "what does not pass yet"))
    passed = sum(s.passed for s in scores)
    title = f"{caption}: " if caption else ""
    return (f"<table class='{NO_MATH}'><caption style='text-align:left'><b>{html.escape(title)}{passed} of "
            f"{len(scores)} factors pass</b></caption><thead><tr>{head}</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")
