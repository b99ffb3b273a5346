"""Structured logs: bound context, redaction, the JSON and human formats, the TRACE level."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime
import enum
import io
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, Tracer

from otel_resilience.logs import _fields, _json_format
from otel_resilience.logs._context import (
    EMPTY,
    bind,
    bound,
    current_otel_context,
    current_span_ids,
)
from otel_resilience.logs._human_format import HumanFormatter, stream_supports_color
from otel_resilience.logs._json_format import JSON_FIELDS, JsonFormatter
from otel_resilience.logs._levels import TRACE, install_trace_level
from otel_resilience.logs._redaction import REDACTED, TRUNCATED, Redactor

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ANSI = "\x1b["


class Capture:
    """A dedicated logger whose records go through one formatter into a string buffer."""

    def __init__(self, logger: logging.Logger, stream: io.StringIO) -> None:
        self.logger = logger
        self.stream = stream

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    def record(self) -> dict[str, Any]:
        (only,) = self.records()
        return only


_counter = iter(range(1_000_000))


@pytest.fixture
def capture() -> Iterator[Callable[..., Capture]]:
    """Attach ``formatter`` to a fresh logger (or the named one), detached afterwards."""
    attached: list[tuple[logging.Logger, logging.Handler, int, bool]] = []

    def attach(formatter: logging.Formatter, name: str | None = None) -> Capture:
        logger = logging.getLogger(name or f"test_log_formats.{next(_counter)}")
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        attached.append((logger, handler, logger.level, logger.propagate))
        logger.addHandler(handler)
        logger.setLevel(1)
        logger.propagate = False
        return Capture(logger, stream)

    yield attach
    for logger, handler, level, propagate in attached:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture(params=["orjson", "json"])
def json_formatter(request: pytest.FixtureRequest) -> JsonFormatter:
    """A JsonFormatter serialising with orjson, then with the json fallback."""
    formatter = JsonFormatter()
    formatter._use_orjson = request.param == "orjson"
    return formatter


@pytest.fixture(scope="module")
def tracer() -> Tracer:
    return TracerProvider().get_tracer("test_log_formats")


def expected_keys(*presences: str) -> set[str]:
    chosen = {"always", *presences}
    return {name for name, field in JSON_FIELDS.items() if field.presence in chosen}


def assert_schema(
    line: dict[str, Any], *presences: str, others: frozenset[str] | set[str] = frozenset()
) -> None:
    """The line has exactly the fixed fields for ``presences`` (plus ``others``), typed."""
    assert set(line) == expected_keys(*presences) | others
    for name, value in line.items():
        if name in JSON_FIELDS:
            assert type(value) is JSON_FIELDS[name].type, name
    assert RFC3339_UTC.match(line["timestamp"])


def hex_ids(span: Span) -> tuple[str, str, str]:
    context = span.get_span_context()
    return (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
        format(context.trace_flags, "02x"),
    )


# -- the JSON format ------------------------------------------------------------------------


def test_json_line_outside_a_span_has_exactly_the_always_fields(
    capture: Callable[..., Capture], json_formatter: JsonFormatter
) -> None:
    log = capture(json_formatter)
    log.logger.info("stock is %d", 7)
    line = log.record()
    assert_schema(line)
    assert line["level"] == "INFO"
    assert line["logger"] == log.logger.name
    assert line["message"] == "stock is 7"
    assert "\n" not in log.text().rstrip("\n")


def test_json_timestamp_is_the_records_creation_time_in_utc(json_formatter: JsonFormatter) -> None:
    record = logging.makeLogRecord({"msg": "x", "created": 1795798923.123456})
    line = json.loads(json_formatter.format(record))
    assert line["timestamp"] == "2026-11-27T17:02:03.123456Z"


def test_json_line_inside_a_span_carries_its_ids(
    capture: Callable[..., Capture], json_formatter: JsonFormatter, tracer: Tracer
) -> None:
    log = capture(json_formatter)
    with tracer.start_as_current_span("outer") as outer:
        log.logger.info("in outer")
        with tracer.start_as_current_span("inner") as inner:
            log.logger.info("in inner")
        log.logger.info("in outer again")
    log.logger.info("after")

    lines = log.records()
    for line, span in zip(lines[:3], (outer, inner, outer), strict=True):
        assert_schema(line, "span")
        assert (line["trace_id"], line["span_id"], line["trace_flags"]) == hex_ids(span)
    assert lines[0]["trace_id"] == lines[1]["trace_id"]
    assert lines[0]["span_id"] != lines[1]["span_id"]
    assert_schema(lines[3])


def test_ids_follow_the_span_whatever_else_the_otel_context_holds(
    capture: Callable[..., Capture], json_formatter: JsonFormatter, tracer: Tracer
) -> None:
    # The fast path caches the ids per OTel context object: a new context holding the same
    # span (baggage, a value set by an instrumentation) must give the same ids, and the
    # same bound mapping under another span the other span's.
    log = capture(json_formatter)
    with bind(request_id="r-1"), tracer.start_as_current_span("outer") as outer:
        log.logger.info("before", extra={"order_id": 1})
        token = otel_context.attach(otel_context.set_value("unrelated", 1))
        try:
            log.logger.info("with a value", extra={"order_id": 2})
        finally:
            otel_context.detach(token)
        with tracer.start_as_current_span("inner") as inner:
            log.logger.info("inner", extra={"order_id": 3})
    lines = log.records()
    for line, span in zip(lines, (outer, outer, inner), strict=True):
        assert (line["trace_id"], line["span_id"], line["trace_flags"]) == hex_ids(span)
        assert line["request_id"] == "r-1"
    assert [line["order_id"] for line in lines] == [1, 2, 3]


def test_the_otel_context_is_read_as_the_api_reads_it(tracer: Tracer) -> None:
    assert current_otel_context() is otel_context.get_current()
    with tracer.start_as_current_span("s"):
        assert current_otel_context() is otel_context.get_current()
        assert current_span_ids() is not None


def test_optional_fields_appear_when_asked(capture: Callable[..., Capture], tracer: Tracer) -> None:
    log = capture(JsonFormatter(service_name="checkout", include_thread=True, include_source=True))
    with tracer.start_as_current_span("s"):
        log.logger.warning("look", stack_info=True)
    line = log.record()
    assert_schema(line, "span", "service_name", "include_thread", "include_source", "stack_info")
    assert line["service.name"] == "checkout"
    assert line["thread.name"] == threading.current_thread().name
    assert line["thread.id"] == threading.get_ident()
    assert line["code.function.name"] == "test_optional_fields_appear_when_asked"
    assert line["code.file.path"] == __file__
    assert line["code.stacktrace"].startswith("Stack (most recent call last):")


def test_third_party_records_are_formatted_alike(tracer: Tracer) -> None:
    """A library's logger, reaching the program's root handler, gets the same fields."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    library = logging.getLogger("urllib3.connectionpool")
    saved_level, saved_library_level = root.level, library.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    library.setLevel(logging.NOTSET)
    try:
        with bind(request_id="r1"), tracer.start_as_current_span("call") as span:
            library.debug("Starting new HTTPS connection (%d): %s:%s", 1, "example.org", 443)
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)
        library.setLevel(saved_library_level)
    (line,) = (json.loads(text) for text in stream.getvalue().splitlines())
    assert_schema(line, "span", others={"request_id"})
    assert line["logger"] == "urllib3.connectionpool"
    assert line["message"] == "Starting new HTTPS connection (1): example.org:443"
    assert line["span_id"] == hex_ids(span)[1]
    assert line["request_id"] == "r1"


def test_bound_and_extra_fields_are_top_level_in_order(
    capture: Callable[..., Capture], json_formatter: JsonFormatter
) -> None:
    log = capture(json_formatter)
    with bind(request_id="r1", user_id="u7", tenant="acme"):
        log.logger.info("paid", extra={"order_id": 42, "amount": 9.5, "gift": False})
    line = log.record()
    assert_schema(line, others={"request_id", "user_id", "tenant", "order_id", "amount", "gift"})
    assert list(line)[4:] == ["request_id", "user_id", "tenant", "order_id", "amount", "gift"]
    assert (line["order_id"], line["amount"], line["gift"]) == (42, 9.5, False)


def test_colliding_names_keep_both_values_under_a_prefix(
    capture: Callable[..., Capture], json_formatter: JsonFormatter
) -> None:
    log = capture(json_formatter)
    with bind({"level": "bound", "user_id": "u-bound", "trace_id": "mine"}):
        log.logger.info("m", extra={"timestamp": "extra", "user_id": "u-extra"})
    line = log.record()
    assert line["level"] == "INFO"
    assert line["context.level"] == "bound"
    assert line["context.trace_id"] == "mine"
    assert "trace_id" not in line
    assert line["extra.timestamp"] == "extra"
    assert RFC3339_UTC.match(line["timestamp"])
    assert line["user_id"] == "u-extra"
    assert line["context.user_id"] == "u-bound"


class Unrepresentable:
    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")

    __str__ = __repr__


def test_extra_values_of_any_type_never_raise(
    capture: Callable[..., Capture], json_formatter: JsonFormatter
) -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    when = datetime.datetime(2026, 11, 27, 17, 2, 3, 123456, tzinfo=datetime.timezone.utc)
    log = capture(json_formatter)
    log.logger.info("plain", extra={"tags": {"b", "a"}, "raw": b"\x00\xff", "when": when})
    log.logger.info("broken repr", extra={"thing": Unrepresentable()})
    log.logger.info("huge int and nan", extra={"big": 2**80, "ratio": float("nan")})
    log.logger.info("odd keys", extra={"by_tuple": {(1, 2): "pair"}, "by_int": {1: "one"}})
    log.logger.info("surrogate \udcff", extra={"path": "caf\udce9"})
    log.logger.info("cycle", extra={"loop": cyclic})

    plain, broken, huge, keys, surrogate, cycle = log.records()
    assert plain["tags"] == ["a", "b"]
    assert plain["raw"] == repr(b"\x00\xff")
    assert plain["when"] == "2026-11-27T17:02:03.123456+00:00"
    assert broken["thing"] == "<unrepresentable Unrepresentable>"
    assert str(huge["big"]) == str(2**80)
    assert huge["ratio"] is None
    assert keys["by_tuple"] == {"(1, 2)": "pair"}
    assert keys["by_int"] == {"1": "one"}
    assert surrogate["message"] == "surrogate \\udcff"
    assert surrogate["path"] == "caf\\udce9"
    assert "self" in json.dumps(cycle["loop"])
    log.stream.getvalue().encode("utf-8")  # every line is valid UTF-8


def test_a_broken_percent_format_never_raises(
    capture: Callable[..., Capture], json_formatter: JsonFormatter
) -> None:
    log = capture(json_formatter)
    log.logger.info("%d items for %s", "not a number")  # noqa: PLE1206 - the point
    log.logger.info(Unrepresentable())
    first, second = log.records()
    assert first["message"] == "%d items for %s ('not a number',)"
    assert first["otel_resilience.format_error"].startswith("message: TypeError")
    assert_schema(first, "format_error")
    assert second["message"] == "<unrepresentable Unrepresentable>"


def test_an_internal_failure_still_gives_a_valid_minimal_line(
    json_formatter: JsonFormatter,
) -> None:
    record = logging.makeLogRecord({"msg": "kept", "name": "svc", "levelname": "INFO"})
    record.created = "not a time"  # type: ignore[assignment]
    line = json.loads(json_formatter.format(record))
    assert set(line) == {"timestamp", "level", "logger", "message", "otel_resilience.format_error"}
    assert line["message"] == "kept"
    assert line["otel_resilience.format_error"].startswith("ValueError")
    assert json.loads(json_formatter.format_bytes(record))["message"] == "kept"


def test_format_bytes_is_the_line_with_a_newline(json_formatter: JsonFormatter) -> None:
    record = logging.makeLogRecord({"msg": "café %s", "args": ("crème",), "levelno": 20})
    as_text = json_formatter.format(record)
    as_bytes = json_formatter.format_bytes(record)
    assert as_bytes == (as_text + "\n").encode("utf-8")
    assert json.loads(as_bytes)["message"] == "café crème"


class PaymentDeclined(Exception):
    pass


def test_exceptions_are_structured(
    capture: Callable[..., Capture], json_formatter: JsonFormatter, tracer: Tracer
) -> None:
    log = capture(json_formatter)
    with tracer.start_as_current_span("pay"):
        try:
            raise PaymentDeclined("card expired")
        except PaymentDeclined:
            log.logger.exception("payment failed")
        stock: dict[str, int] = {}
        try:
            stock["missing"]
        except KeyError:
            log.logger.error("lookup failed", exc_info=True)
    log.logger.error("no exception here", exc_info=True)  # exc_info=(None, None, None)

    declined, missing, none = log.records()
    assert_schema(declined, "span", "exc_info")
    assert declined["exception.type"] == f"{__name__}.PaymentDeclined"
    assert declined["exception.message"] == "card expired"
    stack = declined["exception.stacktrace"]
    assert stack.startswith("Traceback (most recent call last):")
    assert 'raise PaymentDeclined("card expired")' in stack
    assert stack.endswith("PaymentDeclined: card expired")
    assert missing["exception.type"] == "KeyError"
    assert missing["exception.message"] == "'missing'"
    assert_schema(none)


def test_json_fields_are_all_documented_in_the_module() -> None:
    doc = _json_format.__doc__ or ""
    for name in JSON_FIELDS:
        assert f"``{name}``" in doc, name


# -- bound context --------------------------------------------------------------------------


def test_nested_binds_merge_inner_wins_and_restore() -> None:
    assert bound() == {}
    with bind(request_id="r1", user_id="u7"):
        with bind(user_id="u8", step="pay") as inner:
            assert bound() == {"request_id": "r1", "user_id": "u8", "step": "pay"}
            assert inner.fields == bound()
        assert bound() == {"request_id": "r1", "user_id": "u7"}
    assert bound() == {}


def test_bind_without_with_is_undone_by_unbind_or_reset() -> None:
    binding = bind(request_id="r1")
    assert bound() == {"request_id": "r1"}
    binding.unbind()
    binding.unbind()  # a second unbind does nothing
    assert bound() == {}
    other = bind({"tenant.id": "acme"})
    assert bound() == {"tenant.id": "acme"}
    other.reset()
    assert bound() is EMPTY


def test_bound_is_the_same_read_only_object_until_something_is_bound() -> None:
    with bind(request_id="r1"):
        first = bound()
        assert bound() is first
        with bind():
            assert bound() is first
        with pytest.raises(TypeError):
            first["request_id"] = "r2"  # type: ignore[index]
        with bind(user_id="u7"):
            assert bound() is not first
        assert bound() is first


def test_unbinding_in_another_context_is_refused_clearly() -> None:
    binding = contextvars.copy_context().run(bind, request_id="r1")
    with pytest.raises(ValueError, match="another context"):
        binding.unbind()


def test_bound_context_follows_copied_contexts_into_threads(
    capture: Callable[..., Capture],
) -> None:
    log = capture(JsonFormatter())

    def work(name: str) -> None:
        with bind(worker=name):
            log.logger.info(name)

    with bind(request_id="r1"):
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(work, f"w{index}"))
            for index in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        log.logger.info("main")

    lines = {line["message"]: line for line in log.records()}
    for index in range(4):
        name = f"w{index}"
        assert lines[name]["request_id"] == "r1"
        assert lines[name]["worker"] == name
    assert "worker" not in lines["main"]


def test_each_asyncio_task_has_its_own_request_id(capture: Callable[..., Capture]) -> None:
    log = capture(JsonFormatter())

    async def handle(request_id: str) -> None:
        with bind(request_id=request_id):
            for step in range(3):
                await asyncio.sleep(0)  # interleave with the other requests
                log.logger.info("%s step %d", request_id, step)

    async def serve() -> None:
        with bind(service_instance="a"):
            await asyncio.gather(*(handle(f"r{index}") for index in range(5)))

    asyncio.run(serve())
    lines = log.records()
    assert len(lines) == 15
    assert len({line["request_id"] for line in lines[:5]}) > 1  # they did interleave
    for line in lines:
        assert line["message"].startswith(line["request_id"] + " ")
        assert line["service_instance"] == "a"


def test_current_span_ids_are_formatted_once_per_span(tracer: Tracer) -> None:
    assert current_span_ids() is None
    with tracer.start_as_current_span("s") as span:
        first = current_span_ids()
        assert first is not None
        assert current_span_ids() is first
        assert (first.trace_id, first.span_id, first.trace_flags) == hex_ids(span)
    assert current_span_ids() is None


# -- redaction ------------------------------------------------------------------------------


def test_credentials_are_redacted_in_bound_extra_and_nested_fields(
    capture: Callable[..., Capture], json_formatter: JsonFormatter
) -> None:
    log = capture(json_formatter)
    with bind(password="hunter2", user_id="u7"):
        log.logger.info(
            "login",
            extra={
                "Authorization": "Bearer abc",
                "api_token": "t0k",
                "request": {"headers": {"Cookie": "sid=1", "Accept": "*/*"}},
                "attempts": [{"passwd": "x"}, {"ok": 1}],
            },
        )
    line = log.record()
    assert line["password"] == REDACTED
    assert line["user_id"] == "u7"
    assert line["Authorization"] == REDACTED
    assert line["api_token"] == REDACTED
    assert line["request"] == {"headers": {"Cookie": REDACTED, "Accept": "*/*"}}
    assert line["attempts"] == [{"passwd": REDACTED}, {"ok": 1}]
    assert "hunter2" not in log.text()
    assert "Bearer" not in log.text()


def test_redactor_matches_normalised_substrings_and_is_configurable() -> None:
    redactor = Redactor()
    for name in ("password", "DB_PASSWORD", "X-Api-Key", "apiKey", "set-cookie", "sessionid"):
        assert redactor.is_sensitive(name), name
    for name in ("user_id", "request_id", "path", "keyboard"):
        assert not redactor.is_sensitive(name), name

    fields = {"user": "u7", "nested": {"a": [1, 2]}}
    assert redactor.redact(fields) is fields  # nothing to change: no copy

    keep = Redactor(keep=["token_count"])
    assert keep.redact({"token_count": 12, "token": "t"}) == {"token_count": 12, "token": REDACTED}
    only = Redactor(names=["pin"])
    assert only.redact({"pin": 1234, "password": "p"}) == {"pin": REDACTED, "password": "p"}
    more = Redactor(extra=["iban"])
    assert more.redact({"IBAN": "DE00", "secret": "s"}) == {"IBAN": REDACTED, "secret": REDACTED}
    off = Redactor(enabled=False)
    assert off.redact({"password": "p"}) == {"password": "p"}
    shallow = Redactor(max_depth=1)
    assert shallow.redact({"a": {"b": {"password": "p"}}}) == {"a": {"b": TRUNCATED}}
    with pytest.raises(ValueError, match="non-empty"):
        Redactor(names=["--"])


def test_redaction_can_be_turned_off_per_formatter(capture: Callable[..., Capture]) -> None:
    log = capture(JsonFormatter(redactor=Redactor(enabled=False)))
    log.logger.info("m", extra={"password": "p"})
    assert log.record()["password"] == "p"


# -- the human format -----------------------------------------------------------------------


def test_human_lines_align_and_show_short_ids(
    capture: Callable[..., Capture], tracer: Tracer
) -> None:
    log = capture(HumanFormatter(color=False), "shop.api")
    short = logging.getLogger("shop.api.db")
    with bind(request_id="r1", note="two words"):
        with tracer.start_as_current_span("s") as span:
            log.logger.info("first")
            short.critical("second", extra={"attempt": 2})
        log.logger.warning("third")
    lines = log.lines()
    assert len(lines) == 3
    message_columns = {
        line.index(message)
        for line, message in zip(lines, ("first", "second", "third"), strict=True)
    }
    assert message_columns == {len("17:02:03.123 ") + len("CRITICAL ") + 20 + 2}
    trace_id, span_id, _ = hex_ids(span)
    assert lines[0].endswith(
        f'first  request_id=r1 note="two words"  [trace={trace_id[:8]} span={span_id[:8]}]'
    )
    assert lines[1].split()[1] == "CRITICAL"
    assert "attempt=2  [trace=" in lines[1]
    assert lines[2].endswith('third  request_id=r1 note="two words"')
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{3} WARNING  ", lines[2])
    assert ANSI not in log.text()


def test_human_full_ids_exceptions_and_redaction(
    capture: Callable[..., Capture], tracer: Tracer
) -> None:
    log = capture(HumanFormatter(short_ids=False))
    with tracer.start_as_current_span("s") as span:
        try:
            raise PaymentDeclined("card expired")
        except PaymentDeclined:
            log.logger.exception("failed", extra={"password": "hunter2"})
    first, *traceback_lines = log.lines()
    trace_id, span_id, _ = hex_ids(span)
    assert first.endswith(f"failed  password={REDACTED}  [trace={trace_id} span={span_id}]")
    assert traceback_lines[0] == "Traceback (most recent call last):"
    assert traceback_lines[-1] == f"{__name__}.PaymentDeclined: card expired"
    assert "hunter2" not in log.text()


def test_human_colour_only_when_asked(capture: Callable[..., Capture]) -> None:
    log = capture(HumanFormatter(color=True))
    log.logger.error("red", extra={"k": "v"})
    text = log.text()
    assert "\x1b[31mERROR\x1b[0m" in text
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert plain.split()[1:] == ["ERROR", log.logger.name, "red", "k=v"]


def test_human_format_never_raises(capture: Callable[..., Capture]) -> None:
    log = capture(HumanFormatter())
    log.logger.info("%d", "x", extra={"thing": Unrepresentable(), "path": "caf\udce9"})
    line = log.text()
    assert "%d ('x',)" in line
    assert "thing=<unrepresentable" in line or 'thing="<unrepresentable' in line
    assert "caf\\udce9" in line
    record = logging.makeLogRecord({"msg": "kept"})
    record.created = "not a time"  # type: ignore[assignment]
    assert "kept" in HumanFormatter().format(record)


def test_stream_supports_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert not stream_supports_color(io.StringIO())
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        assert stream_supports_color(terminal)
        monkeypatch.setenv("NO_COLOR", "1")
        assert not stream_supports_color(terminal)
        monkeypatch.setenv("NO_COLOR", "")
        assert stream_supports_color(terminal)
        monkeypatch.setenv("TERM", "dumb")
        assert not stream_supports_color(terminal)
    os.close(leader)
    assert not stream_supports_color(terminal)  # closed: isatty raises, answer is no


# -- the TRACE level ------------------------------------------------------------------------


def test_trace_level_prints_as_trace_even_before_it_is_installed() -> None:
    record = logging.makeLogRecord({"msg": "fine", "levelno": TRACE, "levelname": "Level 5"})
    assert json.loads(JsonFormatter().format(record))["level"] == "TRACE"
    assert HumanFormatter().format(record).split()[1] == "TRACE"


def test_install_trace_level_is_idempotent_and_reports_the_caller(
    capture: Callable[..., Capture],
) -> None:
    install_trace_level()
    method = logging.Logger.trace  # type: ignore[attr-defined]
    install_trace_level()
    assert logging.Logger.trace is method  # type: ignore[attr-defined]
    assert logging.getLevelName(TRACE) == "TRACE"
    assert logging.getLevelName("TRACE") == TRACE

    log = capture(JsonFormatter(include_source=True))
    log.logger.trace("detail %s", "here")  # type: ignore[attr-defined]
    log.logger.setLevel(logging.DEBUG)
    log.logger.trace("filtered out")  # type: ignore[attr-defined]
    line = log.record()
    assert (line["level"], line["message"]) == ("TRACE", "detail here")
    assert line["code.function.name"] == sys._getframe().f_code.co_name
    assert line["code.file.path"] == __file__


def test_a_bound_mutable_value_is_redacted_as_it_is_when_logged(
    capture: Callable[..., Capture],
) -> None:
    profile: dict[str, str] = {"user": "u7"}
    for formatter in (JsonFormatter(), HumanFormatter()):
        log = capture(formatter)
        with bind(profile=profile, request_id="r1"):
            log.logger.info("before")
            profile["password"] = "hunter2"
            log.logger.info("after")
            del profile["password"]
        assert "hunter2" not in log.text()


# -- the fast path writes exactly what the general path writes --------------------------------


class _Colour(enum.Enum):
    RED = "red"


def _records_of_every_shape(tracer: Tracer) -> list[logging.LogRecord]:
    """Records as the fast path meets them and as it hands them over to the general path."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    log = logging.getLogger(f"test_log_formats.shapes.{next(_counter)}")
    log.setLevel(1)
    log.propagate = False
    log.addHandler(Keep())
    profile: dict[str, object] = {"user": "u7", "password": "hunter2"}
    extras: list[dict[str, object]] = [
        {},
        {"order_id": 7},
        {"order_id": 2**70, "ratio": float("nan"), "when": datetime.date(2026, 1, 2)},
        {"colour": _Colour.RED, "tags": {"b", "a"}, "nested": {"api_key": "k", "n": [1, 2]}},
        {"api_token": "t0k3n", "naïve": "café"},
        {"user_id": "extra wins"},  # collides with a bound field
        {"level": "mine", "trace_id": "x"},  # collides with reserved fields
        {"bad": "lone \udcff surrogate"},
        {"object": object()},
        {"note": "Bearer s3cr3t-XYZ"},  # a credential in the value of a clean name
        {"note": "sent to postgresql://u:s3cr3t-XYZ@127.0.0.1/db", "raw": b"token=s3cr3t-XYZ"},
    ]
    messages: list[tuple[object, tuple[object, ...]]] = [
        ("plain", ()),
        ("order %s placed", (5,)),
        ("%d is not a number", ("five",)),  # does not format: general path
        ({"a": 1}, ()),  # not a string
        ("surrogate \udcff in message", ()),
        ("ünïcödé %s", ("ok",)),
        ("connecting to %s", ("redis://:s3cr3t-XYZ@127.0.0.1:6379/0",)),
    ]
    for context in ({}, {"request_id": "r-42", "user_id": "u-7"}, {"profile": profile}):
        for in_span in (False, True):
            with contextlib.ExitStack() as stack:
                if in_span:
                    stack.enter_context(tracer.start_as_current_span("shape"))
                stack.enter_context(bind(context))
                for extra in extras:
                    for message, args in messages:
                        log.info(message, *args, extra=extra)
                log.log(TRACE, "trace level")
                log.log(33, "custom level")
                log.warning("with stack", stack_info=True)
                try:
                    raise KeyError("boom")
                except KeyError:
                    log.exception("with exception")
    return records


@pytest.mark.parametrize("service_name", [None, "shop", "caf\udcffe"])
def test_the_fast_path_writes_what_the_general_path_writes(
    tracer: Tracer, service_name: str | None
) -> None:
    records = _records_of_every_shape(tracer)
    fast = JsonFormatter(service_name=service_name)
    general = JsonFormatter(service_name=service_name)
    general._fast = False
    general_path = fast._general_bytes
    fell_back = 0

    def counting(record: logging.LogRecord) -> bytes:
        nonlocal fell_back
        fell_back += 1
        return general_path(record)

    fast._general_bytes = counting  # type: ignore[method-assign]
    for record in records * 2:  # twice: the second time with every cache warm
        assert fast.format_bytes(record) == general.format_bytes(record), record.__dict__
        assert fast.format(record) == general.format(record)
        json.loads(fast.format_bytes(record))
        assert b"s3cr3t" not in fast.format_bytes(record)
    # The fast path did run for the common shapes (each record is formatted three times).
    assert fell_back < 3 * 2 * len(records) or not fast._fast


def test_extras_are_found_among_attributes_set_after_the_record_was_made() -> None:
    record = logging.LogRecord("n", logging.INFO, __file__, 1, "m", (), None)
    assert _fields.record_extras(record) == {}
    record.__dict__.update({"order_id": 1, "message": "set by a formatter", "user": "u"})
    assert _fields.record_extras(record) == {"order_id": 1, "user": "u"}

    class Subclass(logging.LogRecord):
        pass

    other = Subclass("n", logging.INFO, __file__, 1, "m", (), None)
    other.__dict__["order_id"] = 2
    assert _fields.record_extras(other) == {"order_id": 2}
