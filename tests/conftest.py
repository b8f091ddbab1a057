"""Shared fixtures: the real course, a tiny fake course, and a leak guard for processes and ports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from factorlab import catalogue, files
from factorlab.process import marked

ROOT = Path(__file__).resolve().parents[1]
FAKE = Path(__file__).with_name("fakecourse")
JUDGED = pytest.StashKey[list]()  # the mutation suite's outcomes, for the kill-rate report


def pytest_terminal_summary(terminalreporter, config):
    outcomes = config.stash.get(JUDGED, [])
    if outcomes:
        from factorlab.dev.mutants import kill_rates

        terminalreporter.write_sep("-", "mutation suite: kill rate per check")
        terminalreporter.write_line(kill_rates(outcomes, catalogue.load(ROOT)))


@pytest.fixture(scope="session")
def course() -> catalogue.Catalogue:
    return catalogue.load(ROOT)


@pytest.fixture
def fake_course(tmp_path, monkeypatch) -> catalogue.Catalogue:
    """A copy of tests/fakecourse in tmp_path, made the course factorlab sees."""
    root = tmp_path / "fakecourse"
    shutil.copytree(FAKE, root)
    monkeypatch.setenv("FACTORLAB_COURSE", str(root))
    return catalogue.load(root)


def outside_git(tmp_path: Path, source: Path, name: str = "app") -> Path:
    """Copy an app folder somewhere no git repository reaches (tmp_path is outside the course)."""
    dest = tmp_path / name
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run the factorlab CLI as a learner would, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "factorlab", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, input=input)


def our_children() -> list[int]:
    """Processes started by factorlab during this test run (the root conftest marks them)."""
    return marked(os.environ["FACTORLAB_RUN_PREFIX"])


def our_temp_folders() -> set[str]:
    """The folders this test run's factorlab made in the temp folders and in the scratch folder: their names carry
    the run's FACTORLAB_RUN_PREFIX (process.run_tagged), so a notebook or another test run on the same machine
    does not count."""
    tag = os.environ["FACTORLAB_RUN_PREFIX"]
    places = [Path(tempfile.gettempdir()), files.scratch_base(),
              *([memory] if (memory := files.memory_folder()) else [])]
    return {str(p) for place in places for p in place.glob(f"factorlab-*{tag}*")}


@pytest.fixture
def no_leftovers():
    """Fail the test if it leaves any factorlab-started process running, or a folder of its own in the temp
    folder (one per check run piles up)."""
    before, folders = set(our_children()), our_temp_folders()
    yield
    left = set(our_children()) - before
    assert not left, f"processes left running: {sorted(left)}"
    stayed = our_temp_folders() - folders
    assert not stayed, f"left behind: {sorted(stayed)}"
