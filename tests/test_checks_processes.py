"""Factor VI: the static check finds state kept in the process, and the black-box checks catch each way of
keeping it there."""

import textwrap
from pathlib import Path

import pytest

from factorlab.checks.processes import _which, process_state

from conftest import ROOT
from helpers import verdict


def scan(tmp_path: Path, code: str) -> set[str]:
    path = tmp_path / "shortly.py"
    path.write_text(textwrap.dedent(code))
    return set(process_state(path))


# ---------------------------------------------------------------------------
# processes.no_process_state, on small samples and on the real states
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("code", [
    "SESSIONS = {}\ndef remember(sid, code):\n    SESSIONS[sid] = code\n",
    "RECENT = []\ndef remember(code):\n    RECENT.insert(0, code)\n    del RECENT[10:]\n",
    "CLICKS = dict()\ndef count(code):\n    CLICKS[code] = CLICKS.get(code, 0) + 1\n",
    "from collections import defaultdict\nCLICKS = defaultdict(int)\ndef count(code):\n    CLICKS[code] += 1\n",
    "PENDING: dict[str, int] = {}\ndef flush():\n    PENDING.clear()\n",
    "SEEN = set()\nclass Handler:\n    def see(self, visitor):\n        SEEN.add(visitor)\n",
    "USERS = {}\ndef user(sid):\n    return USERS.setdefault(sid, {'recent': []})\n",
    "CACHE = {}\ndef drop(url):\n    del CACHE[url]\n",
])
def test_state_kept_in_the_process_is_found(tmp_path, code):
    assert scan(tmp_path, code)


@pytest.mark.parametrize("code", [
    "ALLOWED = ['http', 'https']\ndef ok(scheme):\n    return scheme in ALLOWED\n",  # only read
    "ROUTES = []\nROUTES.append('/')\n",  # filled once, at import, by the module itself
    "SESSIONS = {}\ndef f():\n    SESSIONS = {}\n    SESSIONS['a'] = 1\n",  # a local of the same name
    "RECENT = []\ndef f(RECENT):\n    RECENT.append(1)\n",  # a parameter of the same name
    "from flask import session\ndef remember(code):\n    session['recent'] = [code]\n",  # the signed cookie
    "import flask\napp = flask.Flask(__name__)\ndef configure():\n    app.config['X'] = 1\n",
    "def broken(:\n",  # a syntax error is for the checks that run the app to report
])
def test_state_outside_the_process_is_not_flagged(tmp_path, code):
    assert scan(tmp_path, code) == set()


@pytest.mark.parametrize("state, expected", [
    ("legacy", {"SESSIONS", "PENDING_CLICKS", "PREVIEW_CACHE"}),
    ("solutions/05_build_release_run", {"SESSIONS", "PENDING_CLICKS"}),
    ("exercises/06_processes", {"SESSIONS"}),
    ("solutions/06_processes", set()),
])
def test_the_course_states(state, expected):
    assert set(process_state(ROOT / state / "shortly.py")) == expected


@pytest.mark.parametrize("code", [
    "RECENT = []\ndef remember(code):\n    global RECENT\n    RECENT = [code] + RECENT\n",
    "COUNT = 0\ndef click():\n    global COUNT\n    COUNT += 1\n",
    "class Store:\n    seen = {}\ndef see(sid):\n    Store.seen[sid] = 1\n",
])
def test_state_kept_other_ways_is_found(tmp_path, code):
    assert scan(tmp_path, code)


def test_a_lazily_made_resource_is_not_state(tmp_path):
    assert scan(tmp_path, "ENGINE = None\ndef engine():\n    global ENGINE\n    ENGINE = ENGINE or make()\n"
                          "    return ENGINE\n") == set()
    assert scan(tmp_path, "ENGINE = None\ndef engine():\n    global ENGINE\n    if ENGINE is None:\n"
                          "        ENGINE = make()\n    return ENGINE\n") == set()


def test_every_file_of_the_app_is_read(tmp_path):
    (tmp_path / "shortly.py").write_text("x = 1\n")
    (tmp_path / "visitors.py").write_text("SEEN = set()\ndef see(v):\n    SEEN.add(v)\n")
    status, message = verdict("processes.no_process_state", tmp_path)
    assert status == "failed" and "SEEN (visitors.py:1)" in message


# ---------------------------------------------------------------------------
# Messages name what a recent list holds, never the random codes themselves
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("recent, said", [
    (["d", "c", "b", "a"], "all 4, newest first"),
    (["a", "b", "c", "d"], "all 4, but not newest first"),
    (["c", "a"], "only the 2 made on A"),
    (["d", "b"], "only the 2 made on B"),
    (["d"], "1 of the 4"),
    ([], "none of them"),
    (["x"], "none of them, only other codes"),
])
def test_which_links_a_list_holds(recent, said):
    assert _which(recent, ["a", "b", "c", "d"], ["A", "B", "A", "B"]) == said
