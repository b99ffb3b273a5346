"""A call is done when its body has been read: a body that never arrives is a failure.

A real server answers 200 with its headers at once and the body a second later; the
client waits for the body at most 0.2 s. The program gets a read timeout, so the breaker
must count a failure and the span must end as an error, with the status the headers gave.
httpx reads the body after the transport returns (for a streamed response, whenever the
program does); requests reads it inside ``Session.send``: both against the same server.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import httpx
import pytest
import requests
from http_test_server import ScriptedHttpServer
from instrumentation_harness import Instrumented, instrument
from opentelemetry.trace import StatusCode
from otel_resilience_instrumentation_httpx import HTTPXClientInstrumentor
from otel_resilience_instrumentation_requests import RequestsInstrumentor

from otel_resilience import BreakerPolicy

STALL = "/stall-body/1000"
TIMEOUT = httpx.Timeout(5, read=0.2)
POLICY = BreakerPolicy(recovery_jitter=0)


@pytest.fixture
def httpx_instrumented() -> Iterator[Instrumented]:
    yield from instrument(HTTPXClientInstrumentor(), POLICY, retries=0)


def _assert_a_failed_call(instrumented: Instrumented, server: ScriptedHttpServer) -> None:
    stats = instrumented.registry.get(f"http://127.0.0.1:{server.port}").stats
    assert (stats.failures, stats.successes) == (1, 0)
    (span,) = instrumented.finished()
    attributes = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.ERROR
    assert attributes["http.response.status_code"] == 200
    assert "Timeout" in str(attributes["error.type"])
    (point,) = instrumented.duration_points()
    assert "Timeout" in str(dict(point.attributes)["error.type"])


def test_httpx_a_body_that_never_arrives_is_a_failure(
    httpx_instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(http_server.url(STALL), timeout=TIMEOUT)
    _assert_a_failed_call(httpx_instrumented, http_server)


def test_httpx_async_a_body_that_never_arrives_is_a_failure(
    httpx_instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    async def get() -> None:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            await client.get(http_server.url(STALL))

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(get())
    _assert_a_failed_call(httpx_instrumented, http_server)


def test_httpx_a_streamed_body_counts_when_the_program_reads_it(
    httpx_instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    with httpx.Client(timeout=TIMEOUT) as client, client.stream("GET", http_server.url(STALL)) as r:
        assert r.status_code == 200
        assert httpx_instrumented.finished() == []  # not done: the body is still to come
        with pytest.raises(httpx.ReadTimeout):
            r.read()
    _assert_a_failed_call(httpx_instrumented, http_server)


def test_httpx_a_body_read_or_closed_early_is_a_success(
    httpx_instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    assert httpx.get(http_server.url("/ok"), timeout=TIMEOUT).text == "200\n"
    with httpx.Client(timeout=TIMEOUT) as client, client.stream("GET", http_server.url("/ok")):
        pass  # closed unread: the program had what it wanted
    stats = httpx_instrumented.registry.get(f"http://127.0.0.1:{http_server.port}").stats
    assert (stats.successes, stats.failures) == (2, 0)
    assert len(httpx_instrumented.finished()) == 2


def test_requests_a_body_that_never_arrives_is_a_failure(http_server: ScriptedHttpServer) -> None:
    for instrumented in instrument(RequestsInstrumentor(), POLICY, retries=0):
        with pytest.raises(requests.exceptions.ConnectionError, match="timed out"):
            requests.get(http_server.url(STALL), timeout=(5, 0.2))
        stats = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}").stats
        assert (stats.failures, stats.successes) == (1, 0)
        (span,) = instrumented.finished()
        assert span.status.status_code is StatusCode.ERROR


def test_httpx_a_streamed_response_never_closed_finishes_when_collected(
    httpx_instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    """A program that forgets to close a streamed response must not hold a trial slot."""
    with httpx.Client(timeout=TIMEOUT) as client:
        response = client.send(client.build_request("GET", http_server.url("/ok")), stream=True)
        assert response.status_code == 200
        assert httpx_instrumented.finished() == []
        del response
        gc.collect()
    assert len(httpx_instrumented.finished()) == 1
    stats = httpx_instrumented.registry.get(f"http://127.0.0.1:{http_server.port}").stats
    assert stats.successes == 1
