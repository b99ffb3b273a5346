"""The requests instrumentation against a real server on 127.0.0.1 and the real SDK."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from http_test_server import ScriptedHttpServer
from instrumentation_harness import Instrumented, assert_one_traced_request
from instrumentation_harness import instrument as instrument_with
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from otel_resilience_instrumentation_requests import (
    RequestsCircuitOpenError,
    RequestsInstrumentor,
)
from otlp_receiver import unused_tcp_port

from otel_resilience import BreakerPolicy, CircuitBreakerRegistry, CircuitOpenError
from otel_resilience.sdk.settings import RetrySettings


def instrument(policy: BreakerPolicy | None = None, retries: int = 2) -> Iterator[Instrumented]:
    yield from instrument_with(RequestsInstrumentor(), policy, retries)


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument()


def test_a_request_gets_a_client_span_a_metric_and_propagated_context(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    response = requests.get(http_server.url("/ok?token=secret&page=2"), timeout=5)
    assert response.status_code == 200
    assert_one_traced_request(instrumented, http_server, "otel_resilience.instrumentation.requests")


def test_credentials_never_reach_the_span(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    url = http_server.url("/ok").replace("http://", "http://alice:hunter2@")
    requests.get(url, timeout=5)
    (span,) = instrumented.finished()
    assert (span.attributes or {})["url.full"] == url.replace("alice:hunter2", "REDACTED:REDACTED")


def test_idempotent_requests_are_retried_and_each_attempt_is_a_span(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    response = requests.get(http_server.url("/status/503"), timeout=5)
    assert response.status_code == 503
    assert len(http_server.received) == 3  # the first attempt and two retries
    spans = instrumented.finished()
    assert [(s.attributes or {}).get("http.request.resend_count") for s in spans] == [None, 1, 2]
    assert all(s.status.status_code == StatusCode.ERROR for s in spans)
    assert all((s.attributes or {})["error.type"] == "503" for s in spans)
    (point,) = instrumented.duration_points()
    assert point.count == 3


def test_post_is_never_retried(instrumented: Instrumented, http_server: ScriptedHttpServer) -> None:
    assert (
        requests.post(http_server.url("/status/503"), data=b"order", timeout=5).status_code == 503
    )
    assert len(http_server.received) == 1


def test_other_4xx_are_not_failures(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    for _ in range(10):
        assert requests.get(http_server.url("/status/404"), timeout=5).status_code == 404
    breaker = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}")
    assert (breaker.stats.successes, breaker.stats.failures) == (10, 0)
    assert len(http_server.received) == 10


def test_the_breaker_opens_and_then_rejects_without_touching_the_network(
    http_server: ScriptedHttpServer,
) -> None:
    for instrumented in instrument(BreakerPolicy(consecutive_failures=3), retries=0):
        for _ in range(3):
            requests.get(http_server.url("/status/500"), timeout=5)
        http_server.clear()
        with pytest.raises(requests.exceptions.ConnectionError) as rejected:
            requests.get(http_server.url("/ok"), timeout=5)
        assert isinstance(rejected.value, RequestsCircuitOpenError)
        assert isinstance(rejected.value, CircuitOpenError)
        assert f"127.0.0.1:{http_server.port}" in str(rejected.value)
        assert http_server.received == []
        last = instrumented.finished()[-1]
        assert (last.attributes or {})["error.type"] == "RequestsCircuitOpenError"


def test_retry_after_keeps_the_breaker_open_that_long(http_server: ScriptedHttpServer) -> None:
    policy = BreakerPolicy(consecutive_failures=1, recovery_timeout=1, recovery_jitter=0)
    for instrumented in instrument(policy, retries=0):
        requests.get(http_server.url("/retry-after/120"), timeout=5)
        breaker = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}")
        assert breaker.state == "open"
        assert breaker.seconds_until_trial() > 100


def test_connection_refused_is_a_failure_and_is_retried(instrumented: Instrumented) -> None:
    port = unused_tcp_port()
    url = f"http://127.0.0.1:{port}/ok"
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, timeout=5)
    spans = instrumented.finished()
    assert len(spans) == 3
    assert {(s.attributes or {})["error.type"] for s in spans} == {"ConnectionError"}
    breaker = instrumented.registry.get(f"http://127.0.0.1:{port}")
    # one logical call retried to exhaustion: one failure, its retried-past attempts neither
    assert (breaker.stats.failures, breaker.stats.ignored) == (1, 2)


def test_suppressed_requests_pass_through(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    with suppress_instrumentation():
        requests.get(http_server.url("/ok"), timeout=5)
    assert instrumented.finished() == []
    assert "traceparent" not in http_server.received[0].headers


def test_uninstrument_restores_the_original(http_server: ScriptedHttpServer) -> None:
    original = requests.Session.send
    for _ in instrument():
        assert requests.Session.send is not original
    assert requests.Session.send is original
    requests.get(http_server.url("/ok"), timeout=5)
    assert "traceparent" not in http_server.received[0].headers


def test_excluded_endpoints_get_no_breaker_and_no_retries(http_server: ScriptedHttpServer) -> None:
    for instrumented in instrument(BreakerPolicy(consecutive_failures=1), retries=2):
        instrumented.registry.exclude("127.0.0.1")
        for _ in range(3):
            assert requests.get(http_server.url("/status/503"), timeout=5).status_code == 503
        assert len(http_server.received) == 3  # never rejected, never retried
        assert len(instrumented.finished()) == 3  # the spans stay
        assert len(instrumented.registry) == 0


def test_a_dropped_connection_and_a_timeout_count_against_the_endpoint(
    http_server: ScriptedHttpServer,
) -> None:
    for instrumented in instrument(BreakerPolicy(consecutive_failures=5), retries=0):
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(http_server.url("/drop"), timeout=5)
        with pytest.raises(requests.exceptions.Timeout):
            requests.get(http_server.url("/slow/500"), timeout=0.1)
        breaker = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}")
        assert breaker.stats.failures == 2
        error_types = [(s.attributes or {})["error.type"] for s in instrumented.finished()]
        assert error_types == ["ConnectionError", "ReadTimeout"]


def test_retries_are_bounded_by_the_budget(http_server: ScriptedHttpServer) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    RequestsInstrumentor().instrument(
        tracer_provider=tracer_provider,
        registry=CircuitBreakerRegistry(
            BreakerPolicy(consecutive_failures=None, failure_rate_threshold=None)
        ),
        retry=RetrySettings(
            max_retries=2, initial_backoff=0, max_backoff=0, jitter="none", budget_ratio=0
        ),
    )
    try:
        for _ in range(20):
            requests.get(http_server.url("/status/503"), timeout=5)
    finally:
        RequestsInstrumentor().uninstrument()
    # A ratio of 0 leaves the floor: one retry per second over the 10 s window.
    assert len(http_server.received) == 20 + 10


@pytest.mark.parametrize(
    "retry_after",
    [
        "%B2",  # a non-ASCII digit (latin-1 superscript two): not delta-seconds
        "99999999999999999999999",  # absurdly long
        "Fri%2C%2031%20Dec%209999%2023%3A59%3A59%20GMT",  # far in the future
        "Mon%2C%2099%20Foo%20-1%20nonsense",  # no date at all
    ],
)
def test_a_hostile_retry_after_never_breaks_the_request(
    http_server: ScriptedHttpServer, retry_after: str
) -> None:
    """The server's header is the server's: an invalid one is ignored, a valid one capped."""
    policy = BreakerPolicy(consecutive_failures=1, max_recovery_timeout=30, recovery_jitter=0)
    for instrumented in instrument(policy, retries=2):
        response = requests.get(http_server.url(f"/retry-after/{retry_after}"), timeout=5)
        assert response.status_code == 429
        (span,) = instrumented.finished()[-1:]
        assert span.end_time is not None
        breaker = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}")
        assert breaker.state == "open"
        assert breaker.seconds_until_trial() <= 30
