"""Shortly's tests run on the database production runs on: the PostgreSQL at DATABASE_URL.

    factorlab services up        # on a laptop: private PostgreSQL and Redis; it prints their URLs
    export DATABASE_URL=postgresql://...
    python -m pytest

Each test starts from an empty links table: point DATABASE_URL at a database of your own, never production's.
"""
import os
import secrets
import sys
from pathlib import Path

import pytest

if not os.environ.get("DATABASE_URL"):
    pytest.exit("the tests need DATABASE_URL: the URL of a PostgreSQL database they may empty "
                "(`factorlab services up` starts one)", returncode=2)

os.environ.setdefault("SHORTLY_SECRET_KEY", secrets.token_hex(16))  # a throwaway key, made for this run
os.environ.pop("REDIS_URL", None)  # no queue: a link's preview is fetched in the request, by the stub below
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
