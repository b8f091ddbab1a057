"""A tiny web page on loopback for the link preview to fetch; it remembers who asked, and can keep them waiting."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TITLE = "factorlab test page"
HOLD_CAP = 60.0  # the longest a held answer waits for release(), whatever the check does
TRICKLE_EVERY = 0.5  # while held, a byte of the page this often: a fetcher's read timeout never runs out


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A fetcher that hangs up mid-answer (killed, stopped, timed out) is what checks make happen: no
        traceback on the terminal."""


class TestPage:
    """Serve `<title>TITLE</title>` at any path and record each request's path and headers.

    delay makes every answer take that many seconds. hold(prefix) makes a slow page of every path under prefix: its answer starts at once and then keeps the
    fetcher waiting for the title (a byte of padding every TRICKLE_EVERY seconds, so that a read timeout never
    fires) until release() or HOLD_CAP. Arrivals are signalled: wait_for(predicate) wakes up on each one."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, title: str = TITLE, delay: float = 0.0):
        """delay: seconds every answer takes (a slow site), sent a byte at a time like a held one."""
        self.title = title
        self.delay = delay
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.arrived = threading.Condition()
        self._held: list[str] = []
        self._released = threading.Event()
        page = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the answer ends when the connection closes: no length needed

            def do_GET(self):  # noqa: N802 (http.server's naming)
                with page.arrived:
                    page.requests.append((self.path, dict(self.headers.items())))
                    page.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(b"<html><head>")
                if page.held(self.path):
                    page.trickle(self.wfile, HOLD_CAP)
                elif page.delay:
                    page.trickle(self.wfile, page.delay)
                self.wfile.write(f"<title>{page.title}</title></head><body>hi</body></html>".encode())

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def headers_for(self, path: str) -> list[dict[str, str]]:
        return [headers for p, headers in self.requests if p == path]

    def paths(self) -> list[str]:
        """The paths asked for so far, in order of arrival."""
        with self.arrived:
            return [p for p, _ in self.requests]

    # -- slow pages ---------------------------------------------------------------------------------------

    def hold(self, prefix: str) -> None:
        """Keep every answer under prefix waiting until release()."""
        self._held.append(prefix)

    def held(self, path: str) -> bool:
        return not self._released.is_set() and any(path.startswith(prefix) for prefix in self._held)

    def release(self) -> None:
        """Let every held answer finish, and answer later ones at once."""
        self._released.set()

    def trickle(self, out, limit: float) -> None:
        """Keep the answer going, a byte at a time, until release() or limit seconds."""
        deadline = time.monotonic() + limit
        while not self._released.wait(max(0.0, min(TRICKLE_EVERY, deadline - time.monotonic()))) \
                and time.monotonic() < deadline:
            try:
                out.write(b" ")
                out.flush()
            except OSError:  # the fetcher gave up
                return

    def wait_for(self, predicate, timeout: float, every: float | None = None) -> bool:
        """Wait until predicate() holds, checked at each arrival (and every `every` seconds, for a predicate that
        also looks elsewhere); False when timeout runs out first."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.arrived.wait(min(left, every) if every else left)
        return True

    def __enter__(self) -> "TestPage":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
