"""Our OTLP log encoder and the exporters built on it: upstream's message, over the wire.

The encoder must write, for any batch, the message upstream's ``encode_logs`` builds (the
collector cannot tell them apart); the exporters the configurator installs must deliver it
through the real transports to the test receiver. Records come from a real SDK
``LoggerProvider``, fed by our handler, by the SDK's own, and by the Logs API directly.
"""

from __future__ import annotations

import enum
import logging
import warnings
from collections.abc import Iterator

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import (
    LoggerProvider,
    LoggingHandler,
    LogRecordProcessor,
    ReadableLogRecord,
    ReadWriteLogRecord,
)
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from otlp_receiver import OtlpReceiver

from otel_resilience import logs
from otel_resilience.logs._otlp_encoding import encode_log_records
from otel_resilience.logs._otlp_grpc_exporter import OTLPLogExporter as GrpcLogExporter
from otel_resilience.logs._otlp_handler import OtlpLogHandler
from otel_resilience.logs._otlp_http_exporter import OTLPLogExporter as HttpLogExporter
from otel_resilience.sdk._exporters import _exporter_class
from otel_resilience.sdk.settings import ExportSettings

TRACER = TracerProvider(shutdown_on_exit=False).get_tracer("test.encoding")


class Kept(LogRecordProcessor):
    """Keeps every record the provider emits, for the encoders to encode."""

    def __init__(self) -> None:
        self.records: list[ReadableLogRecord] = []

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.records.append(log_record)  # type: ignore[arg-type]  # a ReadableLogRecord too

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class Colour(enum.Enum):
    RED = "red"


def _provider(resource: Resource) -> tuple[LoggerProvider, Kept]:
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    kept = Kept()
    provider.add_log_record_processor(kept)
    return provider, kept


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("test.encoding.app")
    log.setLevel(logs.TRACE)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)


def _varied_batch(log: logging.Logger) -> list[ReadableLogRecord]:
    """Records of every shape: two resources, several scopes, in and out of spans, every
    value kind, bodies that are not strings, events, exceptions, unset severities."""
    first, first_kept = _provider(
        Resource({"service.name": "shop", "host.tags": ("a", "b"), "process.pid": 42})
    )
    second, second_kept = _provider(Resource({"service.name": "other"}, "https://schema/1"))
    ours = OtlpLogHandler(first)
    log.addHandler(ours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sdk_handler = LoggingHandler(logger_provider=second)
    third_party = logging.getLogger("test.encoding.library")
    third_party.propagate = False
    third_party.setLevel(logging.DEBUG)
    third_party.addHandler(sdk_handler)
    try:
        with TRACER.start_as_current_span("checkout"), logs.bind(request_id="r-42", user="u"):
            for number in range(5):
                log.info("order %s placed", number, extra={"order_id": number})
            log.warning(
                "kinds",
                extra={
                    "ratio": 0.25,
                    "flag": False,
                    "negative": -5,
                    "zero": 0,
                    "empty": "",
                    "big": 2**70,
                    "items": [1, 2],
                    "words": ("x", "y"),
                    "colour": Colour.RED,
                    "accent": "é ü 😀",
                    "long": "x" * 300,
                },
            )
            try:
                raise KeyError("missing")
            except KeyError:
                log.exception("failed")
            third_party.debug("from a library %d", 7, extra={"attempt": 2})
        log.log(logs.TRACE, "outside any span")
        third_party.error("library error outside a span")
    finally:
        log.removeHandler(ours)
        third_party.removeHandler(sdk_handler)
    raw = first.get_logger("raw.api", "1.2", "https://schema/scope", {"scope.kind": "raw"})
    raw.emit(body={"nested": [1, "a", {"deep": True}]}, attributes={"bytes": b"\x00\x01"})
    raw.emit(body=None, event_name="cart.emptied")
    raw.emit(body=b"raw bytes", severity_number=SeverityNumber.ERROR2)
    raw.emit(body=3.5, attributes={"too.big": 2**70, "fine": 1})
    return [*first_kept.records, *second_kept.records]


def test_our_encoding_is_upstreams_message_for_every_kind_of_record(
    logger: logging.Logger,
) -> None:
    batch = _varied_batch(logger)
    theirs = encode_logs(batch)
    ours = ExportLogsServiceRequest.FromString(encode_log_records(batch))
    assert len(batch) >= 14
    assert [len(resource.scope_logs) for resource in ours.resource_logs] == [2, 1]
    assert ours == theirs


def test_a_batch_encodes_the_same_again_once_the_caches_are_warm(logger: logging.Logger) -> None:
    batch = _varied_batch(logger)
    first = encode_log_records(batch)
    assert encode_log_records(batch) == first
    assert encode_log_records(list(reversed(batch))) != first  # order is kept, not cached


def test_an_attribute_upstream_cannot_encode_is_left_out_as_upstream_leaves_it_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, kept = _provider(Resource({"service.name": "shop"}))
    provider.get_logger("raw").emit(body="b", attributes={"too.big": 2**70, "fine": 1})
    ours = ExportLogsServiceRequest.FromString(encode_log_records(kept.records))
    (record,) = ours.resource_logs[0].scope_logs[0].log_records
    assert [attribute.key for attribute in record.attributes] == ["fine"]
    assert "Failed to encode key too.big" in caplog.text


def test_equal_resources_and_scopes_in_distinct_objects_are_grouped_as_upstream_does() -> None:
    first, first_kept = _provider(Resource({"service.name": "shop"}))
    second, second_kept = _provider(Resource({"service.name": "shop"}))
    first.get_logger("orders", "1.0").emit(body="one")
    second.get_logger("orders", "1.0").emit(body="two")
    second.get_logger("payments").emit(body="three")
    batch = [*first_kept.records, *second_kept.records]
    assert batch[0].resource is not batch[1].resource

    ours = ExportLogsServiceRequest.FromString(encode_log_records(batch))
    assert ours == encode_logs(batch)
    (resource_logs,) = ours.resource_logs
    assert [
        [record.body.string_value for record in scope_logs.log_records]
        for scope_logs in resource_logs.scope_logs
    ] == [["one", "two"], ["three"]]


def test_an_attribute_with_a_key_that_is_not_text_is_left_out_not_the_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, kept = _provider(Resource({"service.name": "shop"}))
    provider.get_logger("raw").emit(body="b", attributes={"fine": 1})
    (record,) = kept.records
    record.log_record.attributes = {"fine": 1, 7: 2, 8: "text"}  # type: ignore[dict-item]
    ours = ExportLogsServiceRequest.FromString(encode_log_records(kept.records))
    (encoded,) = ours.resource_logs[0].scope_logs[0].log_records
    assert [attribute.key for attribute in encoded.attributes] == ["fine"]
    assert "Failed to encode key 7" in caplog.text


def test_lone_surrogates_are_replaced_instead_of_failing_the_batch() -> None:
    provider, kept = _provider(Resource({"service.name": "shop"}))
    provider.get_logger("raw").emit(body="file \udcff name", attributes={"path": "\ud800"})
    with pytest.raises(ValueError):  # what upstream does with the whole batch
        encode_logs(kept.records).SerializeToString()
    ours = ExportLogsServiceRequest.FromString(encode_log_records(kept.records))
    (record,) = ours.resource_logs[0].scope_logs[0].log_records
    assert record.body.string_value == "file \ufffd name"
    assert record.attributes[0].value.string_value == "\ufffd"


def test_the_configurator_exports_logs_through_our_exporters() -> None:
    settings = ExportSettings.from_environment(
        {"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf"}
    )
    assert _exporter_class("logs", "otlp", settings) is HttpLogExporter
    settings = ExportSettings.from_environment({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert _exporter_class("logs", "otlp", settings) is GrpcLogExporter


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_our_exporters_deliver_upstreams_message_to_the_receiver(
    otlp_receiver: OtlpReceiver, logger: logging.Logger, protocol: str
) -> None:
    exporter = (
        GrpcLogExporter(endpoint=otlp_receiver.grpc_endpoint, insecure=True)
        if protocol == "grpc"
        else HttpLogExporter(endpoint=f"{otlp_receiver.http_endpoint}/v1/logs")
    )
    batch = _varied_batch(logger)
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    handler = OtlpLogHandler(provider)
    logger.addHandler(handler)
    with TRACER.start_as_current_span("delivered") as span:
        logger.info("through the %s exporter", protocol, extra={"order_id": 9})
    assert provider.force_flush(10_000)
    provider.shutdown()

    (record,) = otlp_receiver.wait_for_logs(lambda r: r.body.startswith("through the"))
    assert record.trace_id == f"{span.get_span_context().trace_id:032x}"
    assert record.attributes == {"order_id": 9}
    # A whole batch of every shape, sent directly: what arrives is upstream's message.
    exporter = (
        GrpcLogExporter(endpoint=otlp_receiver.grpc_endpoint, insecure=True)
        if protocol == "grpc"
        else HttpLogExporter(endpoint=f"{otlp_receiver.http_endpoint}/v1/logs")
    )
    otlp_receiver.clear()
    assert exporter.export(batch).name == "SUCCESS"
    exporter.shutdown()
    (request,) = otlp_receiver.requests("logs")
    assert request.message == encode_logs(batch)
