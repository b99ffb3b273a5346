"""In-process OTLP receiver and a silent TCP server for end-to-end exporter tests.

Tests of the distro need to see what the *real* upstream OTLP exporters put on the
wire (names, attributes, headers, protocol), not what an in-memory exporter was
handed.  ``OtlpReceiver`` is a tiny collector that speaks both OTLP/gRPC and
OTLP/HTTP+protobuf on 127.0.0.1, stores every request with its headers and exposes
flattened, typed views plus polling ``wait_for_*`` helpers so tests never sleep for
a fixed time.  ``SilentTcpServer`` models a collector that accepts connections and
never answers, which is how exporter timeouts and circuit breakers get exercised.
"""

from __future__ import annotations

import contextlib
import gzip
import selectors
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, TypeVar, cast

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import (
    LogsServiceServicer,
    add_LogsServiceServicer_to_server,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import (
    MetricsServiceServicer,
    add_MetricsServiceServicer_to_server,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    SummaryDataPoint,
)

__all__ = [
    "LOCALHOST",
    "MetricKind",
    "OtlpReceiver",
    "Protocol",
    "ReceivedDataPoint",
    "ReceivedLogRecord",
    "ReceivedMetric",
    "ReceivedRequest",
    "ReceivedSpan",
    "Signal",
    "SilentTcpServer",
    "any_value_to_python",
    "unused_tcp_port",
]

#: The only address anything in this module binds to: tests must never open ports
#: reachable from outside the machine.
LOCALHOST = "127.0.0.1"

Protocol = Literal["grpc", "http/protobuf"]
Signal = Literal["traces", "metrics", "logs"]
MetricKind = Literal["sum", "gauge", "histogram", "exponential_histogram", "summary"]
ExportRequest = ExportTraceServiceRequest | ExportMetricsServiceRequest | ExportLogsServiceRequest

_T = TypeVar("_T")

_HTTP_PATHS: dict[str, Signal] = {
    "/v1/traces": "traces",
    "/v1/metrics": "metrics",
    "/v1/logs": "logs",
}
_REQUEST_TYPES: dict[Signal, type[ExportRequest]] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}
_RESPONSE_BYTES: dict[Signal, bytes] = {
    "traces": ExportTraceServiceResponse().SerializeToString(),
    "metrics": ExportMetricsServiceResponse().SerializeToString(),
    "logs": ExportLogsServiceResponse().SerializeToString(),
}
# How many items an AssertionError message lists before it says "...and N more".
_SUMMARY_LIMIT = 40


# --------------------------------------------------------------------------- values


def any_value_to_python(value: AnyValue) -> Any:
    """Decode an OTLP ``AnyValue`` so tests compare against plain Python literals.

    Arrays become lists and kvlists become dicts (recursively); an unset value is None.
    """
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return value.bytes_value
    if kind == "array_value":
        return [any_value_to_python(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    # string_value_strindex only appears in the profiles signal, which needs the
    # profile's string table to resolve; the receiver does not accept profiles.
    raise ValueError(f"unsupported AnyValue kind {kind!r}")


def _attributes(key_values: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value_to_python(kv.value) for kv in key_values}


def _hex(raw: bytes) -> str:
    # Matches opentelemetry.trace.format_trace_id/format_span_id for set ids and
    # gives "" for the absent ids of root spans and logs without a span context.
    return raw.hex()


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ReceivedRequest:
    """One export request exactly as it arrived, for assertions the flat views lose."""

    signal: Signal
    protocol: Protocol
    #: Lower-cased header / gRPC metadata names; repeated names are joined with ", ".
    headers: Mapping[str, str]
    message: ExportRequest
    received_at: float


@dataclass(frozen=True)
class ReceivedSpan:
    """A span flattened out of its ResourceSpans/ScopeSpans envelope."""

    name: str
    #: ``opentelemetry.proto.trace.v1.Span.SpanKind`` value: 1 internal, 2 server,
    #: 3 client, 4 producer, 5 consumer (one more than the API's ``SpanKind``).
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource_attributes: dict[str, Any]
    scope_name: str
    protocol: Protocol
    #: ``Status.StatusCode``: 0 unset, 1 ok, 2 error (same numbers as the API).
    status_code: int
    status_message: str
    events: list[tuple[str, dict[str, Any]]]
    start_time_unix_nano: int
    end_time_unix_nano: int
    headers: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class ReceivedDataPoint:
    """One metric data point; only the fields of the metric's kind are filled in.

    ``value`` is set for sum and gauge points; ``count``/``sum`` for histogram,
    exponential histogram and summary points; ``bucket_counts``/``explicit_bounds``
    for explicit-bucket histograms.
    """

    attributes: dict[str, Any]
    value: int | float | None = None
    count: int | None = None
    sum: float | None = None
    bucket_counts: list[int] = field(default_factory=list)
    explicit_bounds: list[float] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    # Exponential histogram only.
    scale: int | None = None
    zero_count: int | None = None
    positive_offset: int | None = None
    positive_bucket_counts: list[int] = field(default_factory=list)
    negative_offset: int | None = None
    negative_bucket_counts: list[int] = field(default_factory=list)
    # Summary only: (quantile, value) pairs.
    quantile_values: list[tuple[float, float]] = field(default_factory=list)
    start_time_unix_nano: int = 0
    time_unix_nano: int = 0


@dataclass(frozen=True)
class ReceivedMetric:
    """A metric flattened out of its ResourceMetrics/ScopeMetrics envelope.

    Each export carries a fresh copy of every metric, so the same name appears once
    per received export; ``wait_for_metric`` returns the latest.
    """

    name: str
    description: str
    unit: str
    kind: MetricKind
    data_points: list[ReceivedDataPoint]
    resource_attributes: dict[str, Any]
    scope_name: str
    protocol: Protocol
    #: Only for sums.
    is_monotonic: bool | None
    #: ``AggregationTemporality``: 1 delta, 2 cumulative; None for gauges and summaries.
    aggregation_temporality: int | None
    headers: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class ReceivedLogRecord:
    """A log record flattened out of its ResourceLogs/ScopeLogs envelope."""

    body: Any
    severity_text: str
    severity_number: int
    attributes: dict[str, Any]
    trace_id: str
    span_id: str
    resource_attributes: dict[str, Any]
    scope_name: str
    protocol: Protocol
    event_name: str
    time_unix_nano: int
    headers: Mapping[str, str] = field(repr=False)


def _flatten_spans(request: ReceivedRequest) -> list[ReceivedSpan]:
    message = cast(ExportTraceServiceRequest, request.message)
    spans: list[ReceivedSpan] = []
    for resource_spans in message.resource_spans:
        resource_attributes = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        kind=int(span.kind),
                        trace_id=_hex(span.trace_id),
                        span_id=_hex(span.span_id),
                        parent_span_id=_hex(span.parent_span_id),
                        attributes=_attributes(span.attributes),
                        resource_attributes=dict(resource_attributes),
                        scope_name=scope_spans.scope.name,
                        protocol=request.protocol,
                        status_code=int(span.status.code),
                        status_message=span.status.message,
                        events=[
                            (event.name, _attributes(event.attributes)) for event in span.events
                        ],
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                        headers=request.headers,
                    )
                )
    return spans


def _number_point(point: NumberDataPoint) -> ReceivedDataPoint:
    value: int | float | None
    which = point.WhichOneof("value")
    if which == "as_int":
        value = point.as_int
    elif which == "as_double":
        value = point.as_double
    else:
        value = None
    return ReceivedDataPoint(
        attributes=_attributes(point.attributes),
        value=value,
        start_time_unix_nano=point.start_time_unix_nano,
        time_unix_nano=point.time_unix_nano,
    )


def _histogram_point(point: HistogramDataPoint) -> ReceivedDataPoint:
    return ReceivedDataPoint(
        attributes=_attributes(point.attributes),
        count=point.count,
        sum=point.sum if point.HasField("sum") else None,
        bucket_counts=list(point.bucket_counts),
        explicit_bounds=list(point.explicit_bounds),
        min=point.min if point.HasField("min") else None,
        max=point.max if point.HasField("max") else None,
        start_time_unix_nano=point.start_time_unix_nano,
        time_unix_nano=point.time_unix_nano,
    )


def _exponential_point(point: ExponentialHistogramDataPoint) -> ReceivedDataPoint:
    return ReceivedDataPoint(
        attributes=_attributes(point.attributes),
        count=point.count,
        sum=point.sum if point.HasField("sum") else None,
        min=point.min if point.HasField("min") else None,
        max=point.max if point.HasField("max") else None,
        scale=point.scale,
        zero_count=point.zero_count,
        positive_offset=point.positive.offset,
        positive_bucket_counts=list(point.positive.bucket_counts),
        negative_offset=point.negative.offset,
        negative_bucket_counts=list(point.negative.bucket_counts),
        start_time_unix_nano=point.start_time_unix_nano,
        time_unix_nano=point.time_unix_nano,
    )


def _summary_point(point: SummaryDataPoint) -> ReceivedDataPoint:
    return ReceivedDataPoint(
        attributes=_attributes(point.attributes),
        count=point.count,
        sum=point.sum,
        quantile_values=[(q.quantile, q.value) for q in point.quantile_values],
        start_time_unix_nano=point.start_time_unix_nano,
        time_unix_nano=point.time_unix_nano,
    )


def _metric_payload(
    metric: Metric,
) -> tuple[MetricKind, list[ReceivedDataPoint], bool | None, int | None]:
    kind = metric.WhichOneof("data")
    if kind == "sum":
        return (
            "sum",
            [_number_point(p) for p in metric.sum.data_points],
            metric.sum.is_monotonic,
            int(metric.sum.aggregation_temporality),
        )
    if kind == "gauge":
        return "gauge", [_number_point(p) for p in metric.gauge.data_points], None, None
    if kind == "histogram":
        return (
            "histogram",
            [_histogram_point(p) for p in metric.histogram.data_points],
            None,
            int(metric.histogram.aggregation_temporality),
        )
    if kind == "exponential_histogram":
        return (
            "exponential_histogram",
            [_exponential_point(p) for p in metric.exponential_histogram.data_points],
            None,
            int(metric.exponential_histogram.aggregation_temporality),
        )
    if kind == "summary":
        return "summary", [_summary_point(p) for p in metric.summary.data_points], None, None
    raise ValueError(f"metric {metric.name!r} carries no data (oneof 'data' is unset)")


def _flatten_metrics(request: ReceivedRequest) -> list[ReceivedMetric]:
    message = cast(ExportMetricsServiceRequest, request.message)
    metrics: list[ReceivedMetric] = []
    for resource_metrics in message.resource_metrics:
        resource_attributes = _attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind, points, is_monotonic, temporality = _metric_payload(metric)
                metrics.append(
                    ReceivedMetric(
                        name=metric.name,
                        description=metric.description,
                        unit=metric.unit,
                        kind=kind,
                        data_points=points,
                        resource_attributes=dict(resource_attributes),
                        scope_name=scope_metrics.scope.name,
                        protocol=request.protocol,
                        is_monotonic=is_monotonic,
                        aggregation_temporality=temporality,
                        headers=request.headers,
                    )
                )
    return metrics


def _flatten_logs(request: ReceivedRequest) -> list[ReceivedLogRecord]:
    message = cast(ExportLogsServiceRequest, request.message)
    records: list[ReceivedLogRecord] = []
    for resource_logs in message.resource_logs:
        resource_attributes = _attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                records.append(
                    ReceivedLogRecord(
                        body=any_value_to_python(record.body),
                        severity_text=record.severity_text,
                        severity_number=int(record.severity_number),
                        attributes=_attributes(record.attributes),
                        trace_id=_hex(record.trace_id),
                        span_id=_hex(record.span_id),
                        resource_attributes=dict(resource_attributes),
                        scope_name=scope_logs.scope.name,
                        protocol=request.protocol,
                        event_name=record.event_name,
                        time_unix_nano=record.time_unix_nano,
                        headers=request.headers,
                    )
                )
    return records


def _summarise(items: Sequence[str], noun: str) -> str:
    if not items:
        return f"no {noun} were received"
    shown = "\n  ".join(items[:_SUMMARY_LIMIT])
    more = len(items) - _SUMMARY_LIMIT
    tail = f"\n  ... and {more} more" if more > 0 else ""
    return f"{len(items)} {noun} were received:\n  {shown}{tail}"


def _describe_span(span: ReceivedSpan) -> str:
    return f"{span.name!r} [{span.protocol}] trace={span.trace_id} attributes={span.attributes}"


def _describe_metric(metric: ReceivedMetric) -> str:
    points = "; ".join(
        f"{p.attributes} value={p.value}"
        if p.value is not None
        else f"{p.attributes} count={p.count} sum={p.sum}"
        for p in metric.data_points
    )
    return f"{metric.name!r} ({metric.kind}) [{metric.protocol}] points: {points or 'none'}"


def _describe_log(record: ReceivedLogRecord) -> str:
    return (
        f"{record.body!r} severity={record.severity_text or record.severity_number} "
        f"[{record.protocol}] attributes={record.attributes}"
    )


# --------------------------------------------------------------------------- gRPC side


def _grpc_metadata(context: grpc.ServicerContext) -> dict[str, str]:
    pairs: list[tuple[str, str]] = []
    for key, value in context.invocation_metadata() or ():
        # Keys ending in "-bin" carry bytes; tests only need them to be readable.
        text = value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")
        pairs.append((str(key), text))
    return _join_headers(pairs)


def _join_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in pairs:
        name = key.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _grpc_record(
    receiver: OtlpReceiver, signal: Signal, request: ExportRequest, context: grpc.ServicerContext
) -> None:
    try:
        receiver._record(signal, "grpc", _grpc_metadata(context), request)
    except ValueError as error:
        # What a strict collector does with data it cannot interpret.
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))


class _TraceServicer(TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        _grpc_record(self._receiver, "traces", request, context)
        return ExportTraceServiceResponse()


class _MetricsServicer(MetricsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(
        self, request: ExportMetricsServiceRequest, context: grpc.ServicerContext
    ) -> ExportMetricsServiceResponse:
        _grpc_record(self._receiver, "metrics", request, context)
        return ExportMetricsServiceResponse()


class _LogsServicer(LogsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(
        self, request: ExportLogsServiceRequest, context: grpc.ServicerContext
    ) -> ExportLogsServiceResponse:
        _grpc_record(self._receiver, "logs", request, context)
        return ExportLogsServiceResponse()


# --------------------------------------------------------------------------- HTTP side


class _HttpServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its receiver and its open connections.

    Exporters keep HTTP/1.1 connections alive; without tracking them a "stopped"
    receiver would keep serving requests on already-open sockets.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._closing = False
        super().__init__(address, _OtlpHttpHandler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            if self._closing:
                _shutdown_socket(connection)
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            self._closing = True
            connections = list(self._connections)
        for connection in connections:
            _shutdown_socket(connection)


def _shutdown_socket(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer
        sock.shutdown(socket.SHUT_RDWR)


class _OtlpHttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real collector offers

    def setup(self) -> None:
        super().setup()
        self._otlp_server().track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._otlp_server().untrack(self.connection)

    def _otlp_server(self) -> _HttpServer:
        return cast(_HttpServer, self.server)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        signal = _HTTP_PATHS.get(path)
        body = self._read_body()
        if signal is None:
            self._reply(404, f"unknown OTLP path {path!r}".encode(), "text/plain")
            return
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip()
        if content_type != "application/x-protobuf":
            self._reply(
                415, f"only application/x-protobuf, got {content_type!r}".encode(), "text/plain"
            )
            return
        encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding not in ("", "identity"):
                self._reply(
                    415, f"unsupported Content-Encoding {encoding!r}".encode(), "text/plain"
                )
                return
            message = _REQUEST_TYPES[signal].FromString(body)
        except (OSError, zlib.error, EOFError, DecodeError) as error:
            self._reply(400, f"cannot decode request: {error}".encode(), "text/plain")
            return
        headers = _join_headers((key, value) for key, value in self.headers.items())
        try:
            self._otlp_server().receiver._record(signal, "http/protobuf", headers, message)
        except ValueError as error:
            self._reply(400, f"cannot interpret request: {error}".encode(), "text/plain")
            return
        self._reply(200, _RESPONSE_BYTES[signal], "application/x-protobuf")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Skip optional trailers up to the terminating blank line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep pytest output clean; failures surface through wait_for_* summaries."""


# --------------------------------------------------------------------------- receiver


def _add_grpc_port(server: Any, port: int) -> int:
    try:
        bound = int(server.add_insecure_port(f"{LOCALHOST}:{port}"))
    except RuntimeError as error:  # current grpcio raises when the bind fails...
        raise OSError(f"cannot bind gRPC port {port}: {error}") from error
    if bound == 0:  # ...older grpcio returned 0 instead
        raise OSError(f"cannot bind gRPC port {port}")
    return bound


class OtlpReceiver:
    """A real OTLP endpoint (gRPC and HTTP/protobuf) on 127.0.0.1 for tests.

    Ports default to 0 so parallel tests never collide; pass the ports of a stopped
    receiver to ``OtlpReceiver(grpc_port=..., http_port=...)`` to model a collector
    restarting on the same address.
    """

    def __init__(self, *, grpc_port: int = 0, http_port: int = 0) -> None:
        self._requested_grpc_port = grpc_port
        self._requested_http_port = http_port
        self._grpc_port: int | None = None
        self._http_port: int | None = None
        self._grpc_server: Any = None  # grpc.Server; grpcio ships no type hints
        self._grpc_executor: ThreadPoolExecutor | None = None
        self._http_server: _HttpServer | None = None
        self._http_thread: threading.Thread | None = None
        self._requests: list[ReceivedRequest] = []
        self._spans: list[ReceivedSpan] = []
        self._metrics: list[ReceivedMetric] = []
        self._logs: list[ReceivedLogRecord] = []
        self._generation = 0
        self._condition = threading.Condition()

    # -- lifecycle

    def start(self) -> OtlpReceiver:
        """Bind both listeners; returns self so ``r = OtlpReceiver().start()`` works."""
        if self._grpc_server is not None:
            raise RuntimeError("OtlpReceiver is already started")
        executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="otlp-receiver-grpc")
        grpc_server = grpc.server(
            executor,
            # Fail like a real collector when the port is taken instead of sharing it.
            options=[("grpc.so_reuseport", 0)],
        )
        add_TraceServiceServicer_to_server(_TraceServicer(self), grpc_server)  # type: ignore[no-untyped-call]
        add_MetricsServiceServicer_to_server(_MetricsServicer(self), grpc_server)  # type: ignore[no-untyped-call]
        add_LogsServiceServicer_to_server(_LogsServicer(self), grpc_server)  # type: ignore[no-untyped-call]
        try:
            grpc_port = _add_grpc_port(grpc_server, self._requested_grpc_port)
            http_server = _HttpServer((LOCALHOST, self._requested_http_port), self)
        except BaseException:
            grpc_server.stop(grace=None)
            executor.shutdown(wait=False)
            raise
        http_thread = threading.Thread(
            target=http_server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="otlp-receiver-http",
            daemon=True,
        )
        grpc_server.start()
        http_thread.start()
        self._grpc_server = grpc_server
        self._grpc_executor = executor
        self._grpc_port = grpc_port
        self._http_server = http_server
        self._http_port = int(http_server.server_address[1])
        self._http_thread = http_thread
        return self

    def stop(self) -> None:
        """Close both listeners and every open connection; stored data is kept.

        Safe to call twice or on a receiver that never started.
        """
        grpc_server, self._grpc_server = self._grpc_server, None
        executor, self._grpc_executor = self._grpc_executor, None
        http_server, self._http_server = self._http_server, None
        http_thread, self._http_thread = self._http_thread, None
        if http_server is not None:
            http_server.shutdown()
            http_server.server_close()
            http_server.close_connections()
        if http_thread is not None:
            http_thread.join(timeout=5)
        if grpc_server is not None:
            grpc_server.stop(grace=None).wait(timeout=5)
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses

    @property
    def grpc_port(self) -> int:
        return self._require_port(self._grpc_port)

    @property
    def http_port(self) -> int:
        return self._require_port(self._http_port)

    @property
    def grpc_endpoint(self) -> str:
        """``http://127.0.0.1:PORT``; the gRPC exporters want exactly this (no path)."""
        return f"http://{LOCALHOST}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """Base URL without ``/v1/<signal>``, as OTEL_EXPORTER_OTLP_ENDPOINT expects."""
        return f"http://{LOCALHOST}:{self.http_port}"

    @staticmethod
    def _require_port(port: int | None) -> int:
        # Ports survive stop() so a test can restart a collector on the same address.
        if port is None:
            raise RuntimeError("OtlpReceiver has not been started")
        return port

    # -- storage

    def _record(
        self, signal: Signal, protocol: Protocol, headers: Mapping[str, str], message: ExportRequest
    ) -> None:
        """Store one request; flattening here keeps accessors cheap while tests poll.

        Raises ValueError (before storing anything) for data that cannot be decoded.
        """
        request = ReceivedRequest(signal, protocol, dict(headers), message, time.time())
        spans = _flatten_spans(request) if signal == "traces" else []
        metrics = _flatten_metrics(request) if signal == "metrics" else []
        logs = _flatten_logs(request) if signal == "logs" else []
        with self._condition:
            self._requests.append(request)
            self._spans.extend(spans)
            self._metrics.extend(metrics)
            self._logs.extend(logs)
            self._generation += 1
            self._condition.notify_all()

    def clear(self) -> None:
        """Forget everything received so a test can assert on what comes next only."""
        with self._condition:
            self._requests.clear()
            self._spans.clear()
            self._metrics.clear()
            self._logs.clear()
            self._generation += 1
            self._condition.notify_all()

    def requests(
        self, signal: Signal | None = None, *, protocol: Protocol | None = None
    ) -> list[ReceivedRequest]:
        """Raw requests in arrival order, e.g. to check headers or request counts."""
        with self._condition:
            snapshot = list(self._requests)
        return [
            r
            for r in snapshot
            if (signal is None or r.signal == signal)
            and (protocol is None or r.protocol == protocol)
        ]

    def spans(self) -> list[ReceivedSpan]:
        """Every received span, in arrival order, from both protocols."""
        with self._condition:
            return list(self._spans)

    def metrics(self) -> list[ReceivedMetric]:
        """Every received metric (one entry per metric per export), in arrival order."""
        with self._condition:
            return list(self._metrics)

    def logs(self) -> list[ReceivedLogRecord]:
        """Every received log record, in arrival order, from both protocols."""
        with self._condition:
            return list(self._logs)

    # -- waiting

    def wait_for_spans(
        self,
        predicate: Callable[[ReceivedSpan], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 15.0,
    ) -> list[ReceivedSpan]:
        """Wait until ``count`` spans match; returns all matching spans at that moment."""

        def check() -> list[ReceivedSpan] | None:
            matched = [s for s in self.spans() if predicate is None or predicate(s)]
            return matched if len(matched) >= count else None

        return self._wait(
            check,
            timeout,
            lambda: (
                f"expected {count} matching span(s) within {timeout}s; "
                + _summarise([_describe_span(s) for s in self.spans()], "spans")
            ),
        )

    def wait_for_metric(
        self,
        name: str,
        predicate: Callable[[ReceivedMetric], bool] | None = None,
        *,
        timeout: float = 15.0,
    ) -> ReceivedMetric:
        """Wait for a metric called ``name`` that matches; returns the latest such export."""

        def check() -> ReceivedMetric | None:
            matched = [
                m for m in self.metrics() if m.name == name and (predicate is None or predicate(m))
            ]
            return matched[-1] if matched else None

        return self._wait(
            check,
            timeout,
            lambda: (
                f"expected a matching metric {name!r} within {timeout}s; "
                + _summarise([_describe_metric(m) for m in self.metrics()], "metrics")
            ),
        )

    def wait_for_logs(
        self,
        predicate: Callable[[ReceivedLogRecord], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 15.0,
    ) -> list[ReceivedLogRecord]:
        """Wait until ``count`` log records match; returns all matching records."""

        def check() -> list[ReceivedLogRecord] | None:
            matched = [rec for rec in self.logs() if predicate is None or predicate(rec)]
            return matched if len(matched) >= count else None

        return self._wait(
            check,
            timeout,
            lambda: (
                f"expected {count} matching log record(s) within {timeout}s; "
                + _summarise([_describe_log(rec) for rec in self.logs()], "log records")
            ),
        )

    def _changed_since(self, generation: int) -> bool:
        return self._generation != generation

    def _wait(
        self, check: Callable[[], _T | None], timeout: float, describe: Callable[[], str]
    ) -> _T:
        # Re-check on every arrival (condition variable), never on a fixed sleep.  The
        # check runs outside the lock so a predicate may call back into the receiver.
        deadline = time.monotonic() + timeout
        while True:
            with self._condition:
                generation = self._generation
            result = check()
            if result is not None:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(describe())
            with self._condition:
                self._condition.wait_for(
                    partial(self._changed_since, generation), timeout=remaining
                )


# --------------------------------------------------------------------------- silent server


class SilentTcpServer:
    """A "collector" that accepts TCP connections, reads everything and never replies.

    gRPC then never completes its HTTP/2 handshake and HTTP requests never get a
    status line, which is the hang that deadlines and circuit breakers must cover.
    """

    def __init__(self) -> None:
        self._listener: socket.socket | None = None
        self._wake_reader: socket.socket | None = None
        self._wake_writer: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._condition = threading.Condition()
        self._accepted = 0
        self._bytes_received = 0
        self._port: int | None = None

    def start(self) -> SilentTcpServer:
        if self._listener is not None:
            raise RuntimeError("SilentTcpServer is already started")
        listener = socket.create_server((LOCALHOST, 0), backlog=128)
        listener.setblocking(False)
        wake_reader, wake_writer = socket.socketpair()
        wake_reader.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        selector.register(wake_reader, selectors.EVENT_READ)
        self._listener = listener
        self._wake_reader = wake_reader
        self._wake_writer = wake_writer
        self._port = int(listener.getsockname()[1])
        self._thread = threading.Thread(
            target=self._serve,
            args=(selector, listener, wake_reader),
            name="silent-tcp",
            daemon=True,
        )
        self._thread.start()
        return self

    def _serve(
        self, selector: selectors.BaseSelector, listener: socket.socket, wake_reader: socket.socket
    ) -> None:
        connections: set[socket.socket] = set()
        try:
            while True:
                for key, _events in selector.select():
                    sock = cast(socket.socket, key.fileobj)
                    if sock is wake_reader:
                        return
                    if sock is listener:
                        self._accept(selector, listener, connections)
                    else:
                        self._drain(selector, sock, connections)
        finally:
            for sock in connections:
                sock.close()
            selector.close()
            listener.close()
            wake_reader.close()

    def _accept(
        self,
        selector: selectors.BaseSelector,
        listener: socket.socket,
        connections: set[socket.socket],
    ) -> None:
        try:
            connection, _address = listener.accept()
        except BlockingIOError:
            return
        connection.setblocking(False)
        selector.register(connection, selectors.EVENT_READ)
        connections.add(connection)
        with self._condition:
            self._accepted += 1
            self._condition.notify_all()

    def _drain(
        self, selector: selectors.BaseSelector, sock: socket.socket, connections: set[socket.socket]
    ) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            with self._condition:
                self._bytes_received += len(data)
                self._condition.notify_all()
            return
        # The client gave up; close our end too (still without sending anything).
        selector.unregister(sock)
        connections.discard(sock)
        sock.close()

    def stop(self) -> None:
        """Close the listener and every accepted connection (clients then see EOF)."""
        thread, self._thread = self._thread, None
        wake_writer, self._wake_writer = self._wake_writer, None
        self._listener = None
        self._wake_reader = None
        if wake_writer is not None:
            try:
                wake_writer.send(b"x")
            finally:
                wake_writer.close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SilentTcpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("SilentTcpServer has not been started")
        return self._port

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, usable for both the gRPC and the HTTP exporters."""
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def accepted_connections(self) -> int:
        with self._condition:
            return self._accepted

    @property
    def bytes_received(self) -> int:
        """Proves the client really sent its request before waiting in vain."""
        with self._condition:
            return self._bytes_received

    def wait_for_connections(self, count: int = 1, *, timeout: float = 15.0) -> int:
        """Wait until ``count`` connections were accepted; returns the current count."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._accepted >= count, timeout=timeout):
                raise AssertionError(
                    f"expected {count} connection(s) within {timeout}s, got {self._accepted}"
                )
            return self._accepted


def unused_tcp_port() -> int:
    """A 127.0.0.1 port nothing listens on, for "collector is down" tests.

    The OS picks a free port which is released immediately; another process could in
    theory grab it before the test connects, but ephemeral ports are not reused that
    quickly in practice.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])
