"""An HTTP server on 127.0.0.1 whose answers the tests choose by path.

Paths: ``/ok`` (200), ``/status/<code>``, ``/retry-after/<seconds>`` (429 with
``Retry-After``), ``/slow/<milliseconds>`` (200 after a delay), ``/drop`` (closes the
connection without answering), ``/flaky/<key>/<n>`` (503 for the first ``n`` requests with
that key, 200 after), ``/redirect/<percent-encoded URL>`` (302 to that URL),
``/stall-body/<milliseconds>`` (200 and its headers at once, the body after a delay). Every
request is recorded with its method, path and headers, so a test can tell whether a request
reached the server at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


@dataclass(frozen=True)
class ReceivedHttpRequest:
    method: str
    path: str
    headers: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.record(
            ReceivedHttpRequest(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}
            )
        )
        parts = self.path.split("?")[0].strip("/").split("/")
        headers: dict[str, str] = {}
        if parts[0] == "drop":
            self.close_connection = True
            self.connection.close()
            return
        if parts[0] == "stall-body":
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.flush()
            time.sleep(int(parts[1]) / 1000)
            try:
                self.wfile.write(b"late\n")
            except OSError:  # the client gave up waiting
                self.close_connection = True
            return
        if parts[0] == "status":
            status = int(parts[1])
        elif parts[0] == "retry-after":  # percent-encoded, so that any value can be sent
            status = 429
            headers["Retry-After"] = unquote(parts[1], encoding="latin-1")
        elif parts[0] == "redirect":
            status = 302
            headers["Location"] = unquote(parts[1])
        elif parts[0] == "flaky":
            status = 503 if self.server.count(parts[1]) <= int(parts[2]) else 200
        elif parts[0] == "slow":
            time.sleep(int(parts[1]) / 1000)
            status = 200
        else:
            status = 200
        body = f"{status}\n".encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read the recorded requests instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[ReceivedHttpRequest] = []
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def count(self, key: str) -> int:
        """How many requests have asked for ``key``, this one included."""
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            return self.counts[key]

    def record(self, request: ReceivedHttpRequest) -> None:
        with self._lock:
            self.received.append(request)


class ScriptedHttpServer:
    """The running server: ``url(path)``, ``received`` requests, ``clear()``."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self.port = int(server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def received(self) -> list[ReceivedHttpRequest]:
        with self._server._lock:
            return list(self._server.received)

    def clear(self) -> None:
        with self._server._lock:
            self._server.received.clear()


@contextmanager
def scripted_http_server() -> Iterator[ScriptedHttpServer]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ScriptedHttpServer(server)
    finally:
        server.shutdown()
        server.server_close()
