"""Which HTTP failures blame the endpoint: only those are counted and retried.

A breaker opens because the endpoint is failing, and a retry resends a request that failed
for a reason a retry can fix. A certificate the caller's trust store rejects, a dead proxy
and the program's own exhausted connection pool say nothing about the endpoint: they reach
the program exactly as the library raised them, are not retried, and count as neither
success nor failure, however often they happen. Real servers throughout: an HTTPS server
whose certificate the client does not trust, a proxy port nobody listens on, a pool of one.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import requests
import trustme
from http_test_server import ScriptedHttpServer
from instrumentation_harness import Instrumented, instrument
from otel_resilience_instrumentation_httpx import HTTPXCircuitOpenError, HTTPXClientInstrumentor
from otel_resilience_instrumentation_requests import (
    RequestsCircuitOpenError,
    RequestsInstrumentor,
)
from otlp_receiver import unused_tcp_port

from otel_resilience import BreakerPolicy

POLICY = BreakerPolicy(consecutive_failures=2, recovery_jitter=0)
CALLS = 4  # twice what opens the breaker on endpoint failures


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TlsServer

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.served += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Ok)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.lock = threading.Lock()
        self.served = 0

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: failed handshakes are what these tests make."""


@pytest.fixture
def tls_server() -> Iterator[tuple[_TlsServer, trustme.CA]]:
    """An HTTPS server on 127.0.0.1 whose certificate names only ``localhost``."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    server = _TlsServer(context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, authority
    finally:
        server.shutdown()
        server.server_close()


def _port(server: _TlsServer) -> int:
    return int(server.server_address[1])


def _assert_untouched(instrumented: Instrumented, key: str) -> None:
    breaker = instrumented.registry.get(key)
    stats = breaker.stats
    assert breaker.state == "closed"
    assert (stats.failures, stats.rejections) == (0, 0)
    assert stats.ignored == CALLS
    assert len(instrumented.finished()) == CALLS  # one span per call: nothing was retried


def test_requests_an_untrusted_certificate_is_the_callers_and_never_opens_the_breaker(
    tls_server: tuple[_TlsServer, trustme.CA],
) -> None:
    server, _ = tls_server
    url = f"https://localhost:{_port(server)}/"
    for instrumented in instrument(RequestsInstrumentor(), POLICY, retries=2):
        for _ in range(CALLS):  # the third used to raise our rejection instead
            with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
                requests.get(url, timeout=5)
        _assert_untouched(instrumented, f"https://localhost:{_port(server)}")


def test_requests_a_host_name_mismatch_is_the_callers(
    tls_server: tuple[_TlsServer, trustme.CA], tmp_path: object
) -> None:
    server, authority = tls_server
    with authority.cert_pem.tempfile() as ca_file:
        for instrumented in instrument(RequestsInstrumentor(), POLICY, retries=2):
            for _ in range(CALLS):  # trusted, but issued for localhost, not 127.0.0.1
                with pytest.raises(requests.exceptions.SSLError, match="match"):
                    requests.get(f"https://127.0.0.1:{_port(server)}/", verify=ca_file, timeout=5)
            _assert_untouched(instrumented, f"https://127.0.0.1:{_port(server)}")
            # the same server, trusted and named as its certificate says, is healthy
            response = requests.get(f"https://localhost:{_port(server)}/", verify=ca_file)
            assert response.status_code == 200


def test_httpx_an_untrusted_certificate_is_the_callers_sync_and_async(
    tls_server: tuple[_TlsServer, trustme.CA],
) -> None:
    server, _ = tls_server
    url = f"https://localhost:{_port(server)}/"

    async def fail_async() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(url)

    for instrumented in instrument(HTTPXClientInstrumentor(), POLICY, retries=2):
        for _ in range(CALLS // 2):
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                httpx.get(url, timeout=5)
            asyncio.run(fail_async())
        _assert_untouched(instrumented, f"https://localhost:{_port(server)}")
    assert server.served == 0


def test_requests_a_dead_proxy_is_not_the_destinations(http_server: ScriptedHttpServer) -> None:
    proxy = f"http://127.0.0.1:{unused_tcp_port()}"
    for instrumented in instrument(RequestsInstrumentor(), POLICY, retries=2):
        for _ in range(CALLS):  # the proxy's error, never a rejection of the destination
            with pytest.raises(requests.exceptions.ProxyError):
                requests.get(http_server.url("/ok"), proxies={"http": proxy}, timeout=5)
        _assert_untouched(instrumented, f"http://127.0.0.1:{http_server.port}")
        assert requests.get(http_server.url("/ok"), timeout=5).status_code == 200


def test_httpx_a_dead_proxy_is_not_the_destinations(http_server: ScriptedHttpServer) -> None:
    proxy = f"http://127.0.0.1:{unused_tcp_port()}"
    for instrumented in instrument(HTTPXClientInstrumentor(), POLICY, retries=2):
        with httpx.Client(proxy=proxy, timeout=5) as client:
            for _ in range(CALLS):
                with pytest.raises(httpx.ConnectError) as raised:
                    client.get(http_server.url("/ok"))
                assert not isinstance(raised.value, HTTPXCircuitOpenError)
        _assert_untouched(instrumented, f"http://127.0.0.1:{http_server.port}")
    assert http_server.received == []


def test_httpx_an_exhausted_pool_is_the_programs_own(http_server: ScriptedHttpServer) -> None:
    limits = httpx.Limits(max_connections=1)
    timeout = httpx.Timeout(10, pool=0.05)
    for instrumented in instrument(HTTPXClientInstrumentor(), POLICY, retries=2):
        with httpx.Client(limits=limits, timeout=timeout) as client:
            holder = threading.Thread(target=client.get, args=(http_server.url("/slow/1500"),))
            holder.start()
            while not http_server.received:  # the one connection is taken
                threading.Event().wait(0.01)
            for _ in range(CALLS):
                with pytest.raises(httpx.PoolTimeout):
                    client.get(http_server.url("/ok"))
            holder.join(10)
        breaker = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}")
        stats = breaker.stats
        assert breaker.state == "closed"
        assert (stats.failures, stats.ignored, stats.successes) == (0, CALLS, 1)
    assert [request.path for request in http_server.received] == ["/slow/1500"]


def test_a_requests_rejection_has_what_requests_errors_have(
    http_server: ScriptedHttpServer,
) -> None:
    """``except requests.RequestException as e: e.response`` must keep working."""
    for instrumented in instrument(RequestsInstrumentor(), POLICY, retries=0):
        instrumented.registry.get(f"http://127.0.0.1:{http_server.port}").force_open()
        with pytest.raises(requests.RequestException) as raised:
            requests.get(http_server.url("/ok?page=2"), timeout=5)
    error = raised.value
    assert isinstance(error, RequestsCircuitOpenError)
    own = requests.exceptions.ConnectionError("x")
    missing = {name for name in vars(own) if not hasattr(error, name)}
    assert not missing, f"requests' errors have {missing}, our rejection does not"
    assert error.response is None
    assert isinstance(error.request, requests.PreparedRequest)
    assert error.request.url == http_server.url("/ok?page=2")


def test_an_httpx_rejection_has_what_httpx_errors_have(http_server: ScriptedHttpServer) -> None:
    for instrumented in instrument(HTTPXClientInstrumentor(), POLICY, retries=0):
        instrumented.registry.get(f"http://127.0.0.1:{http_server.port}").force_open()
        with pytest.raises(httpx.TransportError) as raised:
            httpx.get(http_server.url("/ok"), timeout=5)
    error = raised.value
    assert isinstance(error, HTTPXCircuitOpenError)
    assert error.request.url == http_server.url("/ok")
