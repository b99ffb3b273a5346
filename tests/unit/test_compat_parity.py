"""Each entry of ``otel_resilience._compat`` checked against the public behaviour it stands for.

One test per entry, named after it: an SDK upgrade that moves or changes an internal fails
the test of that entry and no other, and ``_compat.py`` is the file to change. Everything
runs in this process, against the installed upstream packages: no server, no network.
"""

from __future__ import annotations

import ast
import importlib
import io
import json
import logging
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points as stdlib_entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry._logs import _internal as logs_api_internals
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.exporter.http.transport._base import BaseHTTPResult, BaseHTTPTransport
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.instrumentation.utils import (
    is_http_instrumentation_enabled,
    is_instrumentation_enabled,
    suppress_http_instrumentation,
    suppress_instrumentation,
)
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter as SdkCounter
from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
    Sum,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util._once import Once
from prometheus_client import CollectorRegistry

from otel_resilience import _compat

REPOSITORY = Path(__file__).resolve().parents[2]
COMPAT_SOURCE = REPOSITORY / "otel_resilience" / "_compat.py"


# --- the module itself --------------------------------------------------------------------


def test_every_entry_resolves_to_the_upstream_object_it_names() -> None:
    for name, (module_name, upstream_name) in _compat._UPSTREAM.items():
        upstream = getattr(importlib.import_module(module_name), upstream_name)
        assert getattr(_compat, name) is upstream, name


def _type_checking_imports() -> dict[str, tuple[str, str]]:
    """``local name -> (module, upstream name)`` of the ``if TYPE_CHECKING:`` imports."""
    tree = ast.parse(COMPAT_SOURCE.read_text())
    found: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    for alias in statement.names:
                        found[alias.asname or alias.name] = (statement.module, alias.name)
    return found


def test_type_checkers_see_every_entry_as_the_same_upstream_object() -> None:
    seen_by_type_checkers = _type_checking_imports()
    for name, target in _compat._UPSTREAM.items():
        assert seen_by_type_checkers.get(name) == target, name
    exported_upstream_names = set(_compat.__all__) & set(seen_by_type_checkers)
    assert exported_upstream_names <= set(_compat._UPSTREAM)


def test_every_exported_name_resolves() -> None:
    for name in _compat.__all__:
        assert getattr(_compat, name) is not None, name


def test_importing_the_module_imports_nothing_but_the_standard_library() -> None:
    """A leaf, and cheap: upstream is imported name by name, on first use."""
    tree = ast.parse(COMPAT_SOURCE.read_text())
    imported: list[str] = []
    for node in tree.body:  # module level only: TYPE_CHECKING blocks and functions aside
        if isinstance(node, ast.Import):
            imported.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    top_level = {name.partition(".")[0] for name in imported}
    assert top_level <= set(sys.stdlib_module_names) | {"__future__"}, top_level


_PRIVATE_PATH = "opentelemetry."


def _private_uses(path: Path) -> list[str]:
    """Imports of upstream private names or modules, and dotted strings naming them."""
    tree = ast.parse(path.read_text(), filename=str(path))
    uses = []
    for node in ast.walk(tree):
        modules: list[str] = []
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module)
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith(_PRIVATE_PATH)
            and " " not in node.value
        ):
            modules.append(node.value.partition(":")[0])
        for module in modules:
            if not module.startswith("opentelemetry"):
                continue
            private_module = any(part.startswith("_") for part in module.split("."))
            private_names = [name for name in names if name.startswith("_")]
            if private_module or private_names:
                line = getattr(node, "lineno", 0)
                uses.append(f"{path.relative_to(REPOSITORY)}:{line}: {module}")
    return uses


def test_no_module_but_compat_imports_upstream_internals() -> None:
    sources = [
        *(REPOSITORY / "otel_resilience").rglob("*.py"),
        *(REPOSITORY / "instrumentations").glob("*/src/**/*.py"),
    ]
    uses = [use for path in sources if path != COMPAT_SOURCE for use in _private_uses(path)]
    assert uses == []


# --- context keys ---------------------------------------------------------------------------

_SPAN_CONTEXT = SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0xB7AD6B7169203331,
    is_remote=False,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
)


def test_span_key_is_where_set_span_in_context_stores_the_span() -> None:
    span = NonRecordingSpan(_SPAN_CONTEXT)
    assert trace.set_span_in_context(span).get(_compat.SPAN_KEY) is span
    assert trace.get_current_span(context.Context({_compat.SPAN_KEY: span})) is span


def test_baggage_key_is_where_set_baggage_stores_the_baggage() -> None:
    assert baggage.set_baggage("tenant", "acme").get(_compat.BAGGAGE_KEY) == {"tenant": "acme"}
    stored = context.Context({_compat.BAGGAGE_KEY: {"tenant": "acme"}})
    assert baggage.get_all(stored) == {"tenant": "acme"}
    # Read directly to skip the baggage propagator when there is nothing to write.
    for empty in (context.Context(), context.Context({_compat.BAGGAGE_KEY: {}})):
        carrier: dict[str, str] = {}
        W3CBaggagePropagator().inject(carrier, context=empty)
        assert carrier == {}


def test_suppress_instrumentation_key_is_set_by_suppress_instrumentation() -> None:
    with suppress_instrumentation():
        assert context.get_value(_compat.SUPPRESS_INSTRUMENTATION_KEY) is True
    token = context.attach(context.set_value(_compat.SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        assert not is_instrumentation_enabled()
    finally:
        context.detach(token)


def test_suppress_instrumentation_key_plain_is_set_by_suppress_instrumentation() -> None:
    with suppress_instrumentation():
        assert context.get_value(_compat.SUPPRESS_INSTRUMENTATION_KEY_PLAIN) is True
    token = context.attach(context.set_value(_compat.SUPPRESS_INSTRUMENTATION_KEY_PLAIN, True))
    try:
        assert not is_instrumentation_enabled()
    finally:
        context.detach(token)


def test_suppress_http_instrumentation_key_is_set_by_suppress_http_instrumentation() -> None:
    with suppress_http_instrumentation():
        assert context.get_value(_compat.SUPPRESS_HTTP_INSTRUMENTATION_KEY) is True
    token = context.attach(context.set_value(_compat.SUPPRESS_HTTP_INSTRUMENTATION_KEY, True))
    try:
        assert not is_http_instrumentation_enabled()
        assert is_instrumentation_enabled()
    finally:
        context.detach(token)


def _suppression_contexts() -> Iterator[str]:
    """Enter each way of suppressing instrumentation in turn, naming it."""
    yield "nothing suppressed"
    with suppress_instrumentation():
        yield "suppress_instrumentation()"
    with suppress_http_instrumentation():
        yield "suppress_http_instrumentation()"
    for key in (
        _compat.SUPPRESS_INSTRUMENTATION_KEY,
        _compat.SUPPRESS_INSTRUMENTATION_KEY_PLAIN,
        _compat.SUPPRESS_HTTP_INSTRUMENTATION_KEY,
    ):
        token = context.attach(context.set_value(key, True))
        try:
            yield f"only {key!r}"
        finally:
            context.detach(token)


def test_instrumentation_suppressed_is_not_is_instrumentation_enabled() -> None:
    for case in _suppression_contexts():
        suppressed = _compat.instrumentation_suppressed(context.get_current())
        assert suppressed is (not is_instrumentation_enabled()), case


def test_http_instrumentation_suppressed_is_not_is_http_instrumentation_enabled() -> None:
    for case in _suppression_contexts():
        suppressed = _compat.http_instrumentation_suppressed(context.get_current())
        assert suppressed is (not is_http_instrumentation_enabled()), case


# --- propagation ----------------------------------------------------------------------------


def test_propagators_run_by_a_composite_are_its_members_in_order() -> None:
    members = (TraceContextTextMapPropagator(), W3CBaggagePropagator())
    composite = CompositePropagator(list(members))
    assert _compat.propagators_run_by(composite) == members
    assert _compat.propagators_run_by(members[0]) == (members[0],)

    sending = baggage.set_baggage(
        "tenant", "acme", trace.set_span_in_context(NonRecordingSpan(_SPAN_CONTEXT))
    )
    by_composite: dict[str, str] = {}
    composite.inject(by_composite, context=sending)
    one_by_one: dict[str, str] = {}
    for propagator in _compat.propagators_run_by(composite):
        propagator.inject(one_by_one, context=sending)
    assert one_by_one == by_composite


@pytest.mark.parametrize(
    ("trace_id", "span_id", "flags"),
    [
        (_SPAN_CONTEXT.trace_id, _SPAN_CONTEXT.span_id, 1),
        (1, 1, 0),
        (2**128 - 1, 2**64 - 1, 255),
        (2**128, 2**64, 1),  # out of range: written as upstream formats them
        (-5, 7, 1),
        (1, 2, 256),
    ],
)
def test_traceparent_is_what_the_trace_context_propagator_writes(
    trace_id: int, span_id: int, flags: int
) -> None:
    span_context = SpanContext(
        trace_id=trace_id,
        span_id=span_id,
        is_remote=False,
        trace_flags=TraceFlags(flags),
        trace_state=TraceState(),
    )
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(
        carrier, context=trace.set_span_in_context(NonRecordingSpan(span_context))
    )
    assert _compat.traceparent(trace_id, span_id, TraceFlags(flags)) == carrier["traceparent"]


# --- the logs API and SDK -------------------------------------------------------------------


@pytest.fixture
def unset_global_logger_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API's global logger provider unset for one test, and as it was afterwards."""
    monkeypatch.setattr(logs_api_internals, "_LOGGER_PROVIDER", None)
    monkeypatch.setattr(logs_api_internals, "_LOGGER_PROVIDER_SET_ONCE", Once())
    monkeypatch.delenv("OTEL_PYTHON_LOGGER_PROVIDER", raising=False)


def _in_memory_log_exporter() -> InMemoryLogRecordExporter:
    return InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]


def _provider_exporting_to(exporter: Any) -> Any:
    provider = _compat.SdkLoggerProvider(
        resource=Resource({"service.name": "parity"}), shutdown_on_exit=False
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return provider


def _api_record(**fields: Any) -> Any:
    return _compat.ApiLogRecord(
        timestamp=1_700_000_000_000_000_000,
        context=trace.set_span_in_context(NonRecordingSpan(_SPAN_CONTEXT)),
        severity_number=_compat.SeverityNumber.WARN,
        severity_text="WARN",
        body="order 17 placed",
        attributes={"request_id": "r-1"},
        **fields,
    )


@pytest.mark.usefixtures("unset_global_logger_provider")
def test_set_logger_provider_installs_what_get_logger_provider_returns() -> None:
    early = _compat.get_logger_provider().get_logger("early")  # taken before: a proxy
    exporter = _in_memory_log_exporter()
    provider = _provider_exporting_to(exporter)
    _compat.set_logger_provider(provider)
    assert _compat.get_logger_provider() is provider
    early.emit(_api_record())
    assert [item.log_record.body for item in exporter.get_finished_logs()] == ["order 17 placed"]


def test_sdk_logger_provider_is_an_api_logger_provider_handing_out_api_loggers() -> None:
    provider = _compat.SdkLoggerProvider(shutdown_on_exit=False)
    assert isinstance(provider, _compat.ApiLoggerProvider)
    assert isinstance(provider.get_logger("parity"), _compat.ApiLogger)


def test_no_op_logger_is_what_a_disabled_sdk_hands_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    provider = _compat.SdkLoggerProvider(shutdown_on_exit=False)
    assert isinstance(provider.get_logger("parity"), _compat.NoOpLogger)


def test_api_log_record_reaches_exporters_as_a_readable_log_record() -> None:
    exporter = _in_memory_log_exporter()
    _provider_exporting_to(exporter).get_logger("parity").emit(_api_record())
    (readable,) = exporter.get_finished_logs()
    assert isinstance(readable, _compat.ReadableLogRecord)
    record = readable.log_record
    assert record.severity_number is _compat.SeverityNumber.WARN
    assert (record.severity_text, record.body) == ("WARN", "order 17 placed")
    assert dict(record.attributes or {}) == {"request_id": "r-1"}
    assert (record.trace_id, record.span_id) == (_SPAN_CONTEXT.trace_id, _SPAN_CONTEXT.span_id)
    assert readable.resource.attributes["service.name"] == "parity"


class _RecordingLogExporter(_compat.LogRecordExporter):
    """Keeps each batch, and whether instrumentation was suppressed while exporting it."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.suppressed: list[bool] = []

    def export(self, batch: Sequence[Any]) -> Any:
        self.batches.append(list(batch))
        self.suppressed.append(context.get_value(_compat.SUPPRESS_INSTRUMENTATION_KEY) is True)
        return _compat.LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def _batched_provider(exporter: Any) -> Any:
    provider = _compat.SdkLoggerProvider(shutdown_on_exit=False)
    # The keywords sdk/_providers.py passes.
    provider.add_log_record_processor(
        _compat.BatchLogRecordProcessor(
            exporter,
            max_queue_size=64,
            schedule_delay_millis=60_000,
            max_export_batch_size=8,
            export_timeout_millis=5_000,
        )
    )
    return provider


def test_batch_log_record_processor_hands_log_record_exporters_batches_of_readable_records() -> (
    None
):
    exporter = _RecordingLogExporter()
    provider = _batched_provider(exporter)
    for _ in range(3):
        provider.get_logger("parity").emit(_api_record())
    assert provider.force_flush(5_000)
    records = [item for batch in exporter.batches for item in batch]
    assert len(records) == 3
    assert all(isinstance(item, _compat.ReadableLogRecord) for item in records)
    provider.shutdown()


def test_suppress_instrumentation_key_is_set_around_the_sdks_log_exports() -> None:
    """What our OTLP log handler relies on to keep an exporter's own records out."""
    exporter = _RecordingLogExporter()
    provider = _batched_provider(exporter)
    provider.get_logger("parity").emit(_api_record())
    assert provider.force_flush(5_000)
    assert exporter.suppressed == [True]
    provider.shutdown()


def test_console_log_record_exporter_writes_each_record_as_json() -> None:
    records = _in_memory_log_exporter()
    _provider_exporting_to(records).get_logger("parity").emit(_api_record())
    out = io.StringIO()
    result = _compat.ConsoleLogRecordExporter(out=out).export(records.get_finished_logs())
    assert result is _compat.LogRecordExportResult.SUCCESS
    assert json.loads(out.getvalue())["body"] == "order 17 placed"


# --- OTLP log export ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer(BaseHTTPResult):
    def content(self) -> bytes:
        return b""

    def headers(self) -> Mapping[str, str]:
        return {}


class _InMemoryTransport(BaseHTTPTransport):
    """The HTTP exporters' transport seam, answering every request with one status."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[bytes] = []

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        data: bytes | None = None,
    ) -> BaseHTTPResult:
        self.bodies.append(data or b"")
        return _Answer(status_code=self.status, reason="scripted")

    def close(self) -> None:
        pass

    def is_connection_error(self, exception: Exception | None) -> bool:
        return False


def _http_log_exporter(transport: _InMemoryTransport, **options: Any) -> Any:
    return _compat.UpstreamOtlpHttpLogExporter(
        endpoint="http://127.0.0.1:4318/v1/logs", _transport=transport, **options
    )


def _readable_records(**fields: Any) -> list[Any]:
    exporter = _in_memory_log_exporter()
    logger = _provider_exporting_to(exporter).get_logger("parity")
    logger.emit(_api_record(**fields))
    return list(exporter.get_finished_logs())


_UNCOMMON_VALUES: dict[str, Any] = {
    "bytes": b"\x00\xff",
    "ints": (1, 2, 3),
    "strings": ["a", "b"],
    "floats": (0.5, 1.5),
    "mapping": {"nested": {"deeper": [1, "x", True]}},
    "mixed": [1, "x", None],
}


def test_encode_any_value_is_how_the_otlp_log_exporter_encodes_values() -> None:
    transport = _InMemoryTransport()
    exporter = _http_log_exporter(transport)
    body = {"order": 17, "items": ["a", "b"], "raw": b"\x01"}
    batch = _readable_records()
    batch[0].log_record.attributes = _UNCOMMON_VALUES
    batch[0].log_record.body = body
    assert exporter.export(batch) is _compat.LogRecordExportResult.SUCCESS
    request = ExportLogsServiceRequest.FromString(transport.bodies[0])
    (sent,) = request.resource_logs[0].scope_logs[0].log_records
    assert {item.key: item.value for item in sent.attributes} == {
        key: _compat.encode_any_value(value) for key, value in _UNCOMMON_VALUES.items()
    }
    assert sent.body == _compat.encode_any_value(body)
    with pytest.raises(Exception, match="Invalid type"):
        _compat.encode_any_value(object())


def test_plain_attributes_yields_what_bounded_attributes_yields() -> None:
    bounded = BoundedAttributes(
        maxlen=3, attributes={"a": 1, "b": "x", "c": (1, 2), "d": True}, immutable=False
    )
    bounded["b"] = "y"  # moved to the end
    assert list(_compat.plain_attributes(bounded).items()) == list(bounded.items())
    (readable,) = _readable_records()
    attributes = readable.log_record.attributes
    assert type(attributes) is BoundedAttributes  # a log record's: the fast path is taken
    assert list(_compat.plain_attributes(attributes).items()) == list(attributes.items())
    plain = {"a": 1}
    assert _compat.plain_attributes(plain) is plain


def _upstream_encoding(batch: Sequence[Any]) -> bytes:
    return bytes(encode_logs(batch).SerializeToString())


def _exporter_metrics(reader: InMemoryMetricReader) -> list[tuple[Any, ...]]:
    """The exporter's own metrics, without durations or its per-instance name."""
    data = reader.get_metrics_data()
    found = []
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    attributes = {
                        key: value
                        for key, value in (point.attributes or {}).items()
                        if key != "otel.component.name"
                    }
                    value = getattr(point, "value", None)
                    if value is None:
                        value = getattr(point, "count", None)
                    found.append((metric.name, tuple(sorted(attributes.items())), value))
    return sorted(found, key=repr)


@pytest.mark.parametrize(
    "case", ["sent", "refused by the collector", "too large", "shut down", "unencodable"]
)
def test_export_logs_over_http_is_the_upstream_http_exporters_export(
    case: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    exporter_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http._log_exporter")
    batch = _readable_records()
    if case == "unencodable":
        batch[0].log_record.body = object()
    outcomes = []
    for run in ("upstream", "restated"):
        transport = _InMemoryTransport(400 if case == "refused by the collector" else 200)
        reader = InMemoryMetricReader()
        exporter = _http_log_exporter(
            transport,
            max_request_size=16 if case == "too large" else None,
            meter_provider=MeterProvider(metric_readers=[reader], shutdown_on_exit=False),
        )
        if case == "shut down":
            exporter.shutdown()
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="opentelemetry.exporter.otlp.proto.http"):
            # The exporter's logger drops a record like the one before it (DuplicateFilter):
            # one in between lets each run log what it would log alone.
            exporter_logger.debug("%s run", run)
            caplog.clear()
            if run == "upstream":
                result = exporter.export(batch)
            else:
                result = _compat.export_logs_over_http(exporter, batch, _upstream_encoding)
        logged = [(item.name, item.levelno, item.getMessage()) for item in caplog.records]
        outcomes.append((result, transport.bodies, logged, _exporter_metrics(reader)))
    upstream, restated = outcomes
    assert restated == upstream
    assert upstream[0] is (
        _compat.LogRecordExportResult.SUCCESS
        if case == "sent"
        else _compat.LogRecordExportResult.FAILURE
    )


class _RecordingStub:
    """Stands for the gRPC stub: keeps each request it is given."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def Export(self, request: Any, metadata: Any = None, timeout: Any = None) -> None:
        self.requests.append(request)


def test_upstream_grpc_log_exporter_sends_what_translate_data_returns() -> None:
    """The hook our gRPC log exporter overrides: what it returns is what is sent."""
    marker = ExportLogsServiceRequest()
    marker.resource_logs.add().schema_url = "marker"

    class Translating(_compat.UpstreamOtlpGrpcLogExporter):
        def _translate_data(self, data: Sequence[Any]) -> ExportLogsServiceRequest:
            return marker

    for exporter_class, expected in (
        (_compat.UpstreamOtlpGrpcLogExporter, None),
        (Translating, marker),
    ):
        exporter = exporter_class(endpoint="http://127.0.0.1:4317", insecure=True)
        stub = _RecordingStub()
        exporter._client = stub  # type: ignore[assignment]
        batch = _readable_records()
        try:
            assert exporter.export(batch) is _compat.LogRecordExportResult.SUCCESS
        finally:
            exporter.shutdown()
        (sent,) = stub.requests
        assert sent == (encode_logs(batch) if expected is None else expected)


# --- metrics --------------------------------------------------------------------------------

_INSTRUMENTS: list[tuple[str, str, str]] = [
    # (kind, name, unit)
    ("counter", "app.orders", "{order}"),
    ("counter", "http.requests_total", ""),
    ("counter", "bytes.sent", "By"),
    ("counter", "already_seconds", "s"),
    ("counter", "resilience.retry.attempts", "{attempt}"),
    ("histogram", "http.client.request.duration", "s"),
    ("histogram", "odd-name/with.parts", "ms"),
    ("up_down_counter", "queue.depth", "{item}"),
    ("gauge", "cpu.utilization", "1"),
]


def test_prometheus_family_name_is_how_the_prometheus_reader_names_families() -> None:
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(disable_target_info=True, registry=registry)
    meter = MeterProvider(metric_readers=[reader], shutdown_on_exit=False).get_meter("parity")
    for kind, name, unit in _INSTRUMENTS:
        if kind == "counter":
            meter.create_counter(name, unit=unit).add(1)
        elif kind == "histogram":
            meter.create_histogram(name, unit=unit).record(0.5)
        elif kind == "up_down_counter":
            meter.create_up_down_counter(name, unit=unit).add(1)
        else:
            meter.create_gauge(name, unit=unit).set(0.5)
    try:
        families = {family.name: family.type for family in registry.collect()}
    finally:
        reader.shutdown()
    expected = {
        _compat.prometheus_family_name(name, unit, counter=kind == "counter"): {
            "counter": "counter",
            "histogram": "histogram",
        }.get(kind, "gauge")
        for kind, name, unit in _INSTRUMENTS
    }
    assert families == expected


def test_prometheus_label_name_is_how_the_prometheus_reader_names_labels() -> None:
    keys = ["http.request.method", "server-address", "9lives", "already_fine", "ünïcode"]
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(disable_target_info=True, registry=registry)
    meter = MeterProvider(metric_readers=[reader], shutdown_on_exit=False).get_meter("parity")
    meter.create_counter("labelled").add(1, dict.fromkeys(keys, "v"))
    try:
        (family,) = [family for family in registry.collect() if family.name == "labelled"]
    finally:
        reader.shutdown()
    (sample,) = [sample for sample in family.samples if sample.name == "labelled_total"]
    labels = {label for label in sample.labels if not label.startswith("otel_scope_")}
    assert labels == {_compat.prometheus_label_name(key) for key in keys}


def test_temporality_preferences_are_keyed_by_the_class_of_what_a_meter_creates() -> None:
    reader = InMemoryMetricReader(preferred_temporality={SdkCounter: AggregationTemporality.DELTA})
    meter = MeterProvider(metric_readers=[reader], shutdown_on_exit=False).get_meter("parity")
    counter = meter.create_counter("orders")
    histogram = meter.create_histogram("latency")
    preferences = _compat.temporality_preferences(reader)
    assert preferences[type(counter)] is AggregationTemporality.DELTA
    assert preferences[type(histogram)] is AggregationTemporality.CUMULATIVE
    assert issubclass(type(counter), SdkCounter)
    assert issubclass(type(histogram), SdkHistogram)
    counter.add(2)
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = data.resource_metrics[0].scope_metrics[0].metrics
    assert isinstance(metric.data, Sum)
    assert metric.data.aggregation_temporality is AggregationTemporality.DELTA


class _KeepingMetricExporter(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.exported: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def _points(data: MetricsData) -> list[tuple[Any, ...]]:
    return [
        (metric.name, dict(point.attributes or {}), getattr(point, "value", None))
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        for point in metric.data.data_points
    ]


def test_collect_merged_exports_what_metric_reader_collect_exports(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exported = []
    merged: list[MetricsData | None] = []

    def merge(data: MetricsData | None) -> MetricsData | None:
        merged.append(data)
        return data

    for run in ("upstream", "restated"):
        exporter = _KeepingMetricExporter()
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf)
        provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
        provider.get_meter("parity").create_counter("orders").add(3, {"route": "/checkout"})
        if run == "upstream":
            reader.collect()
        else:
            _compat.collect_merged(reader, merge)
        exported.append([_points(data) for data in exporter.exported])
        provider.shutdown()
    assert exported[1] == exported[0] == [[("orders", {"route": "/checkout"}, 3)]]
    assert len(merged) == 1 and merged[0] is not None

    # Not registered with a provider: upstream's warning, nothing collected nor exported.
    exporter = _KeepingMetricExporter()
    unregistered = PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf)
    warnings = []
    for run in ("upstream", "restated"):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            if run == "upstream":
                unregistered.collect()
            else:
                _compat.collect_merged(unregistered, merge)
        warnings.append([item.getMessage() for item in caplog.records])
    assert warnings[1] == warnings[0] != []
    assert exporter.exported == [] and len(merged) == 1


def _first_histogram_point(metric: Metric) -> HistogramDataPoint:
    point = metric.data.data_points[0]
    assert isinstance(point, HistogramDataPoint)
    return point


def test_advised_bucket_boundaries_are_what_the_sdk_buckets_an_advised_histogram_by() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader], shutdown_on_exit=False).get_meter("parity")
    advised = meter.create_histogram(
        "advised", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0]
    )
    plain = meter.create_histogram("plain", unit="s")
    advised.record(0.5)
    plain.record(0.5)
    data = reader.get_metrics_data()
    assert data is not None
    bounds = {
        metric.name: _first_histogram_point(metric).explicit_bounds
        for metric in data.resource_metrics[0].scope_metrics[0].metrics
    }
    assert tuple(_compat.advised_bucket_boundaries(advised) or ()) == (0.1, 1.0)
    assert tuple(bounds["advised"]) == (0.1, 1.0)
    assert _compat.advised_bucket_boundaries(plain) is None
    assert bounds["plain"] != bounds["advised"]


def test_view_aggregations_are_built_through_create_aggregation() -> None:
    """The hook sdk/_views.py overrides (a subclass must: it cannot live in _compat)."""
    built: list[str] = []

    class Recording(ExplicitBucketHistogramAggregation):
        def _create_aggregation(self, instrument: Any, *args: Any, **kwargs: Any) -> Any:
            built.append(instrument.name)
            return super()._create_aggregation(instrument, *args, **kwargs)

    reader = InMemoryMetricReader()
    view = View(instrument_type=SdkHistogram, aggregation=Recording(boundaries=(1.0, 2.0)))
    meter = MeterProvider(metric_readers=[reader], views=[view], shutdown_on_exit=False).get_meter(
        "parity"
    )
    meter.create_histogram("latency", unit="s").record(1.5)
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = data.resource_metrics[0].scope_metrics[0].metrics
    assert built and set(built) == {"latency"}
    assert tuple(_first_histogram_point(metric).explicit_bounds) == (1.0, 2.0)


# --- the launcher -------------------------------------------------------------------------------


def test_base_configurator_is_what_configurator_entry_points_subclass() -> None:
    from opentelemetry.sdk._configuration import _OTelSDKConfigurator

    assert issubclass(_OTelSDKConfigurator, _compat.BaseConfigurator)
    for entry in stdlib_entry_points(group="opentelemetry_configurator"):
        assert issubclass(entry.load(), _compat.BaseConfigurator), entry

    received: list[dict[str, Any]] = []

    class Recording(_compat.BaseConfigurator):
        def _configure(self, **kwargs: Any) -> None:
            received.append(kwargs)

    # As opentelemetry-instrument calls each configurator it loads.
    Recording().configure(auto_instrumentation_version="0.66b1")  # type: ignore[no-untyped-call]
    assert received == [{"auto_instrumentation_version": "0.66b1"}]


def test_launcher_entry_points_is_the_look_up_opentelemetry_instrument_uses() -> None:
    from opentelemetry.instrumentation.auto_instrumentation import _load

    assert vars(_load)["entry_points"] is _compat.launcher_entry_points
    for group in (
        "opentelemetry_distro",
        "opentelemetry_configurator",
        "opentelemetry_instrumentor",
    ):
        ours = {(entry.name, entry.value) for entry in _compat.launcher_entry_points(group=group)}
        assert ours == {(entry.name, entry.value) for entry in stdlib_entry_points(group=group)}


_ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
)
_OTLP_EXPORTERS = {
    ("grpc", "traces"): "opentelemetry.exporter.otlp.proto.grpc.trace_exporter:OTLPSpanExporter",
    (
        "grpc",
        "metrics",
    ): "opentelemetry.exporter.otlp.proto.grpc.metric_exporter:OTLPMetricExporter",
    ("grpc", "logs"): "otel_resilience._compat:UpstreamOtlpGrpcLogExporter",
    (
        "http/protobuf",
        "traces",
    ): "opentelemetry.exporter.otlp.proto.http.trace_exporter:OTLPSpanExporter",
    (
        "http/protobuf",
        "metrics",
    ): "opentelemetry.exporter.otlp.proto.http.metric_exporter:OTLPMetricExporter",
    ("http/protobuf", "logs"): "otel_resilience._compat:UpstreamOtlpHttpLogExporter",
}


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example:4318/"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": ""},
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://general:4317",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4317/custom/path",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:9999",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "",
        },
    ],
    ids=["unset", "general", "general-with-slash", "general-empty", "per-signal"],
)
def test_otlp_endpoint_is_what_upstream_exporters_resolve(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in _ENDPOINT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)
    for (protocol, signal), reference in _OTLP_EXPORTERS.items():
        module_name, _, class_name = reference.partition(":")
        exporter = getattr(importlib.import_module(module_name), class_name)()
        try:
            resolved = exporter._endpoint
        finally:
            exporter.shutdown()
        ours = _compat.otlp_endpoint(signal, protocol, environ)  # type: ignore[arg-type]
        if protocol == "grpc":  # the exporter keeps the URL's host and port
            ours = urlparse(ours).netloc or ours
        assert resolved == ours, (protocol, signal)
