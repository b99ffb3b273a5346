"""The breaker judges logical calls, and its defaults tell a broken route from an outage.

One call retried to exhaustion is one failure: its attempts stay visible (a span each, a
histogram point each) but are not three strikes against the whole host. With the default
policy, a route that fails among healthy traffic to the same host never opens the host,
while a real outage (nothing listening, or every route answering 5xx) opens it within a
few calls. Real servers, the default policy, the default number of retries.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import requests
from http_test_server import ScriptedHttpServer
from instrumentation_harness import Instrumented, instrument
from otel_resilience_instrumentation_httpx import HTTPXClientInstrumentor
from otel_resilience_instrumentation_requests import (
    RequestsCircuitOpenError,
    RequestsInstrumentor,
)
from otlp_receiver import unused_tcp_port

from otel_resilience import BreakerPolicy
from otel_resilience.sdk.settings import RETRY_MAX_ATTEMPTS

DEFAULTS = BreakerPolicy(recovery_jitter=0)  # the shipped policy, without randomness
RETRIES = RETRY_MAX_ATTEMPTS.default  # the shipped number of retries


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument(RequestsInstrumentor(), DEFAULTS, retries=RETRIES)


def test_a_call_retried_to_exhaustion_is_one_failure(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    assert requests.get(http_server.url("/status/503"), timeout=5).status_code == 503
    assert len(http_server.received) == RETRIES + 1  # every attempt went out
    assert len(instrumented.finished()) == RETRIES + 1  # and has its span
    stats = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}").stats
    assert (stats.failures, stats.ignored, stats.successes) == (1, RETRIES, 0)


def test_a_call_that_succeeds_on_a_retry_is_one_success(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    assert requests.get(http_server.url("/flaky/a/1"), timeout=5).status_code == 200
    stats = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}").stats
    assert (stats.failures, stats.ignored, stats.successes) == (0, 1, 1)
    assert len(instrumented.finished()) == 2


def test_a_dropped_connection_retried_to_exhaustion_is_one_failure(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(http_server.url("/drop"), timeout=5)
    stats = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}").stats
    assert (stats.failures, stats.ignored) == (1, RETRIES)


def test_a_failing_route_among_healthy_traffic_never_opens_the_host(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    """A test session: some tests expect a 500 from one route, the rest use others."""
    for _ in range(2):  # once took the host down for 10 s: 6 attempts, 6 strikes
        assert requests.get(http_server.url("/status/500"), timeout=5).status_code == 500
    for _ in range(40):
        assert requests.get(http_server.url("/ok"), timeout=5).status_code == 200
    for _ in range(10):  # the broken route, again and again, between healthy calls
        assert requests.get(http_server.url("/status/500"), timeout=5).status_code == 500
        for _ in range(3):
            assert requests.get(http_server.url("/ok"), timeout=5).status_code == 200
    breaker = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}")
    assert breaker.state == "closed"
    assert breaker.stats.rejections == 0


def _calls_until_rejected(call: object, limit: int = 20) -> int:
    for number in range(1, limit + 1):
        try:
            call()  # type: ignore[operator]
        except (RequestsCircuitOpenError, httpx.ConnectError) as error:
            if "rejected" in str(error):
                return number
        except (requests.ConnectionError, httpx.TransportError):
            pass
    raise AssertionError(f"still not rejected after {limit} calls")


def test_nothing_listening_opens_the_host_within_a_few_calls(instrumented: Instrumented) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port()}/any/route"
    consecutive = DEFAULTS.consecutive_failures
    assert consecutive is not None
    assert _calls_until_rejected(lambda: requests.get(url, timeout=5)) == consecutive + 1


def test_5xx_on_every_route_opens_the_host_within_a_few_calls(
    http_server: ScriptedHttpServer,
) -> None:
    consecutive = DEFAULTS.consecutive_failures
    assert consecutive is not None
    routes = iter(f"/status/{500 + number % 4}?route={number}" for number in range(100))
    for _ in instrument(HTTPXClientInstrumentor(), DEFAULTS, retries=RETRIES):
        calls = _calls_until_rejected(lambda: httpx.get(http_server.url(next(routes)), timeout=5))
        assert calls == consecutive + 1
