"""Factor VI: the static check finds state kept in the process, and the black-box checks catch each way of
keeping it there."""

import shutil
import textwrap
from pathlib import Path

import pytest

from factorlab.checks.processes import _which, process_state
from factorlab.services import stop_shared

from conftest import ROOT
from helpers import verdict

SOLUTION = ROOT / "solutions" / "06_processes"


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


def test_a_missing_app_module_fails(tmp_path):
    status, message = verdict("processes.no_process_state", tmp_path)
    assert status == "failed" and "no shortly.py" in message


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


# ---------------------------------------------------------------------------
# The black-box checks, on broken variants of the solution
# ---------------------------------------------------------------------------
@pytest.fixture
def variant(tmp_path, no_leftovers):
    def make(*replacements: tuple[str, str]) -> Path:
        folder = tmp_path / "app"
        shutil.copytree(SOLUTION, folder, ignore=shutil.ignore_patterns("__pycache__"))
        text = (folder / "shortly.py").read_text()
        for old, new in replacements:
            assert old in text, old
            text = text.replace(old, new)
        (folder / "shortly.py").write_text(text)
        return folder

    yield make
    stop_shared()  # run_exercise does this after its checks; a lone run_check leaves it to its caller


BATCHED_CLICKS = (
    '''    db = get_db()
    db.execute(text("UPDATE links SET clicks = clicks + 1 WHERE code = :code"), {"code": code})
    db.commit()''',
    '''    PENDING[code] = PENDING.get(code, 0) + 1
    if sum(PENDING.values()) >= 10:
        db = get_db()
        for pending, n in PENDING.items():
            db.execute(text("UPDATE links SET clicks = clicks + :n WHERE code = :code"), {"n": n, "code": pending})
        db.commit()
        PENDING.clear()


PENDING = {}''')


def test_clicks_held_back_in_a_process_are_caught(variant):
    folder = variant(BATCHED_CLICKS)
    status, message = verdict("processes.shared_state", folder)
    assert status == "failed" and "A reported 0 clicks, B reported 0" in message, message
    status, message = verdict("processes.survives_kill", folder)
    assert status == "failed" and "reported 0 clicks" in message, message
    assert verdict("processes.no_process_state", folder)[0] == "failed"


def test_recent_links_in_one_process_are_caught(variant):
    # With REDIS_URL, the recent links go to a dict of the process instead (keyed by the sid of the cookie).
    read = "        with cache.pipeline() as pipe:  # read the list"
    write = "        with cache.pipeline() as pipe:  # one transaction"
    folder = variant((read, "        return list(LOCAL.get(sid, []))\n" + read),
                     (write, "        LOCAL[sid] = [code, *LOCAL.get(sid, [])]\n        return\n" + write),
                     ('RECENT_KEY = "shortly:recent:"', 'LOCAL = {}\nRECENT_KEY = "shortly:recent:"'))
    status, message = verdict("processes.shared_state", folder)
    assert status == "failed" and "/api/recent on A listed only the 2 made on A" in message, message
    status, message = verdict("processes.survives_kill", folder)
    assert status == "failed" and "listed none of them" in message, message


def test_a_session_that_outlives_its_lifetime_is_caught(variant):
    # The Redis list still expires, but without REDIS_URL the cookie keeps Flask's default lifetime (31 days).
    folder = variant(("app.permanent_session_lifetime = timedelta(seconds=SESSION_LIFETIME)\n", ""))
    status, message = verdict("processes.session_expiry", folder)
    assert status == "failed" and "without REDIS_URL" in message and "still listed the link" in message, message


def test_a_lifetime_flask_enforces_is_enough(variant):
    # Flask checks a session cookie's age against permanent_session_lifetime even when the session is not
    # permanent: then only the browser keeps the cookie longer, and the app refuses it all the same.
    folder = variant(("    session.permanent = True", "    session.permanent = False"))
    assert verdict("processes.session_expiry", folder)[0] == "passed"


def test_an_expired_cookie_the_app_still_accepts_is_caught(variant):
    # The browser drops the cookie when it expires, but the app reads it without checking its age.
    lenient = '''

from flask.sessions import SecureCookieSessionInterface


class LenientSessions(SecureCookieSessionInterface):
    def open_session(self, app, request):
        value = request.cookies.get(self.get_cookie_name(app))
        try:
            return self.session_class(self.get_signing_serializer(app).loads(value)) if value else self.session_class()
        except Exception:
            return self.session_class()


app.session_interface = LenientSessions()
'''
    folder = variant(('if __name__ == "__main__":', lenient + '\nif __name__ == "__main__":'))
    status, message = verdict("processes.session_expiry", folder)
    assert status == "failed" and "without REDIS_URL" in message and "the app itself refuses" in message, message
