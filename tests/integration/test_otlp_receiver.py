"""Prove the OTLP test receiver against the real upstream exporters (no mocks).

Other tests trust ``OtlpReceiver`` to tell them what the distro put on the wire, so
it must decode exactly what opentelemetry-exporter-otlp-proto-{grpc,http} send.
Providers are local to each test; the global providers are never touched.
"""

from __future__ import annotations

import gzip
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Literal

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
    OTLPLogExporter as GrpcLogExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import (
    OTLPLogExporter as HttpLogExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, ResourceMetrics, ScopeMetrics
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, format_span_id, format_trace_id
from opentelemetry.util.types import Attributes
from otlp_receiver import (
    OtlpReceiver,
    ReceivedMetric,
    SilentTcpServer,
    unused_tcp_port,
)

RESOURCE = Resource.create({"service.name": "receiver-selftest", "deployment.environment": "ci"})
# Never let a proxy from the environment intercept 127.0.0.1 traffic in urllib checks.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(autouse=True)
def _hermetic_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exporters read OTEL_* variables; a developer's shell must not change results."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as started:
        yield started


def _finished_spans(*names: str) -> tuple[ReadableSpan, ...]:
    """Real SDK spans to hand straight to an exporter's export()."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("selftest.direct")
    for name in names:
        tracer.start_span(name).end()
    provider.shutdown()
    return memory.get_finished_spans()


# --------------------------------------------------------------------------- traces


def test_grpc_spans_arrive_with_names_ids_attributes_and_events(receiver: OtlpReceiver) -> None:
    provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
    provider.add_span_processor(
        SimpleSpanProcessor(GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True))
    )
    tracer = provider.get_tracer("selftest.grpc", "1.2.3")
    attrs: Attributes = {"str": "v", "int": 7, "float": 1.5, "bool": True, "list": ["a", "b"]}
    try:
        with (
            tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent,
            tracer.start_as_current_span("child", kind=SpanKind.CLIENT, attributes=attrs) as child,
        ):
            child.add_event("retry", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "boom"))
    finally:
        provider.shutdown()

    spans = {s.name: s for s in receiver.wait_for_spans(count=2)}
    parent_ctx, child_ctx = parent.get_span_context(), child.get_span_context()

    assert spans["parent"].trace_id == format_trace_id(parent_ctx.trace_id)
    assert spans["parent"].span_id == format_span_id(parent_ctx.span_id)
    assert spans["parent"].parent_span_id == ""
    assert spans["parent"].kind == 2  # proto SERVER
    assert spans["child"].kind == 3  # proto CLIENT
    assert spans["child"].trace_id == spans["parent"].trace_id
    assert spans["child"].span_id == format_span_id(child_ctx.span_id)
    assert spans["child"].parent_span_id == spans["parent"].span_id
    assert spans["child"].attributes == attrs
    assert spans["child"].events == [("retry", {"attempt": 2})]
    assert spans["child"].status_code == 2
    assert spans["child"].status_message == "boom"
    assert spans["child"].resource_attributes["service.name"] == "receiver-selftest"
    assert spans["child"].scope_name == "selftest.grpc"
    assert {s.protocol for s in spans.values()} == {"grpc"}
    assert all(r.protocol == "grpc" for r in receiver.requests("traces"))


@pytest.mark.parametrize(
    "compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate]
)
def test_http_spans_arrive_with_every_compression(
    receiver: OtlpReceiver, compression: Compression
) -> None:
    exporter = HttpSpanExporter(
        endpoint=receiver.http_endpoint + "/v1/traces", compression=compression
    )
    provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("selftest.http")
    try:
        with tracer.start_as_current_span("http-span", attributes={"peer.service": "db"}) as span:
            pass
        assert provider.force_flush(5_000)
    finally:
        provider.shutdown()

    (received,) = receiver.wait_for_spans(lambda s: s.name == "http-span")
    assert received.protocol == "http/protobuf"
    assert received.trace_id == format_trace_id(span.get_span_context().trace_id)
    assert received.attributes == {"peer.service": "db"}
    assert received.scope_name == "selftest.http"
    (request,) = receiver.requests("traces")
    assert request.headers["content-type"] == "application/x-protobuf"
    expected_encoding = {Compression.Gzip: "gzip", Compression.Deflate: "deflate"}.get(compression)
    assert request.headers.get("content-encoding") == expected_encoding


def test_headers_from_environment_arrive_on_both_protocols(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme,x-api-key=s3cr3t")
    grpc_exporter = GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True)
    http_exporter = HttpSpanExporter(endpoint=receiver.http_endpoint + "/v1/traces")
    try:
        assert grpc_exporter.export(_finished_spans("via-grpc")) is SpanExportResult.SUCCESS
        assert http_exporter.export(_finished_spans("via-http")) is SpanExportResult.SUCCESS
    finally:
        grpc_exporter.shutdown()
        http_exporter.shutdown()  # type: ignore[no-untyped-call]  # untyped upstream

    by_protocol = {r.protocol: r for r in receiver.requests("traces")}
    assert set(by_protocol) == {"grpc", "http/protobuf"}
    for request in by_protocol.values():
        assert request.headers["x-tenant"] == "acme"
        assert request.headers["x-api-key"] == "s3cr3t"
        assert "OTel-OTLP-Exporter-Python" in request.headers["user-agent"]
    assert {s.name: s.protocol for s in receiver.spans()} == {
        "via-grpc": "grpc",
        "via-http": "http/protobuf",
    }
    assert receiver.spans()[0].headers["x-tenant"] == "acme"


# --------------------------------------------------------------------------- metrics


def _observe_queue_depth(_options: CallbackOptions) -> Iterable[Observation]:
    yield Observation(3, {"queue": "jobs"})


def test_metrics_arrive_on_both_protocols(receiver: OtlpReceiver) -> None:
    readers = [
        PeriodicExportingMetricReader(
            GrpcMetricExporter(endpoint=receiver.grpc_endpoint, insecure=True),
            export_interval_millis=600_000,
        ),
        PeriodicExportingMetricReader(
            HttpMetricExporter(endpoint=receiver.http_endpoint + "/v1/metrics"),
            export_interval_millis=600_000,
        ),
    ]
    provider = MeterProvider(metric_readers=readers, resource=RESOURCE, shutdown_on_exit=False)
    meter = provider.get_meter("selftest.metrics")
    try:
        calls = meter.create_counter("selftest.calls", unit="{call}", description="calls made")
        calls.add(2, {"outcome": "ok"})
        calls.add(1, {"outcome": "error"})
        meter.create_up_down_counter("selftest.inflight").add(-4)
        duration = meter.create_histogram("selftest.duration", unit="ms")
        for value in (5, 50, 500):
            duration.record(value, {"route": "/x"})
        meter.create_observable_gauge("selftest.queue_depth", callbacks=[_observe_queue_depth])
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()

    for protocol in ("grpc", "http/protobuf"):

        def on(metric: ReceivedMetric, protocol: str = protocol) -> bool:
            return metric.protocol == protocol

        counter = receiver.wait_for_metric("selftest.calls", on)
        assert counter.kind == "sum"
        assert counter.is_monotonic is True
        assert counter.aggregation_temporality == 2  # cumulative by default
        assert counter.unit == "{call}"
        assert counter.description == "calls made"
        assert counter.scope_name == "selftest.metrics"
        assert counter.resource_attributes["deployment.environment"] == "ci"
        assert {p.attributes["outcome"]: p.value for p in counter.data_points} == {
            "ok": 2,
            "error": 1,
        }

        inflight = receiver.wait_for_metric("selftest.inflight", on)
        assert inflight.kind == "sum"
        assert inflight.is_monotonic is False
        assert [p.value for p in inflight.data_points] == [-4]

        histogram = receiver.wait_for_metric("selftest.duration", on)
        assert histogram.kind == "histogram"
        (point,) = histogram.data_points
        assert point.attributes == {"route": "/x"}
        assert (point.count, point.sum, point.min, point.max) == (3, 555, 5, 500)
        assert len(point.bucket_counts) == len(point.explicit_bounds) + 1
        assert sum(point.bucket_counts) == 3

        gauge = receiver.wait_for_metric("selftest.queue_depth", on)
        assert gauge.kind == "gauge"
        assert [(p.attributes, p.value) for p in gauge.data_points] == [({"queue": "jobs"}, 3)]


# --------------------------------------------------------------------------- logs


def test_logs_arrive_on_both_protocols_correlated_with_the_active_span(
    receiver: OtlpReceiver,
) -> None:
    logger_provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(GrpcLogExporter(endpoint=receiver.grpc_endpoint, insecure=True))
    )
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(HttpLogExporter(endpoint=receiver.http_endpoint + "/v1/logs"))
    )
    tracer_provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
    logger = logger_provider.get_logger("selftest.logs")
    try:
        with tracer_provider.get_tracer("selftest").start_as_current_span("work") as span:
            logger.emit(
                body="circuit opened",
                severity_text="WARN",
                severity_number=SeverityNumber.WARN,
                attributes={"breaker": "payments", "failures": 5},
            )
        logger.emit(body={"structured": [1, 2]}, severity_number=SeverityNumber.INFO)
        assert logger_provider.force_flush(5_000)
    finally:
        logger_provider.shutdown()
        tracer_provider.shutdown()

    records = receiver.wait_for_logs(lambda r: r.body == "circuit opened", count=2)
    assert {r.protocol for r in records} == {"grpc", "http/protobuf"}
    context = span.get_span_context()
    for record in records:
        assert record.severity_text == "WARN"
        assert record.severity_number == SeverityNumber.WARN.value
        assert record.attributes == {"breaker": "payments", "failures": 5}
        assert record.trace_id == format_trace_id(context.trace_id)
        assert record.span_id == format_span_id(context.span_id)
        assert record.scope_name == "selftest.logs"
        assert record.resource_attributes["service.name"] == "receiver-selftest"

    structured = receiver.wait_for_logs(lambda r: r.body == {"structured": [1, 2]}, count=2)
    assert all(r.trace_id == "" and r.span_id == "" for r in structured)


# --------------------------------------------------------------------------- receiver API


def test_wait_timeout_reports_what_was_received(receiver: OtlpReceiver) -> None:
    exporter = GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True)
    try:
        assert exporter.export(_finished_spans("only-this-one")) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()

    with pytest.raises(AssertionError, match="only-this-one") as excinfo:
        receiver.wait_for_spans(lambda s: s.name == "never", timeout=0.2)
    assert "1 spans were received" in str(excinfo.value)
    with pytest.raises(AssertionError, match="no metrics were received"):
        receiver.wait_for_metric("missing", timeout=0.1)
    with pytest.raises(AssertionError, match="no log records were received"):
        receiver.wait_for_logs(timeout=0.1)

    receiver.clear()
    assert receiver.spans() == []
    assert receiver.requests() == []


def test_http_endpoint_rejects_what_a_collector_would_reject(receiver: OtlpReceiver) -> None:
    def post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        request = urllib.request.Request(
            receiver.http_endpoint + path, data=body, headers=headers, method="POST"
        )
        try:
            with DIRECT.open(request, timeout=5) as response:
                return response.status, response.read(), response.headers["Content-Type"]
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers["Content-Type"]

    payload = ExportTraceServiceRequest().SerializeToString()
    protobuf = {"Content-Type": "application/x-protobuf"}
    status, body, content_type = post(
        "/v1/traces", gzip.compress(payload), {**protobuf, "Content-Encoding": "gzip"}
    )
    assert (status, content_type) == (200, "application/x-protobuf")
    assert ExportTraceServiceResponse.FromString(body) == ExportTraceServiceResponse()
    assert post("/v1/nope", payload, protobuf)[0] == 404
    assert post("/v1/traces", b"{}", {"Content-Type": "application/json"})[0] == 415
    assert post("/v1/traces", b"\xff\xff\xff", protobuf)[0] == 400
    dataless = ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[Metric(name="m")])])]
    )
    assert post("/v1/metrics", dataless.SerializeToString(), protobuf)[0] == 400
    assert receiver.requests("metrics") == []
    assert len(receiver.requests("traces", protocol="http/protobuf")) == 1


def test_stopped_receiver_refuses_and_restarts_on_the_same_ports() -> None:
    first = OtlpReceiver().start()
    grpc_exporter = GrpcSpanExporter(endpoint=first.grpc_endpoint, insecure=True, timeout=5)
    http_exporter = HttpSpanExporter(endpoint=first.http_endpoint + "/v1/traces", timeout=0.5)
    try:
        assert http_exporter.export(_finished_spans("before")) is SpanExportResult.SUCCESS
        first.stop()
        # The exporter's pooled keep-alive connection must not reach a stopped receiver.
        assert http_exporter.export(_finished_spans("while-down")) is SpanExportResult.FAILURE
        assert [s.name for s in first.spans()] == ["before"]

        with OtlpReceiver(grpc_port=first.grpc_port, http_port=first.http_port) as second:
            assert second.http_endpoint == first.http_endpoint
            assert http_exporter.export(_finished_spans("after-http")) is SpanExportResult.SUCCESS
            assert grpc_exporter.export(_finished_spans("after-grpc")) is SpanExportResult.SUCCESS
            assert sorted(s.name for s in second.spans()) == ["after-grpc", "after-http"]
    finally:
        first.stop()
        grpc_exporter.shutdown()
        http_exporter.shutdown()  # type: ignore[no-untyped-call]  # untyped upstream


def test_silent_server_accepts_and_never_answers() -> None:
    with SilentTcpServer() as silent:
        assert silent.endpoint == f"http://127.0.0.1:{silent.port}"
        with socket.create_connection(("127.0.0.1", silent.port), timeout=5) as client:
            assert silent.wait_for_connections(1, timeout=5) == 1
            client.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            client.settimeout(0.3)
            with pytest.raises(TimeoutError):
                client.recv(1)
            assert silent.accepted_connections == 1
            assert silent.bytes_received > 0
            silent.stop()
            client.settimeout(5)
            assert client.recv(1) == b""  # closed, still without a single byte of reply


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_real_exporters_give_up_on_a_silent_collector_at_their_deadline(
    protocol: Literal["grpc", "http/protobuf"],
) -> None:
    spans = _finished_spans("lost")
    with SilentTcpServer() as silent:
        exporter: GrpcSpanExporter | HttpSpanExporter
        if protocol == "grpc":
            exporter = GrpcSpanExporter(endpoint=silent.endpoint, insecure=True, timeout=1)
        else:
            exporter = HttpSpanExporter(endpoint=silent.endpoint + "/v1/traces", timeout=1)
        try:
            started = time.monotonic()
            assert exporter.export(spans) is SpanExportResult.FAILURE
            elapsed = time.monotonic() - started
        finally:
            exporter.shutdown()
        assert silent.accepted_connections >= 1
    assert 0.8 <= elapsed < 5


def test_unused_tcp_port_refuses_connections() -> None:
    port = unused_tcp_port()
    assert 0 < port < 65536
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
