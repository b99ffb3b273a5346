"""One call configures correlated logging; under the launcher, environment variables do."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from instrumented_run import run_instrumented
from opentelemetry.sdk.trace import TracerProvider
from otlp_receiver import OtlpReceiver

from otel_resilience import logs
from otel_resilience.logs._fast_record import FastLogRecord
from otel_resilience.logs._setup import LogFileError, configure_from_settings
from otel_resilience.sdk.settings import LogSettings


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Each test's set-up is removed again, and the root logger's level put back."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    basic_config = logging.basicConfig
    yield
    setup = logs.current_setup()
    if setup is not None:
        setup.close()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.basicConfig = basic_config


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_program_and_library_records_carry_the_span_ids_and_the_bound_context() -> None:
    stream = io.StringIO()
    logs.configure(format="json", level="INFO", stream=stream, non_blocking=False)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("checkout") as span, logs.bind(request_id="r-1"):
        logs.get_logger("shop.orders").info("order placed", extra={"order_id": 7})
        logging.getLogger("urllib3.connectionpool").warning("retrying")  # a library's logger
    logging.getLogger("shop").info("outside any span")

    inside_app, inside_library, outside = lines(stream)
    context = span.get_span_context()
    for record in (inside_app, inside_library):
        assert record["trace_id"] == f"{context.trace_id:032x}"
        assert record["span_id"] == f"{context.span_id:016x}"
        assert record["request_id"] == "r-1"
    assert inside_app["order_id"] == 7
    assert inside_library["logger"] == "urllib3.connectionpool"
    assert "trace_id" not in outside
    assert "request_id" not in outside
    assert set(inside_app) <= set(logs.JSON_FIELDS) | {"request_id", "order_id"}


def test_the_programs_levels_stay_unless_a_level_is_asked_for() -> None:
    root = logging.getLogger()
    root.setLevel(logging.ERROR)
    stream = io.StringIO()
    logs.configure(format="json", stream=stream, non_blocking=False)
    assert root.level == logging.ERROR
    logging.getLogger("app").warning("filtered by the program's own level")
    assert stream.getvalue() == ""

    logs.current_setup().set_level("TRACE")  # type: ignore[union-attr]
    logs.get_logger("app").trace("very fine detail")  # type: ignore[attr-defined]
    (record,) = lines(stream)
    assert record["level"] == "TRACE"
    assert root.level == logs.TRACE


def test_a_later_basic_config_of_the_program_still_takes_effect() -> None:
    logs.configure(format="json", stream=io.StringIO(), non_blocking=False)
    root = logging.getLogger()
    # as in a fresh program: only our handler on the root logger (not pytest's own)
    root.handlers = [h for h in root.handlers if getattr(h, "_otel_resilience_handler", False)]
    program_output = io.StringIO()
    logging.basicConfig(stream=program_output, format="%(levelname)s %(message)s")
    logging.getLogger("app").warning("hello")
    assert program_output.getvalue() == "WARNING hello\n"


def test_format_changes_at_runtime() -> None:
    stream = io.StringIO()
    setup = logs.configure(format="json", level="INFO", stream=stream, non_blocking=False)
    logging.getLogger("app").info("as json")
    setup.set_format("human")
    logging.getLogger("app").info("as a line")
    first, second = stream.getvalue().splitlines()
    assert json.loads(first)["message"] == "as json"
    assert "as a line" in second
    assert "INFO" in second
    assert not second.startswith("{")


def test_the_memory_output_answers_queries_by_trace() -> None:
    logs.configure(format="json", level="INFO", outputs=["memory"], memory_capacity=10)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        logging.getLogger("app").info("in the request")
    logging.getLogger("app").info("elsewhere")
    memory = logs.memory_log()
    assert memory is not None
    trace_id = f"{span.get_span_context().trace_id:032x}"
    (entry,) = memory.entries(trace_id=trace_id)
    assert entry.message == "in the request"
    assert len(memory) == 2


def test_the_file_output_is_written_by_the_background_writer(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    setup = logs.configure(format="json", level="INFO", outputs=["file"], file=str(path))
    for number in range(500):
        logging.getLogger("app").info("record %d", number)
    setup.close()  # writes out what is queued
    messages = [json.loads(line)["message"] for line in path.read_text().splitlines()]
    assert messages == [f"record {number}" for number in range(500)]


def test_a_log_file_that_cannot_be_opened_installs_nothing(tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, threads = list(root.handlers), threading.active_count()
    with pytest.raises(LogFileError, match="cannot open the log file") as raised:
        logs.configure(format="json", outputs=["console", "file"], file=str(tmp_path))
    assert isinstance(raised.value, OSError)  # what a caller of open() already catches
    assert raised.value.path == str(tmp_path)
    assert root.handlers == handlers
    assert threading.active_count() == threads  # no background writer was started
    assert logs.current_setup() is None


def test_the_launcher_path_reports_an_unopenable_log_file_and_keeps_the_console(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = LogSettings(
        format="json",
        outputs=("console", "file"),
        file=str(tmp_path / "missing" / "app.log"),
        non_blocking=False,
        level="INFO",
    )
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        setup = configure_from_settings(settings, "checkout")
    assert setup is not None
    assert [type(handler).__name__ for handler in setup.handlers] == ["_SinkHandler"]
    (warning,) = [r.getMessage() for r in caplog.records if r.name.startswith("otel_resilience")]
    assert warning.startswith(f"OTEL_RESILIENCE_LOG_FILE={settings.file!r} cannot be opened")
    assert "FileNotFoundError" in warning
    assert logging.getLogger().level == logging.INFO  # the rest of the settings applied


def test_the_launcher_path_with_only_an_unopenable_file_still_sets_the_level(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = LogSettings(format="human", outputs=("file",), file=str(tmp_path), level="ERROR")
    assert configure_from_settings(settings, None) is None
    assert logging.getLogger().level == logging.ERROR
    assert "the file output is left out" in caplog.records[-1].getMessage()


def test_bad_arguments_get_clear_errors() -> None:
    with pytest.raises(ValueError, match="outputs must be console, file or memory"):
        logs.configure(outputs=["syslog"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="file=<path>"):
        logs.configure(outputs=["file"])
    assert logs.current_setup() is None


APP = """
import logging
from opentelemetry import trace
from otel_resilience import logs

tracer = trace.get_tracer("app")
with tracer.start_as_current_span("handle-order"), logs.bind(request_id="r-9"):
    logging.getLogger("app.orders").warning("order %s placed", 42, extra={"password": "s3cret"})
logging.getLogger("app").warning("done")
"""


def test_under_the_launcher_json_lines_match_the_exported_spans(
    otlp_receiver: OtlpReceiver,
) -> None:
    run = run_instrumented(
        APP,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint,
            "OTEL_SERVICE_NAME": "shop",
            "OTEL_RESILIENCE_LOG_FORMAT": "json",
        },
    ).check()
    records = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    order, done = records
    (span,) = otlp_receiver.wait_for_spans()
    assert span.name == "handle-order"
    assert order["trace_id"] == span.trace_id
    assert order["span_id"] == span.span_id
    assert order["message"] == "order 42 placed"
    assert order["request_id"] == "r-9"
    assert order["service.name"] == "shop"
    assert order["password"] == "[REDACTED]"
    assert "trace_id" not in done
    assert "s3cret" not in run.stderr
    assert otlp_receiver.wait_for_metric("resilience.log.records.dropped")


def test_lean_records_apply_the_documented_logging_optimisations_and_restore_them() -> None:
    saved = (logging._srcfile, logging.logThreads, logging.logProcesses)
    stream = io.StringIO()
    setup = logs.configure(format="json", stream=stream, non_blocking=False, lean_records=True)
    assert logging._srcfile is None
    assert (logging.logThreads, logging.logProcesses, logging.logMultiprocessing) == (
        False,
        False,
        False,
    )
    with logs.bind(request_id="r-1"):
        logs.get_logger("shop").warning("lean", extra={"order_id": 7})
    (line,) = lines(stream)
    assert (line["message"], line["request_id"], line["order_id"]) == ("lean", "r-1", 7)
    setup.close()
    assert (logging._srcfile, logging.logThreads, logging.logProcesses) == saved


def _record_fields(record: logging.LogRecord) -> dict[str, object]:
    """A record's attributes in order, without the three that the clock sets."""
    timed = {"created", "msecs", "relativeCreated"}
    return {key: value for key, value in record.__dict__.items() if key not in timed}


def _message(record: logging.LogRecord) -> str:
    """The formatted message, or the error formatting it raises (the same for both)."""
    try:
        return record.getMessage()
    except TypeError as error:
        return f"TypeError: {error}"


LEAN_APP = """
import json
import logging
import sys
from opentelemetry import trace

own = logging.StreamHandler(sys.stdout)
own.setFormatter(logging.Formatter("%(levelname)s %(funcName)s:%(lineno)d %(message)s"))
logging.getLogger("app").addHandler(own)

def place():
    with trace.get_tracer("app").start_as_current_span("place-order"):
        logging.getLogger("app.orders").warning("order %s placed", 42, extra={"order_id": 42})

place()
print("factory", logging.getLogRecordFactory().__name__, flush=True)
"""


def test_under_the_launcher_lean_records_take_effect_and_lines_match_the_spans(
    otlp_receiver: OtlpReceiver,
) -> None:
    run = run_instrumented(
        LEAN_APP,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint,
            "OTEL_RESILIENCE_LOG_FORMAT": "json",
            "OTEL_RESILIENCE_LOG_LEAN_RECORDS": "true",
        },
    ).check()
    (order,) = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    (span,) = otlp_receiver.wait_for_spans()
    assert (order["trace_id"], order["span_id"]) == (span.trace_id, span.span_id)
    assert (order["message"], order["order_id"]) == ("order 42 placed", 42)
    # The program's own format gets the documented placeholders; records are fast ones.
    assert "WARNING (unknown function):0 order 42 placed" in run.stdout
    assert "factory FastLogRecord" in run.stdout


@pytest.mark.parametrize(
    "args",
    [(), (7,), ("text",), ({"order": 7},), ({},), (1, 2), (None,), ([1],)],
    ids=["none", "int", "str", "mapping", "empty-mapping", "two", "None", "list"],
)
@pytest.mark.parametrize("pathname", ["(unknown file)", "/srv/app/orders.py", "orders"])
@pytest.mark.parametrize("level", [logging.INFO, logs.TRACE, 42])
@pytest.mark.parametrize("lean", [False, True], ids=["standard-settings", "lean-settings"])
def test_fast_records_are_the_standard_records_attribute_for_attribute(
    args: tuple[object, ...], pathname: str, level: int, lean: bool
) -> None:
    setup = logs.configure(
        format="json", stream=io.StringIO(), non_blocking=False, lean_records=lean
    )
    factory = logging.getLogRecordFactory()
    assert factory is FastLogRecord
    made = factory("shop", level, pathname, 12, "order %s", args, None, "place", None)
    standard = logging.LogRecord("shop", level, pathname, 12, "order %s", args, None, "place", None)
    assert isinstance(made, logging.LogRecord)
    assert list(made.__dict__) == list(standard.__dict__)
    assert _record_fields(made) == _record_fields(standard)
    assert _message(made) == _message(standard)
    assert abs(made.created - standard.created) < 1.0
    assert 0 <= made.msecs < 1000
    setup.close()
    assert logging.getLogRecordFactory() is logging.LogRecord


def _made_in_a_thread_and_a_task() -> list[tuple[logging.LogRecord, logging.LogRecord]]:
    """A fast and a standard record made side by side in a named thread and an asyncio task."""
    pairs: list[tuple[logging.LogRecord, logging.LogRecord]] = []

    def both() -> None:
        arguments = ("shop", logging.INFO, "/srv/app/orders.py", 3, "m", (), None, "f", None)
        pairs.append((FastLogRecord(*arguments), logging.LogRecord(*arguments)))

    worker = threading.Thread(target=both, name="orders-worker")
    worker.start()
    worker.join()

    async def in_a_task() -> None:
        both()

    async def main() -> None:
        await asyncio.create_task(in_a_task(), name="place-order")

    asyncio.run(main())
    return pairs


def test_fast_records_carry_the_thread_process_and_task_names_the_standard_ones_do() -> None:
    import multiprocessing  # noqa: F401 - processName is looked up only once it is imported

    setup = logs.configure(format="json", stream=io.StringIO(), non_blocking=False)
    in_thread, in_task = _made_in_a_thread_and_a_task()
    for fast, standard in (in_thread, in_task):
        assert _record_fields(fast) == _record_fields(standard)
    assert in_thread[0].threadName == "orders-worker"
    assert in_thread[0].process == os.getpid()
    assert in_thread[0].processName == "MainProcess"
    if sys.version_info >= (3, 12):
        assert in_task[0].__dict__["taskName"] == "place-order"
    setup.close()


def test_fast_records_follow_the_settings_as_a_program_changes_them() -> None:
    setup = logs.configure(format="human", stream=io.StringIO(), non_blocking=False)
    seen: list[logging.LogRecord] = []

    class Keeping(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logging.getLogger().addHandler(Keeping())
    log = logs.get_logger("shop")
    saved = logging.logThreads
    try:
        log.warning("with threads")
        logging.logThreads = False  # the program turns thread names off
        log.warning("without")
    finally:
        logging.logThreads = saved
    assert [type(record) for record in seen] == [FastLogRecord, FastLogRecord]
    assert seen[0].threadName == threading.current_thread().name
    assert seen[0].thread == threading.get_ident()
    assert (seen[1].threadName, seen[1].thread) == (None, None)
    setup.close()


def test_fast_records_can_be_turned_off_and_leave_a_programs_own_factory_in_place() -> None:
    setup = logs.configure(format="json", stream=io.StringIO(), fast_records=False)
    assert logging.getLogRecordFactory() is logging.LogRecord
    setup.close()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = logging.LogRecord(*args, **kwargs)  # type: ignore[arg-type]
        record.tenant = "acme"
        return record

    logging.setLogRecordFactory(factory)
    try:
        stream = io.StringIO()
        setup = logs.configure(format="json", stream=stream, non_blocking=False, lean_records=True)
        assert logging.getLogRecordFactory() is factory
        logs.get_logger("shop").warning("own factory", extra={"order_id": 7})
        (line,) = lines(stream)
        assert (line["message"], line["tenant"], line["order_id"]) == ("own factory", "acme", 7)
        setup.close()
        assert logging.getLogRecordFactory() is factory
    finally:
        logging.setLogRecordFactory(logging.LogRecord)


@pytest.mark.parametrize("lean", [False, True], ids=["standard-settings", "lean-settings"])
def test_fast_and_standard_records_give_the_same_json_lines(lean: bool) -> None:
    def line_of(fast: bool) -> dict[str, object]:
        stream = io.StringIO()
        setup = logs.configure(
            format="json", stream=stream, non_blocking=False, lean_records=lean, fast_records=fast
        )
        tracer = TracerProvider().get_tracer("test")
        with tracer.start_as_current_span("checkout"), logs.bind(request_id="r-1"):
            logs.get_logger("shop").warning("order %s", 7, extra={"order_id": 7, "note": "x"})
        setup.close()
        (line,) = lines(stream)
        del line["timestamp"], line["trace_id"], line["span_id"]
        return line

    assert line_of(fast=True) == line_of(fast=False)


def test_the_blocking_handler_honours_filters_and_never_raises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class BrokenSink:
        def write(self, data: bytes) -> None:
            if b"boom" in data:
                raise OSError("disk full")
            written.append(data)

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    written: list[bytes] = []
    setup = logs.configure(format="json", stream=io.StringIO(), non_blocking=False)
    handler = setup.handlers[0]
    handler.sink = BrokenSink()  # type: ignore[attr-defined]
    handler.addFilter(lambda record: "hidden" not in record.getMessage())
    log = logs.get_logger("shop")
    log.warning("shown")
    log.warning("hidden")
    log.warning("boom")  # reported by logging's handleError, never raised
    assert [json.loads(data)["message"] for data in written] == ["shown"]
    assert "disk full" in capsys.readouterr().err
