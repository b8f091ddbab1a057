"""Factor VIII's readings and the test page's slow answers: what counts as a process put in the background, and
what does not (the checks' behaviour is proven against mutants, tests/mutants/08_concurrency.toml)."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from factorlab.checks.concurrency import _who, background_in_python, background_in_script
from factorlab.checks.source import Module, _parse_text
from factorlab.testpage import TestPage


@pytest.mark.parametrize("line", [
    "web: gunicorn --daemon --bind 0.0.0.0:$PORT shortly:app",
    "web: gunicorn -D shortly:app",
    "worker: nohup python worker.py",
    "worker: python worker.py &",
    "worker: python worker.py > w.log 2>&1 &",
    "web: gunicorn --pid /run/shortly.pid shortly:app",
    "worker: rq worker --pid=worker.pid previews",
    "worker: setsid python worker.py",
    "run: start-stop-daemon --start --exec /usr/bin/python3 -- worker.py",
    "run: python worker.py; echo $! > var/worker",
    "run: echo $$ > shortly.pid && exec python worker.py",
])
def test_a_process_sent_to_the_background_is_read_as_such(line):
    assert background_in_script(line + "\n", "Procfile"), line


@pytest.mark.parametrize("line", [
    "web: gunicorn --bind 0.0.0.0:$PORT shortly:app",
    "worker: python worker.py 2>&1",
    "worker: python worker.py >&2",
    "worker: test -f .env && python worker.py",
    "worker: python worker.py &> worker.log",
    "worker: echo 'fish & chips' && exec python worker.py",
    "worker: python worker.py  # not nohup, not &",
    "worker: rq worker -c shortly previews",
    "worker: exec flask --app shortly work -d 3",
])
def test_a_foreground_process_is_left_alone(line):
    assert background_in_script(line + "\n", "Procfile") == [], line


def _python(source: str) -> list[str]:
    return background_in_python(Module("app.py", _parse_text(source, "app.py")), "app.py")


@pytest.mark.parametrize("source, seen", [
    ("import os\nif os.fork():\n    os._exit(0)\n", "os.fork() at app.py:2"),
    ("from os import fork as split\nsplit()\n", "os.fork() at app.py:2"),
    ("import os as system\nsystem.setsid()\n", "os.setsid() at app.py:2"),
    ("import daemon\nwith daemon.DaemonContext():\n    pass\n", "daemon.DaemonContext at app.py:2"),
    ("import os\nopen('x', 'w').write(str(os.getpid()))\n", "its pid written to a file at app.py:2"),
    ("PIDFILE = 'run/app.pid'\n", "a pid file ('run/app.pid') at app.py:1"),
    ("daemon = True\n", "gunicorn's daemon = True at app.py:1"),
    ("pidfile = '/tmp/g'\n", "gunicorn's a pidfile setting at app.py:1"),
])
def test_python_that_forks_or_keeps_a_pid_file_is_found(source, seen):
    assert seen in _python(source)


@pytest.mark.parametrize("source", [
    "import os\nprint('pid', os.getpid())\n",  # printing the pid to the output is fine
    "import multiprocessing\nmultiprocessing.Pool(2)\n",
    "daemon = False\npidfile = None\n",
    "def run(daemon=True):\n    return daemon\n",
    "import threading\nthreading.Thread(target=print, daemon=True).start()\n",
])
def test_python_that_stays_in_the_foreground_is_left_alone(source):
    assert _python(source) == []


def test_tokens_name_the_process_that_asked():
    assert _who({"Authorization": "Bearer factorlab-worker-B"}) == "worker B"
    assert _who({"authorization": "Bearer factorlab-web"}) == "web"
    assert _who({"Authorization": "Bearer fake-dev-token"}) == "?" == _who({})


def test_a_held_page_keeps_the_fetcher_waiting_past_its_read_timeout_until_released():
    with TestPage() as page:
        page.hold("/slow/")
        got = {}

        def fetch():
            started = time.monotonic()
            got["text"] = requests.get(page.url("/slow/1"), timeout=(2, 1)).text  # a 1 s read timeout
            got["took"] = time.monotonic() - started

        fetcher = threading.Thread(target=fetch)
        fetcher.start()
        assert page.wait_for(lambda: page.paths() == ["/slow/1"], 10)
        assert requests.get(page.url("/fast"), timeout=5).text.count(page.title) == 1  # others answer at once
        assert not page.wait_for(lambda: "text" in got, 2.5), "the held answer ended before release()"
        page.release()
        fetcher.join(10)
        assert page.title in got["text"] and got["took"] >= 2.5


def test_a_slow_page_takes_its_delay():
    with TestPage(delay=1.0) as page:
        started = time.monotonic()
        assert page.title in requests.get(page.url("/"), timeout=(2, 0.8)).text
        assert time.monotonic() - started >= 1.0
