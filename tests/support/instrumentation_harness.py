"""One harness for the instrumentation tests: real SDK providers with in-memory readers.

The HTTP (requests, httpx) and database (sqlite3, psycopg, psycopg2, PyMySQL, redis) tests
drive their instrumentors through the same helper, so that all are checked against the
same expectations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from http_test_server import ScriptedHttpServer
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_resilience import BreakerPolicy, CircuitBreakerRegistry
from otel_resilience.sdk.settings import RetrySettings


@dataclass
class Instrumented:
    """What an instrumented test sees: finished spans, metric points, the breakers."""

    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    registry: CircuitBreakerRegistry

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def duration_points(self, name: str = "http.client.request.duration") -> list[Any]:
        """The points of the duration histogram ``name`` (the HTTP one by default)."""
        data = self.metrics.get_metrics_data()
        if data is None:  # nothing recorded at all
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


def instrument(
    instrumentor: Any,
    policy: BreakerPolicy | None = None,
    retries: int = 2,
    backoff: float = 0,
    clock: Callable[[], float] = time.perf_counter,
    **options: Any,
) -> Iterator[Instrumented]:
    """Instrument with fresh providers, a fresh registry and quick retries; then undo it.

    The breakers read ``clock``: a test hands in a ``FakeClock`` to move past a recovery
    timeout at once. ``options`` go to ``instrument()`` as they are (``resilience=``,
    ``retry_read_only=``).
    """
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    registry = CircuitBreakerRegistry(policy or BreakerPolicy(recovery_jitter=0), clock=clock)
    instrumentor.instrument(
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
        registry=registry,
        retry=RetrySettings(
            max_retries=retries,
            initial_backoff=backoff,
            max_backoff=backoff,
            jitter="none",
            budget_ratio=10,
        ),
        **options,
    )
    try:
        yield Instrumented(spans, reader, registry)
    finally:
        instrumentor.uninstrument()


def assert_one_traced_request(
    instrumented: Instrumented, http_server: ScriptedHttpServer, scope: str
) -> None:
    """One GET /ok?token=secret&page=2: its span, its metric point, its traceparent."""
    (span,) = instrumented.finished()
    assert (span.name, span.kind) == ("GET", SpanKind.CLIENT)
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == scope
    attributes = dict(span.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == http_server.port
    assert attributes["http.response.status_code"] == 200
    assert attributes["network.protocol.version"] == "1.1"
    assert attributes["url.full"] == http_server.url("/ok?token=REDACTED&page=REDACTED")
    assert "http.request.resend_count" not in attributes
    assert "url.scheme" not in attributes  # opt-in on spans; url.full holds it
    (received,) = http_server.received
    context = span.get_span_context()
    assert context is not None
    version, trace_id, span_id, flags = received.headers["traceparent"].split("-")
    assert (version, trace_id, span_id) == (
        "00",
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
    )
    assert int(flags, 16) & 1  # sampled
    (point,) = instrumented.duration_points()
    assert point.count == 1
    assert dict(point.attributes)["http.response.status_code"] == 200
    assert dict(point.attributes)["url.scheme"] == "http"  # the dashboards group by it
    assert "url.full" not in dict(point.attributes)  # low cardinality only
