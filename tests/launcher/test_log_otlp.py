"""``logging`` records reach OTLP through our handler: ids in their fields, JSON-like attributes.

Most tests run a real SDK ``LoggerProvider`` into the in-memory exporter, with the handler on
a logger of their own (not the root, which pytest uses too); one goes over gRPC to the real
OTLP test receiver. The bridge's survival of ``dictConfig`` and ``fileConfig`` is checked in
child processes, since both close every handler of the process they run in.
"""

from __future__ import annotations

import datetime
import enum
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from instrumented_run import child_environment, run_instrumented
from opentelemetry import context as otel_context
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import (
    LoggerProvider,
    LogRecordProcessor,
    ReadableLogRecord,
    ReadWriteLogRecord,
)
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from otlp_receiver import OtlpReceiver

from otel_resilience import logs
from otel_resilience.logs._json_format import JsonFormatter
from otel_resilience.logs._otlp_handler import OtlpLogHandler, severity_number


class OrderError(Exception):
    """An exception of the program's, so its type name is qualified by the module."""


@dataclass
class Pipeline:
    provider: LoggerProvider
    exporter: InMemoryLogRecordExporter
    handler: OtlpLogHandler
    log: logging.Logger

    def records(self) -> list[ReadableLogRecord]:
        return list(self.exporter.get_finished_logs())

    def only(self) -> ReadableLogRecord:
        (record,) = self.records()
        return record


@pytest.fixture
def tracer() -> Tracer:
    return TracerProvider(shutdown_on_exit=False).get_tracer("test")


def _pipeline(name: str, *, include_source: bool = False) -> Pipeline:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = OtlpLogHandler(provider, include_source=include_source)
    log = logging.getLogger(name)
    log.setLevel(1)
    log.propagate = False
    log.addHandler(handler)
    return Pipeline(provider, exporter, handler, log)


@pytest.fixture
def pipeline(request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    made = _pipeline(f"test.otlp.{request.node.name}")
    yield made
    made.log.removeHandler(made.handler)
    made.provider.shutdown()


def test_inside_a_span_the_ids_are_the_spans_and_not_attributes(
    pipeline: Pipeline, tracer: Tracer
) -> None:
    with tracer.start_as_current_span("checkout") as span:
        # as opentelemetry-instrumentation-logging's record factory sets them: not repeated
        injected = {"otelTraceID": "0" * 32, "otelSpanID": "0" * 16, "otelTraceSampled": True}
        pipeline.log.warning("order %s placed", 17, extra=injected)
    pipeline.log.warning("outside any span")

    inside, outside = (record.log_record for record in pipeline.records())
    context = span.get_span_context()
    assert (inside.trace_id, inside.span_id) == (context.trace_id, context.span_id)
    assert inside.trace_flags == context.trace_flags
    assert inside.body == "order 17 placed"
    assert (inside.severity_number, inside.severity_text) == (SeverityNumber.WARN, "WARN")
    assert inside.timestamp is not None
    assert not inside.attributes  # nothing repeated as attributes, no code.* unless asked
    assert (outside.trace_id, outside.span_id) == (0, 0)


def test_trace_level_is_the_trace_severity(pipeline: Pipeline) -> None:
    logs.install_trace_level()
    pipeline.log.trace("very fine detail")  # type: ignore[attr-defined]
    record = pipeline.only().log_record
    assert record.severity_number == SeverityNumber.TRACE
    assert record.severity_text == "TRACE"


@pytest.mark.parametrize(
    ("levelno", "expected"),
    [
        (logging.DEBUG, SeverityNumber.DEBUG),
        (logging.INFO, SeverityNumber.INFO),
        (logging.WARNING, SeverityNumber.WARN),
        (logging.ERROR, SeverityNumber.ERROR),
        (logging.CRITICAL, SeverityNumber.FATAL),
        (5, SeverityNumber.TRACE),
        (3, SeverityNumber.TRACE),
        (7, SeverityNumber.TRACE),
        (15, SeverityNumber.DEBUG),
        (25, SeverityNumber.INFO),
        (35, SeverityNumber.WARN),
        (45, SeverityNumber.ERROR),
        (60, SeverityNumber.FATAL),
        (0, SeverityNumber.UNSPECIFIED),
    ],
)
def test_levels_map_to_the_nearest_standard_level_below(
    levelno: int, expected: SeverityNumber
) -> None:
    assert severity_number(levelno) == expected


def test_custom_and_standard_level_names_are_the_severity_text(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(vars(logging)["_levelToName"], 25, "NOTICE")
    pipeline.log.log(25, "a notice")
    pipeline.log.critical("on fire")
    pipeline.log.log(33, "an unnamed level")
    notice, fatal, unnamed = (record.log_record for record in pipeline.records())
    assert (notice.severity_number, notice.severity_text) == (SeverityNumber.INFO, "NOTICE")
    assert (fatal.severity_number, fatal.severity_text) == (SeverityNumber.FATAL, "FATAL")
    assert (unnamed.severity_number, unnamed.severity_text) == (SeverityNumber.WARN, "Level 33")


def test_bound_context_and_extra_fields_are_attributes_with_secrets_redacted(
    pipeline: Pipeline,
) -> None:
    with logs.bind(request_id="r-42", password="hunter2", tenant="acme"):
        pipeline.log.info(
            "order placed",
            extra={
                "order_id": 1234,
                "api_token": "t0k3n",
                "card": {"last4": "4242", "secret": "cvv"},
                "tenant": "override",
            },
        )
    attributes = dict(pipeline.only().log_record.attributes or {})
    assert attributes == {
        "request_id": "r-42",
        "password": "[REDACTED]",
        "tenant": "override",  # extra= wins over the bound field, which moves aside
        "context.tenant": "acme",
        "order_id": 1234,
        "api_token": "[REDACTED]",
        "card": "{'last4': '4242', 'secret': '[REDACTED]'}",
    }


def test_reserved_names_are_renamed_as_in_the_json_lines(pipeline: Pipeline) -> None:
    with logs.bind({"exception.type": "bound"}):
        pipeline.log.info("collisions", extra={"code.line.number": 7, "trace_id": "mine"})
    attributes = dict(pipeline.only().log_record.attributes or {})
    assert attributes == {
        "context.exception.type": "bound",
        "extra.code.line.number": 7,
        "extra.trace_id": "mine",
    }


def _json_lines_of(log: logging.Logger) -> list[dict[str, object]]:
    """What our JSON formatter writes for the records ``log`` handles, formatted at emit."""
    lines: list[dict[str, object]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(JsonFormatter().format(record)))

    log.addHandler(Capture())
    return lines


def test_an_exception_reads_the_same_as_in_the_json_lines(pipeline: Pipeline) -> None:
    json_lines = _json_lines_of(pipeline.log)
    with logs.bind(request_id="r-1"):
        try:
            raise OrderError("card declined")
        except OrderError:
            pipeline.log.exception("payment failed", extra={"order_id": 9})

    attributes = dict(pipeline.only().log_record.attributes or {})
    (line,) = json_lines
    assert attributes["exception.type"] == f"{OrderError.__module__}.OrderError"
    assert attributes["exception.message"] == "card declined"
    assert str(attributes["exception.stacktrace"]).startswith("Traceback (most recent call last)")
    assert "OrderError: card declined" in str(attributes["exception.stacktrace"])
    for name, value in attributes.items():
        assert line[name] == value, name
    assert pipeline.only().log_record.body == line["message"] == "payment failed"
    assert pipeline.only().log_record.severity_number == SeverityNumber.ERROR


def test_builtin_exceptions_keep_their_bare_name(pipeline: Pipeline) -> None:
    prices: dict[str, int] = {}
    try:
        prices["missing"]
    except KeyError:
        pipeline.log.error("lookup failed", exc_info=True)
    attributes = pipeline.only().log_record.attributes or {}
    assert attributes["exception.type"] == "KeyError"
    assert attributes["exception.message"] == "'missing'"


class Colour(enum.Enum):
    RED = "red"


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


class Unrepresentable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_odd_values_become_attribute_values_without_raising(pipeline: Pipeline) -> None:
    pipeline.log.info(
        "odd values",
        extra={
            "opaque": Opaque(),
            "broken": Unrepresentable(),
            "nothing": None,
            "raw": b"\x00\x01",
            "numbers": [1, 2, 3],
            "names": ("a", "b"),
            "mixed": [1, "a", None],
            "empty": [],
            "tags": {"x"},
            "huge": 2**80,
            "ratio": 0.5,
            "flag": True,
            "colour": Colour.RED,
            "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
            "id": uuid.UUID(int=1),
            "path": "caf\udce9.txt",  # an undecodable file name: a lone surrogate
        },
    )
    record = pipeline.only()
    attributes = dict(record.log_record.attributes or {})
    assert attributes == {
        "opaque": "<Opaque thing>",
        "broken": "<unrepresentable Unrepresentable>",
        "nothing": "None",
        "raw": "b'\\x00\\x01'",
        "numbers": (1, 2, 3),
        "names": ("a", "b"),
        "mixed": "[1, 'a', None]",
        "empty": (),
        "tags": "{'x'}",
        "huge": str(2**80),
        "ratio": 0.5,
        "flag": True,
        "colour": "red",
        "when": "2026-01-02T03:04:05+00:00",
        "id": "00000000-0000-0000-0000-000000000001",
        "path": "caf\\udce9.txt",
    }
    pipeline.log.info("opened caf\udce9.txt")
    assert pipeline.records()[1].log_record.body == "opened caf\\udce9.txt"
    assert pipeline.handler.errors == 0
    assert encode_logs(pipeline.records()).SerializeToString()  # the exporters can send them


def test_a_broken_format_never_raises() -> None:
    # Made here, not in a fixture: pytest adds its own handlers (which do raise on a broken
    # format) to the non-propagating loggers that exist when a test starts.
    made = _pipeline("test.otlp.broken_format")
    try:
        made.log.info("%d items", "many")
        made.log.info("%s and %s", "one")  # noqa: PLE1206 - the point of the test
    finally:
        made.log.removeHandler(made.handler)
    first, second = (record.log_record for record in made.records())
    assert first.body == "%d items ('many',)"
    assert second.body == "%s and %s ('one',)"
    assert str((first.attributes or {})["otel_resilience.format_error"]).startswith(
        "message: TypeError"
    )
    assert made.handler.errors == 0


def test_code_attributes_only_when_asked() -> None:
    made = _pipeline("test.otlp.source", include_source=True)
    try:
        made.log.info("where")
        attributes = made.only().log_record.attributes or {}
        assert attributes["code.function.name"] == "test_code_attributes_only_when_asked"
        assert attributes["code.file.path"] == __file__
        assert isinstance(attributes["code.line.number"], int)
    finally:
        made.log.removeHandler(made.handler)


def test_one_otel_logger_per_logger_name(pipeline: Pipeline) -> None:
    asked: list[str] = []
    get_logger = pipeline.provider.get_logger

    def counting_get_logger(name: str, *args: object, **kwargs: object) -> object:
        asked.append(name)
        return get_logger(name)

    pipeline.provider.get_logger = counting_get_logger  # type: ignore[method-assign,assignment]
    child = pipeline.log.getChild("child")
    for _ in range(3):
        pipeline.log.info("parent")
        child.info("child")
    assert asked == [pipeline.log.name, child.name]
    scopes = [record.instrumentation_scope for record in pipeline.records()]
    assert [scope.name for scope in scopes if scope is not None][:2] == asked


def test_records_of_the_export_pipeline_are_not_exported_again(pipeline: Pipeline) -> None:
    class Chatty(LogRecordProcessor):
        """Logs from within emit, as the SDK does about full queues and dropped attributes."""

        def on_emit(self, log_record: ReadWriteLogRecord) -> None:
            pipeline.log.warning("queue full, dropping")

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return True

    pipeline.provider.add_log_record_processor(Chatty())
    pipeline.log.info("one record")
    token = otel_context.attach(
        otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True)
    )
    try:
        pipeline.log.error("failed to export")  # as an exporter logs it, suppressed
    finally:
        otel_context.detach(token)
    assert [record.log_record.body for record in pipeline.records()] == ["one record"]
    assert pipeline.handler.errors == 0


def test_closing_the_handler_leaves_the_provider_alone(pipeline: Pipeline) -> None:
    pipeline.handler.flush()
    pipeline.handler.close()
    pipeline.log.info("after close")
    assert pipeline.only().log_record.body == "after close"


def test_through_the_otlp_receiver(otlp_receiver: OtlpReceiver, tracer: Tracer) -> None:
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            OTLPLogExporter(endpoint=otlp_receiver.grpc_endpoint, insecure=True)
        )
    )
    handler = OtlpLogHandler(provider)
    log = logging.getLogger("test.otlp.receiver")
    log.setLevel(1)
    log.propagate = False
    log.addHandler(handler)
    try:
        with (
            tracer.start_as_current_span("checkout") as span,
            logs.bind(request_id="r-7", session_id="s3cr3t"),
        ):
            log.log(logs.TRACE, "order %s placed", 17, extra={"order_id": 17, "ratio": 0.5})
        assert provider.force_flush(10_000)
    finally:
        log.removeHandler(handler)
        provider.shutdown()

    (record,) = otlp_receiver.wait_for_logs(lambda r: r.body == "order 17 placed")
    context = span.get_span_context()
    assert record.trace_id == f"{context.trace_id:032x}"
    assert record.span_id == f"{context.span_id:016x}"
    assert (record.severity_number, record.severity_text) == (SeverityNumber.TRACE.value, "TRACE")
    assert record.scope_name == "test.otlp.receiver"
    assert record.attributes == {
        "request_id": "r-7",
        "session_id": "[REDACTED]",
        "order_id": 17,
        "ratio": 0.5,
    }


DICT_CONFIG_APP = """
import logging, logging.config, sys
from opentelemetry import trace

logging.config.dictConfig({
    "version": 1,
    "formatters": {"plain": {"format": "APP %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                    "formatter": "plain"},
    },
    "root": {"level": "INFO", "handlers": ["console"]},
})
with trace.get_tracer("app").start_as_current_span("request") as span:
    logging.getLogger("app").info("after dictConfig", extra={"order_id": 7})
    print("trace_id", format(span.get_span_context().trace_id, "032x"))
"""


def test_a_programs_dict_config_keeps_export_working_under_the_launcher(
    otlp_receiver: OtlpReceiver,
) -> None:
    run = run_instrumented(
        DICT_CONFIG_APP, env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint}
    ).check()
    output = run.stdout.splitlines()
    assert "APP INFO app after dictConfig" in output  # the program's configuration applies
    trace_id = next(line.split()[1] for line in output if line.startswith("trace_id "))
    (record,) = otlp_receiver.wait_for_logs(lambda r: r.body == "after dictConfig")
    assert record.trace_id == trace_id
    assert record.attributes == {"order_id": 7}
    assert record.severity_text == "INFO"


LOGGING_CONFIG_APP = r"""
import io, json, logging, logging.config, sys, tempfile, textwrap
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from otel_resilience import logs
from otel_resilience.logs._bridge import attach_log_bridge

exporter = InMemoryLogRecordExporter()
provider = LoggerProvider(shutdown_on_exit=False)
provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
attach_log_bridge(provider)
ours = io.StringIO()
setup = logs.configure(format="json", stream=ours)  # a non-blocking handler of ours
from logging.config import dictConfig  # taken after the bridge: the same wrapper
existing = logging.getLogger("existing.library")

dictConfig({
    "version": 1,  # disable_existing_loggers is true by default
    "formatters": {"plain": {"format": "APP %(levelname)s %(name)s %(message)s"}},
    "handlers": {"out": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                         "formatter": "plain"}},
    "root": {"level": "INFO", "handlers": ["out"]},
})
logging.getLogger("app").info("after dictConfig")
existing.warning("from a logger the configuration disabled")
logging.config.dictConfig({"version": 1, "incremental": True, "root": {"level": "WARNING"}})
logging.getLogger("app").info("below the incremental level")
logging.getLogger("app").warning("after the incremental configuration")
try:
    logging.config.dictConfig({"version": 1, "handlers": {"bad": {"class": "no.such.Handler"}}})
except ValueError:
    pass
logging.getLogger("app").warning("after a failed configuration")
with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as ini:
    ini.write(textwrap.dedent('''
        [loggers]
        keys=root
        [handlers]
        keys=out
        [formatters]
        keys=plain
        [logger_root]
        level=INFO
        handlers=out
        [handler_out]
        class=StreamHandler
        formatter=plain
        args=(sys.stdout,)
        [formatter_plain]
        format=FILE %(message)s
    '''))
logging.config.fileConfig(ini.name)  # disables "app", which it does not name
logging.getLogger("app").warning("from app, disabled by fileConfig")
logging.getLogger("late").info("after fileConfig")
logging.config.dictConfig({"version": 1, "root": {"level": "INFO", "handlers": []}})
logging.getLogger("later").warning("with no handler of the program's")
setup.handlers[0].flush()
print("RESULT " + json.dumps({
    "exported": [record.log_record.body for record in exporter.get_finished_logs()],
    "ours": [json.loads(line)["message"] for line in ours.getvalue().splitlines()],
    "root": [type(handler).__name__ for handler in logging.getLogger().handlers],
    "dropped": setup.dropped,
}))
"""


def test_dict_config_and_file_config_keep_our_handlers_and_apply_the_programs() -> None:
    run = subprocess.run(
        [sys.executable, "-c", LOGGING_CONFIG_APP],
        env=child_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    *printed, result_line = run.stdout.splitlines()
    assert printed == [
        "APP INFO app after dictConfig",
        "APP WARNING app after the incremental configuration",
        "APP WARNING app after a failed configuration",
        "FILE after fileConfig",
    ]
    # With no handler of the program's left, the last-resort stand-in prints the warning.
    assert run.stderr.splitlines() == ["with no handler of the program's"]
    result = json.loads(result_line.removeprefix("RESULT "))
    expected = [
        "after dictConfig",
        "after the incremental configuration",
        "after a failed configuration",
        "after fileConfig",
        "with no handler of the program's",
    ]
    assert result["exported"] == expected
    assert result["ours"] == expected  # our JSON output was neither closed nor removed
    assert result["dropped"] == 0
    assert result["root"] == ["OtlpLogHandler", "_LastResortStandIn", "NonBlockingHandler"]


@pytest.mark.parametrize("redact", [True, False, None])
def test_the_bridge_redacts_as_the_settings_say(
    redact: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otel_resilience.logs._bridge import attach_log_bridge
    from otel_resilience.sdk import settings as config

    if redact is None:  # from OTEL_RESILIENCE_LOG_REDACT
        monkeypatch.setenv("OTEL_RESILIENCE_LOG_REDACT", "false")
        config.current_settings.cache_clear()
    root = logging.getLogger()
    before = list(root.handlers)
    basic_config = logging.basicConfig
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    try:
        attach_log_bridge(provider, redact=redact)
        log = logging.getLogger("test.otlp.bridge.redact")
        log.setLevel(logging.INFO)
        log.info("login", extra={"password": "hunter2", "user": "u7"})
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
        logging.basicConfig = basic_config
        config.current_settings.cache_clear()
        provider.shutdown()
    (record,) = exporter.get_finished_logs()
    attributes = dict(record.log_record.attributes or {})
    assert attributes["user"] == "u7"
    assert attributes["password"] == ("[REDACTED]" if redact else "hunter2")


def test_attributes_are_the_same_once_the_handler_knows_the_names(pipeline: Pipeline) -> None:
    shapes: list[dict[str, object]] = [
        {"order_id": 7, "ratio": 0.5, "gift": False, "note": "plain"},
        {"order_id": 2**70, "note": "caf\u00e9", "tags": ["a", "b"]},
        {"user_id": "extra wins", "password": "hunter2"},
        {"level": "reserved", "card": {"secret": "cvv"}},
        {"none": None, "raw": b"bytes"},
    ]
    for _ in range(2):  # the second time, the names are known to need no redaction
        with logs.bind(request_id="r-42", user_id="u-7"):
            for extra in shapes:
                pipeline.log.info("shape", extra=extra)
        pipeline.log.info("unbound", extra=shapes[0])
    records = [dict(record.log_record.attributes or {}) for record in pipeline.records()]
    half = len(records) // 2
    assert records[:half] == records[half:]
    assert records[0] == {
        "request_id": "r-42",
        "user_id": "u-7",
        "order_id": 7,
        "ratio": 0.5,
        "gift": False,
        "note": "plain",
    }
    assert records[2]["password"] == "[REDACTED]"
    assert records[2]["context.user_id"] == "u-7"
