"""The core's outgoing-HTTP helpers: breaker names, redaction, Retry-After, fail-safety."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    INVALID_SPAN,
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    TraceState,
)
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otel_resilience import CircuitBreakerRegistry, CircuitOpenError, metrics
from otel_resilience.instrumentation._http_client import (
    HttpRequest,
    OutgoingHttp,
    _inject,
    endpoint_key,
    redact_url,
    retry_after_seconds,
)
from otel_resilience.metrics._otlp import RegistryMetricReader
from otel_resilience.sdk.settings import RetrySettings


@pytest.mark.parametrize(
    ("scheme", "host", "port", "key"),
    [
        ("https", "API.Example.com", None, "https://api.example.com:443"),
        ("http", "api.example.com", None, "http://api.example.com:80"),
        ("HTTP", "127.0.0.1", 8080, "http://127.0.0.1:8080"),
        ("http", "::1", 8080, "http://[::1]:8080"),
    ],
)
def test_endpoint_keys(scheme: str, host: str, port: int | None, key: str) -> None:
    assert endpoint_key(scheme, host, port) == key


def test_redaction_keeps_the_shape_and_drops_secrets() -> None:
    assert (
        redact_url("https://alice:s3cret@api.example.com/v1/items?token=abc&page=2&flag#top")
        # a bare query key is a value in all but name; the fragment is dropped (OAuth's
        # implicit flow puts tokens there)
        == "https://REDACTED:REDACTED@api.example.com/v1/items?token=REDACTED&page=REDACTED&REDACTED"
    )
    assert redact_url("http://127.0.0.1:8080/health") == "http://127.0.0.1:8080/health"


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(formatdate(1_000_030, usegmt=True), now=1_000_000) == 30.0
    assert retry_after_seconds(formatdate(999_000, usegmt=True), now=1_000_000) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


class _Library:
    name = "test"
    transport_errors: tuple[type[BaseException], ...] = (ConnectionError,)
    rejection_error: type[CircuitOpenError] = CircuitOpenError
    body_read_later = False

    def blames_endpoint(self, error: BaseException, request: HttpRequest) -> bool:
        return True

    def status_code(self, response: str) -> int:
        return 200

    def header(self, response: str, name: str) -> str | None:
        return None

    def protocol_version(self, response: str) -> str | None:
        return None

    def discard(self, response: str) -> None:
        return None

    def when_read(self, response: str, finish: Callable[[BaseException | None], None]) -> bool:
        return False


def test_a_url_we_cannot_read_goes_out_uninstrumented(caplog: pytest.LogCaptureFixture) -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    outgoing: OutgoingHttp[str] = OutgoingHttp(
        _Library(),
        tracer_provider=provider,
        registry=CircuitBreakerRegistry(),
        retry=RetrySettings(2, 0, 0, "none", 0.2),
    )
    url = "http://alice:s3cret@127.0.0.1:99999/"  # the port is out of range
    with caplog.at_level(logging.WARNING):
        assert outgoing.send(HttpRequest("GET", url, {}, True), lambda: "sent") == "sent"
    assert spans.get_finished_spans() == ()
    (record,) = caplog.records
    assert "not instrumented" in record.getMessage()
    assert "s3cret" not in record.getMessage()


class _Vendor(TextMapPropagator):
    """A propagator of some other format: the shortcut must leave it to propagate.inject."""

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        carrier["x-vendor"] = "on"

    def extract(self, carrier: Any, context: Context | None = None, getter: Any = None) -> Context:
        return context if context is not None else Context()

    @property
    def fields(self) -> set[str]:
        return {"x-vendor"}


def _sending(span: trace.Span, with_baggage: bool) -> Context:
    current = baggage.set_baggage("tenant", "a b") if with_baggage else otel_context.get_current()
    return Context({**current, _SPAN_KEY: span})


@pytest.mark.parametrize(
    "ids",
    [
        (0x0AF7651916CD43DD8448EB211C80319C, 0x00F067AA0BA902B7, 1),
        (0x1, 0x2, 0),  # leading zeros, flags off
        (2**128 - 1, 2**64 - 1, 0xFF),
        (2**128 + 5, 2**64 + 7, 1),  # out of range (a custom id generator): written as upstream
        (-3, 5, 256),  # nonsense ids and flags: still what upstream writes
    ],
    ids=["sampled", "small", "largest", "out-of-range", "nonsense"],
)
@pytest.mark.parametrize("with_baggage", [False, True])
@pytest.mark.parametrize("trace_state", [TraceState(), TraceState([("vendor", "x1")])])
@pytest.mark.parametrize(
    "propagators",
    [
        (TraceContextTextMapPropagator(), W3CBaggagePropagator()),
        (W3CBaggagePropagator(), TraceContextTextMapPropagator()),
        (TraceContextTextMapPropagator(),),
        (TraceContextTextMapPropagator(), _Vendor()),
    ],
    ids=["tracecontext,baggage", "baggage,tracecontext", "tracecontext", "with-another"],
)
def test_injection_writes_what_the_global_propagator_writes(
    propagators: tuple[TextMapPropagator, ...],
    trace_state: TraceState,
    with_baggage: bool,
    ids: tuple[int, int, int],
) -> None:
    """The W3C shortcut of _inject: the same headers, in the same order, as propagate.inject."""
    trace_id, span_id, flags = ids
    span = NonRecordingSpan(SpanContext(trace_id, span_id, False, TraceFlags(flags), trace_state))
    sending = _sending(span, with_baggage)
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator(list(propagators)))
    try:
        expected: dict[str, str] = {}
        propagate.inject(expected, context=sending)
        ours: dict[str, str] = {}
        _inject(span, sending, ours)
    finally:
        propagate.set_global_textmap(previous)
    assert list(ours.items()) == list(expected.items())
    assert "traceparent" in ours


def test_injection_of_an_invalid_span_writes_nothing() -> None:
    sending = _sending(INVALID_SPAN, with_baggage=False)
    expected: dict[str, str] = {}
    propagate.inject(expected, context=sending)
    ours: dict[str, str] = {}
    _inject(INVALID_SPAN, sending, ours)
    assert ours == expected == {}


class _KeptMetrics(MetricExporter):
    """Keeps the last batch a reader exported."""

    def __init__(self) -> None:
        super().__init__()
        self.data: MetricsData | None = None

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.data = metrics_data
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Nothing to release."""


def _duration_points(
    data: MetricsData | None, port: int
) -> list[tuple[str, str | None, dict[str, Any], Any]]:
    """(scope, unit, attributes, point) of the http.client.request.duration points of
    requests to ``port`` (the registry's series live as long as the process)."""
    assert data is not None
    return [
        (scope_metrics.scope.name, metric.unit, dict(point.attributes or {}), point)
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == "http.client.request.duration"
        for point in metric.data.data_points
        if (point.attributes or {}).get("server.port") == port
    ]


def test_the_duration_histogram_is_exported_alike_through_a_registry_or_the_sdk() -> None:
    """A provider that exports the registries gets the cheap registry histogram, any other
    the SDK's instrument; a collector sees the same metric from either."""
    kept = _KeptMetrics()
    exporting = MeterProvider(
        metric_readers=[
            RegistryMetricReader(kept, Resource.create(), export_interval_millis=math.inf)
        ]
    )
    plain_reader = InMemoryMetricReader()
    plain = MeterProvider(metric_readers=[plain_reader])
    port = 47_931  # no other test's
    url = f"http://127.0.0.1:{port}/orders?id=7"
    for provider in (exporting, plain):
        outgoing: OutgoingHttp[str] = OutgoingHttp(
            _Library(), meter_provider=provider, resilience=False
        )
        assert outgoing.send(HttpRequest("GET", url, {}, True), lambda: "sent") == "sent"
    exporting.force_flush()
    through_registry = _duration_points(kept.data, port)
    through_sdk = _duration_points(plain_reader.get_metrics_data(), port)
    assert len(through_registry) == len(through_sdk) == 1
    (scope, unit, attributes, point), (sdk_scope, sdk_unit, sdk_attributes, sdk_point) = (
        through_registry[0],
        through_sdk[0],
    )
    assert (scope, unit, attributes) == (sdk_scope, sdk_unit, sdk_attributes)
    assert scope == "otel_resilience.instrumentation.http"
    assert attributes == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": port,
        "url.scheme": "http",
        "http.response.status_code": 200,
    }
    assert point.explicit_bounds == sdk_point.explicit_bounds
    assert point.count == sdk_point.count == 1
    # The first request went to the registry (one point there), the second to the SDK.
    (scope_snapshot,) = [
        entry
        for entry in metrics.snapshot()["scopes"]
        if entry["name"] == "otel_resilience.instrumentation.http"
    ]
    (registry_point,) = [
        point
        for metric in scope_snapshot["metrics"]
        for point in metric["points"]
        if point["attributes"].get("server.port") == port
    ]
    assert registry_point["count"] == 1
    exporting.shutdown()
    plain.shutdown()
