"""What `factorlab grade` writes: grades.csv, grades.json and report.html (docs/grading.md describes them)."""

from __future__ import annotations

import csv
import html
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from . import __version__
from . import catalogue as cat
from .grading import MISSING, REJECTED, Grading, Submission
from .results import CELL, ERROR, FAILED, NO_MATH, PASSED, CheckResult, badge
from .scorecard import ROMAN

SCHEMA = "factorlab-grades"
SCHEMA_VERSION = 1
CSV_COLUMNS = ("id", "exercise", "factor", "check", "status", "seconds", "message", "source")


@dataclass
class Cell:
    """One submission's verdict on one exercise: its cumulative check, in a word and in full."""

    status: str
    label: str
    results: list[CheckResult]


def cell(sub: Submission, exercise: cat.Exercise) -> Cell:
    if exercise.id in sub.missing or exercise.id not in sub.reports:
        return Cell(MISSING, "not submitted", [])
    results = sub.reports[exercise.id].results
    own = [r for r in results if r.factor == exercise.factor]
    earlier = [r for r in results if r.factor != exercise.factor and r.status == FAILED]
    failed = sum(r.status == FAILED for r in own)
    errors = sum(r.status == ERROR for r in results)
    # the factor's own checks first; an earlier factor this folder broke again is counted apart
    broken_again = f" + {len(earlier)} earlier" if earlier else ""
    if failed or earlier:
        return Cell(FAILED, f"{failed} of {len(own)} fail{broken_again}", results)
    if errors:
        return Cell(ERROR, f"{errors} could not run", results)
    return Cell(PASSED, "passes", results)


def score(sub: Submission, grading: Grading) -> int:
    return sum(cell(sub, ex).status == PASSED for ex in grading.exercises)


FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run a cell that starts so as a formula


def _inert(value: object) -> object:
    """A CSV value a spreadsheet shows as text: what the students' apps printed can reach a message."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA) else value


def rows(grading: Grading) -> list[dict]:
    """grades.csv: one row per submission, exercise and check; a rejected submission or a missing exercise is
    one row saying so."""
    found = []
    for sub in grading.submissions:
        if sub.status == REJECTED:
            found.append({"id": sub.id, "exercise": "", "factor": "", "check": "", "status": REJECTED, "seconds": "",
                          "message": sub.reason, "source": sub.source})
            continue
        for exercise in grading.exercises:
            verdict = cell(sub, exercise)
            if verdict.status == MISSING:
                found.append({"id": sub.id, "exercise": exercise.id, "factor": exercise.factor, "check": "",
                              "status": MISSING, "seconds": "", "source": sub.source,
                              "message": f"exercises/{exercise.id} is not in the submission"})
            for r in verdict.results:
                found.append({"id": sub.id, "exercise": exercise.id, "factor": r.factor, "check": r.check,
                              "status": r.status, "seconds": f"{r.duration_s:.2f}", "message": r.message,
                              "source": sub.source})
    return found


def to_dict(grading: Grading, commit: str | None = None) -> dict:
    subs = []
    for sub in grading.submissions:
        manifest = sub.manifest or {}
        entry = {
            "id": sub.id, "source": sub.source, "status": sub.status, "reason": sub.reason or None,
            "notes": list(sub.notes), "seconds": round(sub.seconds, 2),
            "manifest": {key: manifest[key] for key in ("student", "course", "exercises", "verdicts") if key in manifest}
            if sub.manifest else None,
            "score": score(sub, grading) if sub.status != REJECTED else 0,
            "exercises": {},
        }
        if sub.status != REJECTED:
            for exercise in grading.exercises:
                verdict = cell(sub, exercise)
                entry["exercises"][exercise.id] = {
                    "status": verdict.status, "summary": verdict.label,
                    "results": [asdict(r) for r in verdict.results]}
        subs.append(entry)
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "course": {"version": __version__, "commit": commit},
        "runner": grading.runner,
        "cumulative": grading.cumulative,
        "exercises": [{"id": ex.id, "factor": ex.factor, "title": ex.title, "url": ex.url}
                      for ex in grading.exercises],
        "seconds": round(grading.seconds, 1),
        "submissions": subs,
    }


def write(grading: Grading, out: Path, commit: str | None = None) -> dict[str, Path]:
    """Write the three files into out; return their paths by kind."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "grades.csv", "json": out / "grades.json", "html": out / "report.html"}
    with open(paths["csv"], "w", newline="", encoding="utf-8", errors="backslashreplace") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows({key: _inert(value) for key, value in row.items()} for row in rows(grading))
    data = to_dict(grading, commit)
    paths["json"].write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8",
                             errors="backslashreplace")
    paths["html"].write_text(to_html(grading, data), encoding="utf-8", errors="backslashreplace")
    return paths


MODE = {True: "Each cell is an exercise folder checked as <code>factorlab check ID --cumulative</code> does: the "
               "factor's checks, and every earlier factor's (counted apart: <i>+ N earlier</i>).",
        False: "Each cell is an exercise folder checked with its own factor's checks only (<code>--own</code>)."}
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#212121}
table{border-collapse:collapse}
th,td{border-bottom:1px solid #e0e0e0}
th{position:sticky;top:0;background:#fafafa}
details>summary{cursor:pointer;list-style:none}
details>summary::-webkit-details-marker{display:none}
details[open]>summary{margin-bottom:4px}
.messages{max-width:48em;font-size:90%}
.messages td{border:none;padding:2px 4px;vertical-align:top}
.message{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:90%}
.notes{color:#616161;font-size:85%}
"""


def _messages(results: list[CheckResult]) -> str:
    rows = "".join(f"<tr><td>{badge(r.status, r.status)}</td><td><b>{html.escape(r.title)}</b> "
                   f"<code>{html.escape(r.check)}</code><div class='message'>{html.escape(r.message)}</div></td></tr>"
                   for r in results)
    return f"<table class='messages'>{rows}</table>"


def to_html(grading: Grading, data: dict) -> str:
    """A matrix of submissions × factors; each cell's badge opens to its check messages (a <details>)."""
    exercises = grading.exercises
    head = "".join(f"<th {CELL} title='{html.escape(ex.title)}'><a href='{html.escape(ex.url)}'>"
                   f"{ROMAN[ex.factor]}</a><br><small>{html.escape(ex.title)}</small></th>" for ex in exercises)
    body = []
    for sub in grading.submissions:
        notes = "".join(f"<div class='notes'>{html.escape(n)}</div>" for n in sub.notes)
        who = f"<td {CELL}><b>{html.escape(sub.id)}</b><div class='notes'>{html.escape(sub.source)}</div>{notes}</td>"
        if sub.status == REJECTED:
            body.append(f"<tr data-student='{html.escape(sub.id)}' data-status='rejected'>{who}"
                        f"<td {CELL}>{badge('rejected', ERROR)}</td><td {CELL} colspan='{len(exercises)}' "
                        f"class='reason'>{html.escape(sub.reason)}</td></tr>")
            continue
        cells = []
        for ex in exercises:
            verdict = cell(sub, ex)
            inner = (f"<details><summary>{badge(verdict.label, verdict.status)}</summary>{_messages(verdict.results)}"
                     f"</details>" if verdict.results else badge(verdict.label, verdict.status))
            cells.append(f"<td {CELL} data-factor='{ex.id}' data-status='{verdict.status}'>{inner}</td>")
        total = score(sub, grading)
        mark = PASSED if total == len(exercises) else FAILED if total == 0 else "partial"
        body.append(f"<tr data-student='{html.escape(sub.id)}' data-status='graded'>{who}<td {CELL}>"
                    f"{badge(f'{total} of {len(exercises)}', mark)}</td>{''.join(cells)}</tr>")
    graded, rejected = len(grading.graded), len(grading.rejected)
    course = data["course"]
    caption = (f"{graded} submission(s) graded, {rejected} rejected · runner: {html.escape(grading.runner)} · "
               f"factorlab {html.escape(course['version'])}"
               + (f" at {html.escape(str(course['commit'])[:12])}" if course.get("commit") else "")
               + f" · {grading.seconds:.0f} s")
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>factorlab grades</title>"
            f"<style>{STYLE}</style></head><body><h1>factorlab grades</h1><p>{caption}</p>"
            f"<p class='notes'>{MODE[grading.cumulative]} Click a badge for the checks' messages.</p>"
            f"<table class='{NO_MATH}' id='grades'><thead><tr><th {CELL}>submission</th><th {CELL}>factors</th>{head}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table></body></html>\n")
