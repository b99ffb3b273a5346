"""One small HTTP server for everything the process serves: health, status, metrics.

A route table maps a path to a handler that is called once per request with the request's
few details and returns ``(status, content type, body)``; the server does the rest (HEAD,
404, Content-Length, keep-alive). It is deliberately tiny and generic so that the health
routes and the Prometheus ``/metrics`` route can share one port and one thread.

Like the Prometheus endpoint, it is started so that nothing here can stop the program: a
taken port costs one warning and :func:`start_endpoint_server` returns ``None``; a handler
that raises answers that one request with a 500 and the server keeps serving.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import NamedTuple

from otel_resilience._fork import unlock_after_fork

__all__ = [
    "EndpointRequest",
    "EndpointResponse",
    "EndpointServer",
    "RouteHandler",
    "RouteResult",
    "start_endpoint_server",
]

_logger = logging.getLogger(__name__)

# An idle keep-alive connection holds one thread; this bounds how long it may.
_IDLE_CONNECTION_SECONDS = 30.0
# How often the serving loop looks for a close request: close() waits up to this long.
# Ten idle wake-ups a second cost nothing measurable; the standard 0.5 s made every close
# (a test's teardown, a configurator's shutdown) wait half a second.
_POLL_INTERVAL_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class EndpointRequest:
    """What a handler may need to know: Prometheus negotiates on headers and the query."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    """Request headers by lower-case name."""


class EndpointResponse(NamedTuple):
    """A response with extra headers (``Content-Encoding``, ``Cache-Control``...)."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


RouteResult = tuple[int, str, bytes] | EndpointResponse
RouteHandler = Callable[[EndpointRequest], RouteResult]


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung request never holds up the program's exit
    block_on_close = False
    routes: dict[str, RouteHandler]
    failed_routes: set[str]

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's fully qualified name, a DNS round trip
        # that can take seconds on a badly configured machine; nothing here uses it.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Prometheus scrapes over one connection
    timeout = _IDLE_CONNECTION_SECONDS
    server: _Server

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        path, _, query = self.path.partition("?")
        handler = self.server.routes.get(path)
        extra: tuple[tuple[str, str], ...] = ()
        if handler is None:
            status, content_type, body = 404, "text/plain; charset=utf-8", b"not found\n"
        else:
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = EndpointRequest(self.command, path, query, headers)
            try:
                result = handler(request)
                status, content_type, body = result[0], result[1], result[2]
                if isinstance(result, EndpointResponse):
                    extra = result.headers
            except Exception as error:  # fail-safe: one bad answer, never a dead server
                self._report_failure(path, error)
                status, content_type = 500, "text/plain; charset=utf-8"
                body = f"internal error while answering {path}: {type(error).__name__}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _report_failure(self, path: str, error: Exception) -> None:
        """The first failure of a route is a warning with its traceback; repeats are debug.

        Probes call a route every few seconds, so a broken one would otherwise flood the log.
        """
        first = path not in self.server.failed_routes
        self.server.failed_routes.add(path)
        _logger.log(
            logging.WARNING if first else logging.DEBUG,
            "The handler for %s raised %s; that request was answered with 500",
            path,
            type(error).__name__,
            exc_info=first,
        )

    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged: the standard handler writes each one to stderr."""


class EndpointServer:
    """A running server: add routes at any time, read its ``url``, ``close`` it once."""

    def __init__(self, server: _Server, host: str) -> None:
        self._server = server
        self._closed = False
        self._close_lock = threading.Lock()
        unlock_after_fork(self, "_close_lock")
        display_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{display_host}:{server.server_port}"
        """The base URL, without a path: ``http://127.0.0.1:9464``."""
        self._thread = threading.Thread(
            target=server.serve_forever,
            args=(_POLL_INTERVAL_SECONDS,),
            name=f"otel-resilience endpoint {self.url}",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The port it listens on (the chosen one when started with port 0)."""
        return self._server.server_port

    def add_route(self, path: str, handler: RouteHandler) -> None:
        """Answer ``GET``/``HEAD`` on ``path`` (no query string) with ``handler``.

        A route added again replaces the previous handler.
        """
        if not path.startswith("/"):
            raise ValueError(f"a route path starts with '/', got {path!r}")
        # Replacing the dict keeps lookups lock-free: requests read one reference.
        self._server.routes = {**self._server.routes, path: handler}

    def remove_route(self, path: str) -> None:
        """Stop answering ``path`` (it gets 404 from now on)."""
        self._server.routes = {k: v for k, v in self._server.routes.items() if k != path}

    def url_for(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return self.url + path

    def close(self) -> None:
        """Stop serving and release the port; a second call does nothing."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _address_family(host: str, port: int) -> socket.AddressFamily:
    """IPv4 or IPv6, whichever ``host`` resolves to first (``::1``, ``localhost``)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return infos[0][0]


def start_endpoint_server(
    host: str,
    port: int,
    *,
    purpose: str = "health endpoint",
    port_variable: str = "OTEL_RESILIENCE_HEALTH_PORT",
) -> EndpointServer | None:
    """Serve on ``host:port`` (port 0 picks a free one); ``None`` with one warning if it cannot.

    ``purpose`` and ``port_variable`` name the endpoint and its setting in that warning.
    """
    try:
        ipv6 = _address_family(host, port) == socket.AF_INET6
        server = (_Server6 if ipv6 else _Server)((host, port), _RequestHandler)
    except OSError as error:
        _logger.warning(
            "The %s could not listen on %s:%d (%s); this process serves nothing there, "
            "everything else goes on. Set %s to a free port, or 0 to pick one",
            purpose,
            host,
            port,
            error.strerror or error,
            port_variable,
        )
        return None
    server.routes = {}
    server.failed_routes = set()
    return EndpointServer(server, host)
