"""What the catalogue knows is said the same everywhere: the README's status, each notebook's time estimate and
factor heading, and where each notebook sends the learner next (a link when that notebook is ready, "coming
soon" when it is not)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from factorlab import catalogue as cat

ROOT = Path(__file__).resolve().parents[1]
COURSE = cat.load(ROOT)
ROMAN = ["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]
READY = [ex for ex in COURSE.exercises if ex.ready]
COMPLETE = len(READY) == len(COURSE.exercises)
CAPSTONE = "13_capstone"  # once every factor is ready: the whole app, run as a system, every check at once
STEPS = ["00_welcome", *(ex.id for ex in READY), *([CAPSTONE] if COMPLETE else [])]


def heading(ex: cat.Exercise) -> str:
    return f"Factor {ROMAN[ex.factor]} — {ex.title}"


def markdown(name: str) -> list[str]:
    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    return [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]


def next_step(name: str) -> str:
    """The text from a notebook's last "Next" to the end of its cell."""
    found = [cell[match.start():] for cell in markdown(name) for match in [re.search(r"^#* ?Next\b", cell, re.M)]
             if match]
    assert found, f"{name} never says what comes next"
    return found[-1]


def test_ready_factors_come_first_and_have_notebooks():
    assert [ex.factor for ex in READY] == list(range(1, len(READY) + 1))
    assert all((ROOT / "notebooks" / f"{ex.id}.ipynb").is_file() for ex in READY)
    assert sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")) == STEPS


def test_the_readme_status_names_the_ready_factors():
    text = (ROOT / "README.md").read_text()
    status = re.search(r"\*\*Status:\*\*(.*?)\n\n", text, re.S)
    assert status, "README has no **Status:** paragraph"
    said = " ".join(status.group(1).split())
    assert f"factors I–{ROMAN[len(READY)]} " in said
    for ex in READY:
        assert ex.title.lower().split()[0].rstrip(",") in said.lower(), ex.title
    assert ("the course is complete" in said.lower() and "capstone" in said) == COMPLETE, said
    assert ("to come" in said or "coming" in said) != COMPLETE, said


@pytest.mark.parametrize("exercise", READY, ids=lambda ex: ex.id)
def test_a_notebook_opens_with_its_factor_and_its_time(exercise):
    opening = markdown(exercise.id)[0]
    assert heading(exercise) in opening
    minutes = re.search(r"[Aa]bout \**(\d+) minutes", opening)
    assert minutes and int(minutes.group(1)) == exercise.minutes, f"the catalogue says {exercise.minutes} minutes"


@pytest.mark.parametrize("name", STEPS)
def test_a_notebook_ends_with_the_next_one(name):
    if name == CAPSTONE:
        assert "end of the course" in markdown(name)[-1] + markdown(name)[-2]
        return
    index = [ex.id for ex in COURSE.exercises].index(name) + 1 if name != "00_welcome" else 0
    if index >= len(COURSE.exercises):
        said = next_step(name)
        assert f"]({CAPSTONE}.ipynb)" in said and "Capstone" in said and "coming" not in said
        return
    upcoming, said = COURSE.exercises[index], next_step(name)
    assert heading(upcoming) in said
    if upcoming.ready:
        assert f"]({upcoming.id}.ipynb)" in said and "coming" not in said
    else:
        assert f"({upcoming.id}.ipynb)" not in said and "coming soon" in said


def test_the_scorecard_has_a_row_per_factor_with_the_check_tables_badges():
    notebook = nbformat.read(ROOT / "notebooks" / "00_welcome.ipynb", as_version=4)
    shown = [output["data"]["text/html"] for cell in notebook.cells if cell.cell_type == "code"
             and "nb.scorecard()" in cell.source for output in cell.outputs if "text/html" in output.get("data", {})]
    assert len(shown) == 1, "00_welcome shows the scorecard once"
    rows = re.findall(r"<tr>(.*?)</tr>", shown[0], re.S)[1:]
    assert len(rows) == len(COURSE.exercises)
    for ex, row in zip(COURSE.exercises, rows):
        cells = re.findall(r"<td style='text-align:left;vertical-align:top;padding:4px 8px'>(.*?)</td>", row, re.S)
        assert len(cells) == 5, row
        assert cells[0] == str(ex.factor) and f">{ex.title}</a>" in cells[1]
        badge = re.fullmatch(r"<span style='color:white;background:#[0-9a-f]{6};[^']*'>(.*?)</span>", cells[4])
        assert badge, cells[4]
        assert badge.group(1) == (f"{len(ex.checks)} of {len(ex.checks)} checks fail" if ex.ready else "coming soon")
    assert not re.search("[\u2705\u274c\u26a0]", shown[0]), "emoji need a font the learner may not have"
