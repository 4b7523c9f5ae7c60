"""A local HTTP server standing in for a remote service (a delivery API, a Slack webhook) in tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# status, headers, body; None closes the connection without answering (the answer got lost)
Response = tuple[int, dict[str, str], bytes] | None


def bypass_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Talk to the local server directly, whatever proxy the environment sets."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@contextmanager
def serve(respond: Callable[[dict], Response]) -> Iterator[ThreadingHTTPServer]:
    """Serve POSTs on a free local port while in the block.

    `respond` gets each request as `{"path", "headers", "body"}` (body as bytes) and returns the answer.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            response = respond({"path": self.path, "headers": dict(self.headers), "body": body})
            if response is None:
                self.close_connection = True
                return
            status, headers, payload = response
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
