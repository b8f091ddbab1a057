"""Factor VI: the static check finds state kept in the process, and the black-box checks catch each way of
keeping it there."""

import email.message
import textwrap
import time
import urllib.request
from email.utils import formatdate
from pathlib import Path

import pytest

from factorlab.checks.processes import _KeptCookies, _leftovers, _which, process_state

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


@pytest.mark.parametrize("code, name", [
    # an object made once for the process, filled by its methods
    ("class Fallback:\n    def __init__(self):\n        self.lists = {}\n    def push(self, sid, code):\n"
     "        self.lists[sid] = [code]\nfallback = Fallback()\n", "fallback.lists"),
    ("class Counter:\n    def __init__(self):\n        self.n = 0\n    def click(self):\n        self.n += 1\n"
     "counter = Counter()\n", "counter.n"),
    ("class Visitors:\n    seen = {}\n    @classmethod\n    def saw(cls, sid):\n        cls.seen[sid] = 1\n",
     "Visitors.seen"),
    # what a request changes on the app, or on another object made once
    ("from flask import Flask\napp = Flask(__name__)\n@app.before_request\ndef limit():\n"
     "    seen = app.extensions.setdefault('rate', {})\n    seen['x'] = 1\n", "app.extensions"),
    ("from flask import Flask\napp = Flask(__name__)\ndef count():\n    app.config['VISITS'] += 1\n"
     "@app.get('/')\ndef index():\n    count()\n", "app.config"),
    ("from flask import Blueprint, current_app\nbp = Blueprint('b', __name__)\n@bp.post('/x')\ndef x():\n"
     "    current_app.last_code = 'abc'\n", "current_app.last_code"),
    ("from flask import Flask\napp = Flask(__name__)\nclass Store:\n    pass\nstore = Store()\n"
     "def remember(code):\n    store.recent.append(code)\napp.add_url_rule('/r', view_func=remember)\n", "store.recent"),
    ("from flask import Flask\napp = Flask(__name__)\nclass Registry:\n    def __init__(self):\n"
     "        self.items = []\n    def register(self, f):\n        self.items.append(f)\nparsers = Registry()\n"
     "@app.post('/parsers')\ndef add():\n    parsers.register(len)\n", "parsers.items"),
    # a function handed on as a value runs later, whoever hands it on
    ("import atexit\nSEEN = []\ndef see():\n    SEEN.append(1)\natexit.register(see)\n", "SEEN"),
    ("from flask import Flask\napp = Flask(__name__)\nPARSERS = []\ndef register(f):\n    PARSERS.append(f)\n"
     "    return f\n@app.post('/parsers')\ndef add():\n    register(len)\n", "PARSERS"),
])
def test_state_kept_in_objects_and_on_the_app_is_found(tmp_path, code, name):
    assert name in scan(tmp_path, code)


@pytest.mark.parametrize("code", [
    # filled at import only: a registry filled by a decorator, an engine made once per URL at start-up
    "PARSERS = []\ndef parser(f):\n    PARSERS.append(f)\n    return f\n@parser\ndef html(page):\n    return page\n",
    "ENGINES = {}\ndef engine_for(url):\n    if url not in ENGINES:\n        ENGINES[url] = create_engine(url)\n"
    "    return ENGINES[url]\nengine = engine_for(URL)\n",
    "class Registry:\n    def __init__(self):\n        self.items = []\n    def register(self, f):\n"
    "        self.items.append(f)\n        return f\nparsers = Registry()\n@parsers.register\ndef html(page):\n"
    "    return page\n",
    # a pool of connections filled as requests come is no one's state
    "from flask import Flask\napp = Flask(__name__)\nENGINES = {}\ndef engine_for(url):\n"
    "    return ENGINES.setdefault(url, create_engine(url))\n@app.get('/')\ndef index():\n"
    "    return engine_for(URL).connect()\n",
    # objects made per request; the request's own g and session
    "class Basket:\n    def __init__(self):\n        self.items = []\n    def add(self, x):\n"
    "        self.items.append(x)\ndef handle():\n    basket = Basket()\n    basket.add(1)\n",
    "from flask import Flask, g, session\napp = Flask(__name__)\n@app.get('/')\ndef index():\n"
    "    g.db = engine.connect()\n    session['recent'] = [1]\n    session.permanent = True\n",
])
def test_code_and_connections_are_not_state(tmp_path, code):
    assert scan(tmp_path, code) == set()


class FakeRedis:
    """Just enough of a Redis client for _leftovers: keys of each type, as bytes."""

    def __init__(self, keys: dict):
        self.keys = {k.encode(): v for k, v in keys.items()}

    def scan_iter(self, count=None):
        return iter(self.keys)

    def type(self, key):
        value = self.keys[key]
        return (b"hash" if isinstance(value, dict) else b"list" if isinstance(value, list) else
                b"set" if isinstance(value, set) else b"string")

    def lrange(self, key, start, end):
        return [v.encode() for v in self.keys[key]]

    def smembers(self, key):
        return {v.encode() for v in self.keys[key]}

    def hgetall(self, key):
        return {k.encode(): v.encode() for k, v in self.keys[key].items()}

    def get(self, key):
        return self.keys[key].encode()


@pytest.mark.parametrize("keys, left", [
    ({"shortly:recent:SID": ["abc123"]}, ["shortly:recent:SID"]),
    ({"recent": ["abc123", "zzz999"]}, ["recent"]),
    ({"shortly:recent": {"SID": '["abc123"]'}}, ["shortly:recent"]),  # one hash, a field per session
    ({"visits": {"7": '{"sid": "SID"}'}}, ["visits"]),
    ({"last": "abc123,zzz999"}, ["last"]),
    ({"shortly:preview:http://x/": "a title", "link:abc123": '{"code": "abc123", "url": "http://x/"}'}, []),
])
def test_what_a_session_leaves_in_redis(keys, left):
    assert _leftovers(FakeRedis(keys), "SID", ["abc123"]) == left


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


# ---------------------------------------------------------------------------
# The expiry check's visitor keeps a cookie whose Expires (rounded down to the second) is already over
# ---------------------------------------------------------------------------
class Answer:
    def __init__(self, set_cookie: str):
        self.headers = email.message.Message()
        self.headers["Set-Cookie"] = set_cookie

    def info(self):
        return self.headers


def test_a_cookie_expired_on_arrival_is_kept():
    jar = _KeptCookies()
    jar.extract_cookies(Answer(f"session=abc; Expires={formatdate(int(time.time()) - 1, usegmt=True)}; Path=/"),
                        urllib.request.Request("http://127.0.0.1:5000/api/links"))
    assert [(cookie.name, cookie.value) for cookie in jar] == [("session", "abc")]
