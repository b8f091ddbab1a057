"""Shortly's tests. They need nothing installed: each run gets an SQLite database of its own, in memory.

    python -m pytest
"""
import os
import secrets
import sys
import tempfile
from pathlib import Path

import pytest

# TODO: production runs on PostgreSQL, and these tests on SQLite, which accepts queries PostgreSQL refuses. Run
#   them on the database at DATABASE_URL (refuse to start without it), as the app does.
os.environ["DATABASE_URL"] = "sqlite://"  # an SQLite database in memory: quick, nothing to set up, nothing left
os.environ.setdefault("SHORTLY_SECRET_KEY", secrets.token_hex(16))  # a throwaway key, made for this run
os.environ.pop("REDIS_URL", None)  # no queue: a link's preview is fetched in the request, by the stub below
os.environ["SHORTLY_LOG_FILE"] = os.path.join(tempfile.mkdtemp(prefix="shortly-tests-"), "shortly.log")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import shortly  # noqa: E402  (after the environment above: the app reads it as it is imported)


@pytest.fixture(autouse=True)
def empty_database():
    """Every test starts with the links table there and empty."""
    shortly.migrate()
    with shortly.engine.begin() as conn:
        conn.execute(shortly.text("DELETE FROM links"))


@pytest.fixture
def client(monkeypatch):
    """A test client of the app; a page's title is made up, never fetched from the internet."""
    monkeypatch.setattr(shortly, "fetch_title", lambda url: f"Title of {url}")
    return shortly.app.test_client()
