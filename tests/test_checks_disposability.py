"""Factor IX's machinery: SIGTERM and SIGKILL reach every process of an app (also one that left its process group,
as RQ's job forks do), the check's raw requests and probes read what a server did, the test page keeps quiet when
a fetcher hangs up, and links stored for a check are there (the checks' behaviour is proven against mutants,
tests/mutants/09_disposability.toml)."""

from __future__ import annotations

import socket
import sqlite3
import struct
import threading
import time

import pytest

from factorlab.checks.disposability import _Probe, _Request, store_links
from factorlab.process import free_port, wait_until
from factorlab.runners.local import LocalRunner
from factorlab.testpage import TestPage

# A process type whose child leaves the process group (as RQ's job fork does with os.setpgrp) and notes, in a
# file, each signal it gets; the parent waits for it and exits 0 on SIGTERM once the child has gone.
ESCAPEE = '''import os, signal, sys, time

if os.fork() == 0:
    os.setpgrp()
    signal.signal(signal.SIGTERM, lambda *_: (open("child-got-term", "w").close(), os._exit(0)))
    open("child-ready", "w").close()
    while True:
        time.sleep(0.1)
signal.signal(signal.SIGTERM, lambda *_: None)
os.wait()
sys.exit(0)
'''


@pytest.fixture
def escapee(tmp_path):
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "run.py").write_text(ESCAPEE)
    (folder / "requirements.txt").write_text("")
    (folder / "Procfile").write_text("worker: python run.py\n")
    with LocalRunner(folder) as runner:
        app = runner.start({}, process_type="worker", listens=False)
        assert wait_until(lambda: (app.workspace / "child-ready").exists(), 60)
        yield app


def test_sigterm_reaches_a_child_that_left_the_group_and_the_app_ends_by_itself(escapee):
    assert escapee.exited(0.2) is None  # still running
    escapee.terminate()
    assert escapee.exited(20) == 0
    assert (escapee.workspace / "child-got-term").exists()


def test_sigkill_takes_every_process_with_it(escapee):
    escapee.kill()
    assert escapee.exited(5) is not None
    from factorlab.process import marked
    assert wait_until(lambda: not marked(escapee.process.run_id), 5), "the child that left the group survived"
    assert not (escapee.workspace / "child-got-term").exists()


class _Server:
    """A loopback server that answers (or not) as a test says: accept and answer, accept and close, or hold."""

    def __init__(self, how: str):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.how = how
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with self.sock:
            conn, _ = self.sock.accept()
        with conn:
            conn.recv(65536)
            if self.how == "answer":
                conn.sendall(b"HTTP/1.1 201 CREATED\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            elif self.how == "hold":
                time.sleep(1.5)


@pytest.mark.parametrize("how, status, error", [
    ("answer", 201, ""),
    ("close", None, "connection closed without an answer"),
    ("hold", None, "connection closed without an answer"),
])
def test_a_raw_request_says_what_became_of_it(how, status, error):
    server = _Server(how)
    request = _Request(server.port, "/x", "http://127.0.0.1:9/x")
    request.join(10)
    assert (request.status, request.error) == (status, error)


def test_a_probe_tells_refused_from_served_from_unanswered():
    closed = _Probe(free_port(), 2)
    closed.run()
    assert closed.result == "refused"
    served = _Probe(_Server("answer").port, 2)
    served.run()
    assert served.result == "served"
    held = _Probe(_Server("hold").port, 0.5)
    held.run()
    assert held.result == "unanswered"


def test_the_test_page_keeps_quiet_when_a_fetcher_hangs_up(capfd):
    with TestPage() as page:
        page.hold("/held/")
        fetcher = socket.create_connection(("127.0.0.1", page.server.server_address[1]), timeout=5)
        fetcher.sendall(b"GET /held/1 HTTP/1.0\r\n\r\n")
        fetcher.recv(1)  # the answer has started
        fetcher.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        fetcher.close()  # hung up at once (a reset): the page's next write fails
    # leaving the page released it and waited for its answer to end: the write to the closed socket included
    assert "Traceback" not in capfd.readouterr().err


def test_stored_links_are_in_the_database(tmp_path):
    database = tmp_path / "links.db"
    store_links(str(database), [f"http://127.0.0.1:9/{n}" for n in range(50)], create=True)
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT count(*), count(DISTINCT url), min(title != '') FROM links").fetchone()
    assert rows == (50, 50, 1)


@pytest.mark.parametrize("source", [
    "import signal, sys\ndef bye(s, f):\n    sys.exit(0)\nsignal.signal(signal.SIGTERM, bye)\n",
    "import os, signal\nsignal.signal(signal.SIGTERM, lambda s, f: os._exit(0))\n",
    "from signal import signal as on, SIGTERM\ndef bye(*_):\n    raise SystemExit\non(SIGTERM, bye)\n",
    "import signal\nsignal.signal(15, lambda *_: exit())\n",
    "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_DFL)\n",
    "import signal\nclass W:\n    def stop(self, *_):\n        raise KeyboardInterrupt\n"
    "    def run(self):\n        signal.signal(signal.SIGTERM, self.stop)\n",
])
def test_a_sigterm_handler_that_exits_at_once_is_read_as_such(source, tmp_path):
    from factorlab.checks.disposability import exiting_on_sigterm
    (tmp_path / "gunicorn.conf.py").write_text(source)
    assert exiting_on_sigterm(tmp_path), source


@pytest.mark.parametrize("source", [
    "import signal\nstopping = []\nsignal.signal(signal.SIGTERM, lambda *_: stopping.append(True))\n",
    "import signal, sys\nsignal.signal(signal.SIGINT, lambda *_: sys.exit(1))\n",
    "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n",  # caught by what the process does instead
    "import sys\ndef main():\n    sys.exit(0)\n",
])
def test_a_handler_that_lets_the_work_finish_is_left_alone(source, tmp_path):
    from factorlab.checks.disposability import exiting_on_sigterm
    (tmp_path / "worker.py").write_text(source)
    assert exiting_on_sigterm(tmp_path) == [], source
