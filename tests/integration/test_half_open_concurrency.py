"""Half-open trials under real concurrency: the trial limit holds at a real server.

A recovering endpoint must see at most ``half_open_max_calls`` trial calls at once. The
server below answers every request with a 503 after a random delay, so once the breaker has
opened it never closes again and every request that reaches the server is a trial; the
server counts how many are in progress at once. Trials of one half-open period outlive it
(a quick failure re-opens the breaker while slower trials are still waiting for their
answer), which is how stale trials once freed slots in the next period and let more in.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import requests
from instrumentation_harness import Instrumented, instrument
from otel_resilience_instrumentation_httpx import HTTPXClientInstrumentor
from otel_resilience_instrumentation_requests import RequestsInstrumentor

from otel_resilience import BreakerPolicy

TRIAL_LIMIT = 3
TRIALS_WANTED = 60
TRIALS_ENOUGH = 20  # fewer would say little; a loaded machine may serve fewer than wanted
HAMMER_SECONDS = 30.0  # at most: the hammer stops once TRIALS_WANTED trials were served
POLICY = BreakerPolicy(
    consecutive_failures=1,
    half_open_max_calls=TRIAL_LIMIT,
    recovery_timeout=0.005,
    max_recovery_timeout=0.005,
    recovery_jitter=0,
)


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FailingSlowly)
        self.lock = threading.Lock()
        self.in_progress = 0
        self.most_at_once = 0
        self.served = 0


class _FailingSlowly(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _CountingServer

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.in_progress += 1
            server.served += 1
            server.most_at_once = max(server.most_at_once, server.in_progress)
        try:
            time.sleep(random.choice((0.0, 0.001, 0.01, 0.03)))
        finally:
            with server.lock:
                server.in_progress -= 1
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def failing_server() -> Iterator[_CountingServer]:
    server = _CountingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _url(server: _CountingServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


def _assert_trials_stayed_within_the_limit(
    server: _CountingServer, instrumented: Instrumented
) -> None:
    breaker = instrumented.registry.get(f"http://127.0.0.1:{server.server_address[1]}")
    assert server.served >= TRIALS_ENOUGH, f"too few trials to tell ({server.served})"
    assert server.most_at_once <= TRIAL_LIMIT, (
        f"{server.most_at_once} trial calls reached the endpoint at once "
        f"(limit {TRIAL_LIMIT}, {server.served} served)"
    )
    assert breaker.stats.rejections > 0


def _hammer_with_threads(server: _CountingServer) -> None:
    """32 threads sending requests until TRIALS_WANTED were served (or HAMMER_SECONDS)."""
    url = _url(server)
    deadline = time.monotonic() + HAMMER_SECONDS

    def hammer() -> None:
        with requests.Session() as session:
            for _ in range(100_000):
                if time.monotonic() > deadline or server.served >= TRIALS_WANTED:
                    return
                try:
                    session.get(url, timeout=5)
                except requests.ConnectionError:
                    time.sleep(0.0005)  # rejected: let the others run

    threads = [threading.Thread(target=hammer) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


async def _hammer_with_tasks(server: _CountingServer) -> None:
    """500 asyncio tasks sending requests until TRIALS_WANTED were served (or HAMMER_SECONDS)."""
    url = _url(server)
    async with httpx.AsyncClient(timeout=5) as client:
        assert (await client.get(url)).status_code == 503  # opens the breaker
        deadline = time.monotonic() + HAMMER_SECONDS

        async def hammer() -> None:
            for _ in range(100_000):
                if time.monotonic() > deadline or server.served >= TRIALS_WANTED:
                    return
                try:
                    await client.get(url)
                except httpx.TransportError:
                    await asyncio.sleep(0.05)  # rejected: wait, as a real caller would

        await asyncio.gather(*(hammer() for _ in range(500)))


def test_32_threads_never_run_more_trials_at_once_than_the_limit(
    failing_server: _CountingServer,
) -> None:
    for instrumented in instrument(RequestsInstrumentor(), POLICY, retries=0):
        url = _url(failing_server)
        assert requests.get(url, timeout=5).status_code == 503  # opens the breaker
        _hammer_with_threads(failing_server)
        _assert_trials_stayed_within_the_limit(failing_server, instrumented)


def test_500_asyncio_tasks_never_run_more_trials_at_once_than_the_limit(
    failing_server: _CountingServer,
) -> None:
    for instrumented in instrument(HTTPXClientInstrumentor(), POLICY, retries=0):
        asyncio.run(_hammer_with_tasks(failing_server))
        _assert_trials_stayed_within_the_limit(failing_server, instrumented)
