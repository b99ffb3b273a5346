"""The httpx instrumentation against a real server on 127.0.0.1 and the real SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from http_test_server import ScriptedHttpServer
from instrumentation_harness import Instrumented, assert_one_traced_request
from instrumentation_harness import instrument as instrument_with
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode
from otel_resilience_instrumentation_httpx import HTTPXCircuitOpenError, HTTPXClientInstrumentor
from otlp_receiver import unused_tcp_port

from otel_resilience import BreakerPolicy, CircuitOpenError

SCOPE = "otel_resilience.instrumentation.httpx"


def instrument(
    policy: BreakerPolicy | None = None, retries: int = 2, backoff: float = 0
) -> Iterator[Instrumented]:
    yield from instrument_with(HTTPXClientInstrumentor(), policy, retries, backoff)


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument()


def test_a_client_request_gets_a_client_span_a_metric_and_propagated_context(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    with httpx.Client(timeout=5) as client:
        assert client.get(http_server.url("/ok?token=secret&page=2")).status_code == 200
    assert_one_traced_request(instrumented, http_server, SCOPE)


def test_module_level_get_is_covered(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    assert httpx.get(http_server.url("/ok?token=secret&page=2"), timeout=5).status_code == 200
    assert_one_traced_request(instrumented, http_server, SCOPE)


def test_a_client_created_before_instrumentation_is_covered(
    http_server: ScriptedHttpServer,
) -> None:
    with httpx.Client(timeout=5) as client:
        for instrumented in instrument():
            assert client.get(http_server.url("/ok?token=secret&page=2")).status_code == 200
            assert_one_traced_request(instrumented, http_server, SCOPE)


def test_an_async_client_request_gets_a_client_span_a_metric_and_propagated_context(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    async def main() -> int:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(http_server.url("/ok?token=secret&page=2"))).status_code

    assert asyncio.run(main()) == 200
    assert_one_traced_request(instrumented, http_server, SCOPE)


def test_credentials_never_reach_the_span(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    url = http_server.url("/ok").replace("http://", "http://alice:hunter2@")
    httpx.get(url, timeout=5)
    (span,) = instrumented.finished()
    assert (span.attributes or {})["url.full"] == url.replace("alice:hunter2", "REDACTED:REDACTED")
    assert http_server.received[0].headers["authorization"].startswith("Basic ")


def test_idempotent_requests_are_retried_and_each_attempt_is_a_span(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    # One pooled connection: a retried-past response that stayed open would hold it, and the
    # next attempt would wait for the pool until the one-second pool timeout.
    limits = httpx.Limits(max_connections=1)
    with httpx.Client(timeout=httpx.Timeout(5, pool=1), limits=limits) as client:
        assert client.get(http_server.url("/status/503")).status_code == 503
    assert len(http_server.received) == 3  # the first attempt and two retries
    spans = instrumented.finished()
    assert [(s.attributes or {}).get("http.request.resend_count") for s in spans] == [None, 1, 2]
    assert all(s.status.status_code == StatusCode.ERROR for s in spans)
    assert all((s.attributes or {})["error.type"] == "503" for s in spans)
    (point,) = instrumented.duration_points()
    assert point.count == 3


def test_async_retries_wait_in_the_event_loop_and_release_the_retried_responses(
    http_server: ScriptedHttpServer,
) -> None:
    async def main() -> tuple[int, int, float]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        limits = httpx.Limits(max_connections=1)  # as in the sync test above
        async with httpx.AsyncClient(timeout=httpx.Timeout(5, pool=1), limits=limits) as client:
            started = time.perf_counter()
            status = (await client.get(http_server.url("/status/503"))).status_code
            elapsed = time.perf_counter() - started
        stop.set()
        await ticking
        return status, ticks, elapsed

    for instrumented in instrument(retries=2, backoff=0.1):
        status, ticks, elapsed = asyncio.run(main())
        assert status == 503
        assert len(http_server.received) == 3
        assert elapsed >= 0.2  # two waits of 0.1 s
        assert ticks >= 10  # the other task ran while the retries waited
        spans = instrumented.finished()
        assert [(s.attributes or {}).get("http.request.resend_count") for s in spans] == [
            None,
            1,
            2,
        ]


def test_a_retry_cancelled_while_waiting_still_releases_the_retried_response(
    http_server: ScriptedHttpServer,
) -> None:
    async def main() -> int:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(timeout=httpx.Timeout(5, pool=1), limits=limits) as client:
            waiting = asyncio.create_task(client.get(http_server.url("/status/503")))
            while not http_server.received:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # now in the backoff before the first retry
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            # The one connection is free again: no PoolTimeout.
            return (await client.get(http_server.url("/ok"))).status_code

    for _ in instrument(retries=2, backoff=0.5):
        assert asyncio.run(main()) == 200
        assert [r.path for r in http_server.received] == ["/status/503", "/ok"]


def test_post_is_never_retried(instrumented: Instrumented, http_server: ScriptedHttpServer) -> None:
    response = httpx.post(http_server.url("/status/503"), content=b"order", timeout=5)
    assert response.status_code == 503
    assert len(http_server.received) == 1


def test_a_put_is_retried_only_when_its_body_can_be_sent_again(
    http_server: ScriptedHttpServer,
) -> None:
    never_opens = BreakerPolicy(consecutive_failures=None, failure_rate_threshold=None)
    for _ in instrument(never_opens):
        put_each_kind_of_body(http_server.url("/status/503"), http_server)


def put_each_kind_of_body(url: str, http_server: ScriptedHttpServer) -> None:
    assert httpx.put(url, content=b"state", timeout=5).status_code == 503
    assert httpx.put(url, json={"state": 1}, timeout=5).status_code == 503
    assert len(http_server.received) == 6
    http_server.clear()
    assert httpx.put(url, content=iter([b"st", b"ate"]), timeout=5).status_code == 503
    assert len(http_server.received) == 1

    async def streamed() -> int:
        async def body() -> Any:
            yield b"state"

        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.put(url, content=body())).status_code

    http_server.clear()
    assert asyncio.run(streamed()) == 503
    assert len(http_server.received) == 1


def test_other_4xx_are_not_failures(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    with httpx.Client(timeout=5) as client:
        for _ in range(10):
            assert client.get(http_server.url("/status/404")).status_code == 404
    breaker = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}")
    assert (breaker.stats.successes, breaker.stats.failures) == (10, 0)
    assert len(http_server.received) == 10


def test_the_breaker_opens_and_then_rejects_without_touching_the_network(
    http_server: ScriptedHttpServer,
) -> None:
    for instrumented in instrument(BreakerPolicy(consecutive_failures=3), retries=0):
        with httpx.Client(timeout=5) as client:
            for _ in range(3):
                client.get(http_server.url("/status/500"))
            http_server.clear()
            with pytest.raises(httpx.TransportError) as rejected:
                client.get(http_server.url("/ok"))
        error = rejected.value
        assert isinstance(error, HTTPXCircuitOpenError)
        assert isinstance(error, CircuitOpenError)
        assert isinstance(error, httpx.ConnectError)
        key = f"http://127.0.0.1:{http_server.port}"
        assert (error.name, error.state) == (key, "open")
        assert error.remaining > 0
        assert key in str(error)
        assert error.request.url == http_server.url("/ok")  # set by the client, as usual
        assert http_server.received == []
        last = instrumented.finished()[-1]
        assert (last.attributes or {})["error.type"] == "HTTPXCircuitOpenError"
        assert last.status.status_code == StatusCode.ERROR


def test_the_breaker_rejects_async_requests_too(http_server: ScriptedHttpServer) -> None:
    async def main() -> BaseException:
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(2):
                await client.get(http_server.url("/status/500"))
            http_server.clear()
            try:
                await client.get(http_server.url("/ok"))
            except httpx.TransportError as error:
                return error
        raise AssertionError("not rejected")

    for _ in instrument(BreakerPolicy(consecutive_failures=2), retries=0):
        assert isinstance(asyncio.run(main()), HTTPXCircuitOpenError)
        assert http_server.received == []


def test_retry_after_keeps_the_breaker_open_that_long(http_server: ScriptedHttpServer) -> None:
    policy = BreakerPolicy(consecutive_failures=1, recovery_timeout=1, recovery_jitter=0)
    for instrumented in instrument(policy, retries=0):
        httpx.get(http_server.url("/retry-after/120"), timeout=5)
        breaker = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}")
        assert breaker.state == "open"
        assert breaker.seconds_until_trial() > 100


def test_connection_refused_is_a_failure_and_is_retried(instrumented: Instrumented) -> None:
    port = unused_tcp_port()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/ok", timeout=5)
    spans = instrumented.finished()
    assert len(spans) == 3
    assert {(s.attributes or {})["error.type"] for s in spans} == {"ConnectError"}
    breaker = instrumented.registry.get(f"http://127.0.0.1:{port}")
    # one logical call retried to exhaustion: one failure, its retried-past attempts neither
    assert (breaker.stats.failures, breaker.stats.ignored) == (1, 2)


def test_a_dropped_connection_is_a_failure_and_is_retried(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(http_server.url("/drop"), timeout=5)
    assert len(http_server.received) == 3
    breaker = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}")
    # one logical call retried to exhaustion: one failure, its retried-past attempts neither
    assert (breaker.stats.failures, breaker.stats.ignored) == (1, 2)


def test_suppressed_requests_pass_through(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    with suppress_instrumentation():
        httpx.get(http_server.url("/ok"), timeout=5)
    assert instrumented.finished() == []
    assert "traceparent" not in http_server.received[0].headers


def test_uninstrument_restores_the_originals(http_server: ScriptedHttpServer) -> None:
    sync_original = httpx.HTTPTransport.__dict__["handle_request"]
    async_original = httpx.AsyncHTTPTransport.__dict__["handle_async_request"]
    for _ in instrument():
        assert httpx.HTTPTransport.__dict__["handle_request"] is not sync_original
        assert httpx.AsyncHTTPTransport.__dict__["handle_async_request"] is not async_original
    assert httpx.HTTPTransport.__dict__["handle_request"] is sync_original
    assert httpx.AsyncHTTPTransport.__dict__["handle_async_request"] is async_original
    httpx.get(http_server.url("/ok"), timeout=5)
    assert "traceparent" not in http_server.received[0].headers


def test_a_timeout_counts_against_the_endpoint(http_server: ScriptedHttpServer) -> None:
    for instrumented in instrument(BreakerPolicy(consecutive_failures=5), retries=0):
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(http_server.url("/slow/500"), timeout=0.1)
        breaker = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}")
        assert breaker.stats.failures == 1
        (span,) = instrumented.finished()
        assert (span.attributes or {})["error.type"] == "ReadTimeout"


@pytest.mark.parametrize(
    "retry_after",
    ["%B2", "99999999999999999999999", "Fri%2C%2031%20Dec%209999%2023%3A59%3A59%20GMT"],
)
def test_a_hostile_retry_after_never_breaks_the_request(
    http_server: ScriptedHttpServer, retry_after: str
) -> None:
    """An invalid ``Retry-After`` is ignored, a valid one capped; sync and async alike."""
    policy = BreakerPolicy(consecutive_failures=1, max_recovery_timeout=30, recovery_jitter=0)
    url = http_server.url(f"/retry-after/{retry_after}")

    async def get_async() -> int:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(url)).status_code

    for instrumented in instrument(policy, retries=2):
        assert httpx.get(url, timeout=5).status_code == 429
        breaker = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}")
        assert breaker.seconds_until_trial() <= 30
        breaker.reset()
        assert asyncio.run(get_async()) == 429
        assert all(span.end_time is not None for span in instrumented.finished())
