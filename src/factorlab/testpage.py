"""A tiny web page on loopback for the link preview to fetch; it remembers who asked."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TITLE = "factorlab test page"


class TestPage:
    """Serve `<title>TITLE</title>` at any path and record each request's headers."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, title: str = TITLE):
        self.title = title
        self.requests: list[tuple[str, dict[str, str]]] = []
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                page.requests.append((self.path, dict(self.headers.items())))
                body = f"<html><head><title>{page.title}</title></head><body>hi</body></html>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def headers_for(self, path: str) -> list[dict[str, str]]:
        return [headers for p, headers in self.requests if p == path]

    def __enter__(self) -> "TestPage":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
