"""Every notebook is built from a text source (notebooks/source/NAME.py, jupytext's percent format): the cells of
each committed .ipynb are its source's, and nothing else."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import nbformat
import pytest

from factorlab.dev import notebooks

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
COMMITTED = sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_a_committed_notebook_is_its_source_built(path):
    assert notebooks.differs(path) == ""
    kept = nbformat.read(path, as_version=4)
    assert [cell.id for cell in kept.cells] == [f"cell-{i:02d}" for i in range(len(kept.cells))]
    assert set(kept.metadata) <= {"kernelspec", "language_info", "widgets"}
    assert all(not cell.metadata for cell in kept.cells)


def test_every_source_has_its_notebook():
    sources = {p.stem for p in (NOTEBOOKS / "source").glob("*.py")}
    assert sources == {p.stem for p in COMMITTED}


def test_a_change_to_either_side_is_reported(tmp_path):
    (tmp_path / "source").mkdir()
    shutil.copy(NOTEBOOKS / "source" / "00_welcome.py", tmp_path / "source" / "00_welcome.py")
    shutil.copy(NOTEBOOKS / "00_welcome.ipynb", tmp_path / "00_welcome.ipynb")
    path = tmp_path / "00_welcome.ipynb"
    assert notebooks.differs(path) == ""
    source = tmp_path / "source" / "00_welcome.py"
    source.write_text(source.read_text() + "\n# %%\nprint('a cell only the source has')\n")
    assert "differs from 00_welcome.py from cell 36 on" in notebooks.differs(path)
    shutil.copy(NOTEBOOKS / "source" / "00_welcome.py", source)
    kept = nbformat.read(path, as_version=4)
    kept.cells[3].source += "\nedited in the notebook"
    nbformat.write(kept, path)
    assert "from cell 3 on" in notebooks.differs(path)
    source.unlink()
    assert "has no source" in notebooks.differs(path)


def _code_around(name: str) -> tuple[list[str], list[str]]:
    """A notebook's code cells up to where its walkthrough ends, and after: the end is its comparison with the
    exercise's starter, or else its "Your turn" heading."""
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    ends = [i for i, cell in enumerate(notebook.cells) if "nb.compare_with_starter(" in cell.source
            and cell.cell_type == "code"] or \
        [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "markdown" and "## Your turn" in cell.source]
    code = [(i, cell.source) for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    return [c for i, c in code if i <= ends[0]], [c for i, c in code if i > ends[0]]


FACTORS = [p.stem for p in COMMITTED if p.stem != "00_welcome"]
# Notebook 01's exercise is the legacy app with TODO notes for the whole job (its walkthrough works in a copy):
# every later walkthrough ends where its exercise begins.
CHAINED = [name for name in FACTORS if name != "01_codebase"]


@pytest.mark.parametrize("name", CHAINED)
def test_the_walkthrough_ends_where_the_exercise_begins(name):
    """nbval replays this cell and compares its stored output: the walkthrough's workspace is the shipped starter."""
    before, _ = _code_around(name)
    cell = f'nb.compare_with_starter(ws, "{name[:2]}")'
    assert cell in before, f"{name} never compares its workspace with exercises/{name}"
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    said = [output.get("text", "") for c in notebook.cells if c.cell_type == "code" and c.source == cell
            for output in c.outputs]
    assert said and said[0].startswith("the workspace now matches"), said


@pytest.mark.parametrize("name", FACTORS)
def test_nothing_after_your_turn_does_the_exercise(name):
    """Once its walkthrough has ended, a notebook quizzes, lists the TODOs, checks and cleans up: it never edits
    or runs files for the learner (a solution is shown only by `factorlab solution` once the check passes)."""
    _, after = _code_around(name)
    editing = [call.func.attr for source in after for call in ast.walk(ast.parse(source))
               if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
               and call.func.attr in {"replace", "write", "delete", "sh", "write_text", "unlink", "copy", "rmtree"}]
    assert not editing, f"{name} calls {editing} after its walkthrough ended"
