"""The capstone's parts: the router sends a request on only when that is safe, the drill's figures can show a
loss (a worker that does not put back the jobs of dead ones loses the job it held), a process that cannot start
is left stopped rather than restarted forever, and nothing is left running. The drill's success on the reference
solution is notebook 13's (its outputs say failed 0, lost 0, and nbval compares them)."""

from __future__ import annotations

import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from factorlab import capstone, services
from factorlab.catalogue import load
from factorlab.testpage import TestPage

from conftest import ROOT

COURSE = load(ROOT)
SOLUTION = COURSE.get("12").solution


class Answering:
    """A web server that answers every request with its name."""

    def __init__(self, name: str):
        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(201 if self.command == "POST" else 200)
                self.end_headers()
                self.wfile.write(name.encode())

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Dropping:
    """A server that accepts each connection, reads the request and closes without a word: a process that died
    holding it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.taken = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.taken += 1
            conn.recv(65536)
            conn.close()

    def close(self):
        self.sock.close()


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: a connection there is refused


@pytest.mark.parametrize("retry_post", [True, False])
def test_the_router_sends_a_request_on_only_when_that_is_safe(retry_post):
    router, good, dropping = capstone.Router(retry_post=retry_post), Answering("good"), Dropping()
    try:
        router.admit("web.refused", refused_port())
        router.admit("web.dropping", dropping.port)
        router.admit("web.good", good.port)
        for _ in range(6):  # every process has its turn first at least once
            assert requests.get(router.url + "/", timeout=10).text == "good"
        posts = [requests.post(router.url + "/api/links", json={"url": "x"}, timeout=10) for _ in range(6)]
        if retry_post:
            assert all(p.status_code == 201 and p.text == "good" for p in posts)
        else:
            assert any(p.status_code == 502 for p in posts), "a dropped POST must not be sent again"
            assert all(p.status_code in (201, 502) for p in posts)
        assert router.sent_again["refused"] >= 1 and router.sent_again["dropped"] >= 1 and dropping.taken >= 2
        router.remove("web.good")
        router.remove("web.dropping")
        assert requests.get(router.url + "/", timeout=30).status_code == 503, "no process in service"
    finally:
        router.close()
        good.close()
        dropping.close()


def mutant(tmp_path, old: str, new: str, file: str = "worker.py"):
    folder = tmp_path / "app"
    shutil.copytree(SOLUTION, folder, ignore=shutil.ignore_patterns("__pycache__"))
    text = (folder / file).read_text()
    assert old in text
    (folder / file).write_text(text.replace(old, new))
    return folder


@pytest.fixture
def backing():
    pg, redis = services.Postgres.start(), services.Redis.start()
    try:
        with TestPage("A page worth a preview", delay=0.05) as page:
            yield pg, redis, page
    finally:
        pg.stop()
        redis.stop()


@pytest.mark.timeout(300)
def test_a_worker_that_does_not_put_back_the_jobs_of_dead_ones_loses_the_job_it_held(tmp_path, backing,
                                                                                      no_leftovers):
    folder = mutant(tmp_path, "back = requeue_abandoned(shortly.jobs)", "back = 0")
    drill = capstone.Drill(folder, *backing, settle=0.5)
    try:
        assert drill.set_up()[1] == 0
        drill.start()
        crash = drill.kill_worker()
        assert crash.what == "a worker killed holding a job" and crash.recovered_after is not None
        figures = drill.finish(drain_within=5)
    except BaseException:
        drill.abort()
        raise
    assert figures["jobs_lost"] >= 1, figures["jobs_lost"]
    assert figures["failed"] == 0 and figures["links"] > 0
    assert not any(e["event"] == "jobs of dead workers back on the queue" for e in figures["events"])


@pytest.mark.timeout(300)
def test_a_process_that_cannot_start_is_left_stopped_and_nothing_is_left_running(tmp_path, backing, no_leftovers):
    folder = mutant(tmp_path, "def main():\n", "def main():\n    sys.exit(3)\n")
    drill = capstone.Drill(folder, *backing, settle=0.5)
    try:
        drill.set_up()
        drill.start()  # the web processes serve: start() waits for them only
        left = lambda: [what for _, what in drill.system.notes if "left stopped" in what]  # noqa: E731
        assert capstone.wait_until(lambda: len(left()) == 2, 60), drill.system.notes
        assert sorted(left()) == [f"worker.{n} exited {capstone.CRASH_LOOP} times within "
                                  f"{capstone.CRASH_WINDOW:g} s: left stopped" for n in (1, 2)]
        assert all(drill.system.slot(f"worker.{n}").process is None for n in (1, 2))
    finally:
        drill.abort()
