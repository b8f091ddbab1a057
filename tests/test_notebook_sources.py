"""Every notebook is built from a text source (notebooks/source/NAME.py, jupytext's percent format): the cells of
each committed .ipynb are its source's, and nothing else."""

from __future__ import annotations

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
