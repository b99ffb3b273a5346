"""The fields step alone, and every output's shortcuts checked against it.

:mod:`otel_resilience.logs._fields` decides what a record's fields are (message and its
fallback, fixed fields, bound context, ``extra=`` fields, collisions, redaction); the JSON
formatter, the human formatter and the OTLP handler only render them. These tests pin the
step's rules on records built here, then check that the outputs' fast paths (the JSON
formatter's spliced bytes, the OTLP handler's plain attributes) give exactly what the step
gives, on generated records. No server, no subprocess, no network: records are made in this
process, spans come from an SDK tracer provider, OTLP records go to an in-memory exporter.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from otel_resilience.logs._context import bind
from otel_resilience.logs._fast_record import FastLogRecord
from otel_resilience.logs._fields import (
    CODE_STACKTRACE,
    EXCEPTION_STACKTRACE,
    FORMAT_ERROR,
    JSON_FIELDS,
    RESERVED_NAMES,
    STANDARD_RECORD_ATTRIBUTES,
    BoundFields,
    RecordFields,
    as_is,
    clean_text,
    merge_extras,
    record_extras,
    record_message,
)
from otel_resilience.logs._human_format import HumanFormatter
from otel_resilience.logs._json_format import JsonFormatter
from otel_resilience.logs._otlp_handler import OtlpLogHandler
from otel_resilience.logs._redaction import REDACTED, Redactor

SECRET = "s3cr3t-XYZ"
TRACER = TracerProvider(shutdown_on_exit=False).get_tracer("test_log_fields")
ENVELOPE = ("timestamp", "level", "logger", "message", "trace_id", "span_id", "trace_flags")
"""The JSON line's fields that are not the step's (the renderer's own, and correlation)."""


def make_record(
    msg: object = "m",
    args: tuple[object, ...] = (),
    *,
    extras: Mapping[str, object] | None = None,
    exc_info: Any = None,
    stack_info: str | None = None,
    record_type: type[logging.LogRecord] = logging.LogRecord,
) -> logging.LogRecord:
    """A record as ``Logger.makeRecord`` makes it: ``extra=`` set after the constructor."""
    record = record_type("svc.orders", logging.INFO, __file__, 7, msg, args, exc_info, "fn")
    record.stack_info = stack_info
    for name, value in (extras or {}).items():
        record.__dict__[name] = value
    return record


def caught() -> Any:
    try:
        raise ValueError(f"cannot reach postgresql://app:{SECRET}@127.0.0.1/db")
    except ValueError:
        return sys.exc_info()


def step(**options: Any) -> RecordFields[object]:
    return RecordFields[object](options.pop("redactor", Redactor()), as_is, **options)


# -- the step's parts, alone -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "args", "message", "error"),
    [
        ("plain", (), "plain", None),
        ("order %s placed", (5,), "order 5 placed", None),
        ("%d items", ("five",), "%d items ('five',)", "message: TypeError"),
        ({"not": "a string"}, (), "{'not': 'a string'}", None),
    ],
)
def test_the_message_falls_back_to_the_raw_text_and_says_why(
    msg: object, args: tuple[object, ...], message: str, error: str | None
) -> None:
    found, why = record_message(make_record(msg, args))
    assert found == message
    if error is None:
        assert why is None
    else:
        assert why is not None and why.startswith(error)


def test_the_message_and_its_error_are_redacted() -> None:
    fields = step()
    record = make_record("to %s %d", (f"redis://:{SECRET}@127.0.0.1:6379/0", "x"))
    message, error = fields.message(record)
    assert SECRET not in message
    assert error is not None and error.startswith("message: TypeError")
    assert fields.message(make_record(f"token={SECRET}")) == ("token=REDACTED", None)


def test_fixed_fields_come_in_schema_order_and_only_when_they_apply() -> None:
    everything = step(include_thread=True, include_source=True)
    record = make_record("%d", ("x",), exc_info=caught(), stack_info=f"Stack\n  pwd={SECRET}")
    _, error = everything.message(record)
    fixed = everything.fixed(record, error, logging.Formatter())
    expected_order = [name for name in JSON_FIELDS if name in fixed]
    assert list(fixed) == expected_order
    assert list(fixed) == [
        "thread.name",
        "thread.id",
        "code.function.name",
        "code.file.path",
        "code.line.number",
        "exception.type",
        "exception.message",
        EXCEPTION_STACKTRACE,
        CODE_STACKTRACE,
        FORMAT_ERROR,
    ]
    assert (fixed["code.function.name"], fixed["code.line.number"]) == ("fn", 7)
    assert fixed["exception.type"] == "ValueError"
    assert SECRET not in repr(fixed)
    assert str(fixed[EXCEPTION_STACKTRACE]).startswith("Traceback (most recent call last):")

    plain = step()
    assert plain.fixed(make_record(), None, logging.Formatter()) == {}
    no_exception = make_record(exc_info=(None, None, None))  # exc_info=True outside except
    assert plain.fixed(no_exception, None, logging.Formatter()) == {}


def test_fixed_fields_are_added_to_the_outputs_own_dict_when_given() -> None:
    fields = step()
    line: dict[str, object] = {"timestamp": "t", "message": "m"}
    record = make_record(stack_info="Stack")
    assert fields.fixed(record, None, logging.Formatter(), into=line) is line
    assert list(line) == ["timestamp", "message", CODE_STACKTRACE]


def test_bound_and_extra_fields_collide_by_the_documented_rule() -> None:
    fields = step()
    record = make_record(
        extras={"user_id": "from extra", "timestamp": "mine", "extra.level": "taken", "n": 1}
    )
    with bind({"level": "bound", "user_id": "from bind", "extra.level": "bound too"}):
        attributes = fields.attributes(record)
    assert attributes == {
        "context.level": "bound",  # a bound field with a reserved name moves aside
        "user_id": "from extra",  # extra= is the more specific: it takes the name...
        "extra.level": "taken",  # (a plain name for extra=: it takes it from the bound one)
        "context.user_id": "from bind",  # ...and the bound value moves aside
        "context.extra.level": "bound too",
        "extra.timestamp": "mine",  # an extra= field with a reserved name is renamed
        "n": 1,
    }
    assert list(attributes)[:2] == ["context.level", "user_id"]  # bound order, then extras


def test_a_prefixed_name_already_taken_is_not_written() -> None:
    fields: dict[str, object] = {"extra.level": "bound"}
    merge_extras(fields, {"level": "extra"}, as_is)
    assert fields == {"extra.level": "bound"}


def test_an_output_that_reserves_nothing_keeps_names_but_not_the_collision_order() -> None:
    human = step(reserved=frozenset())
    record = make_record(extras={"level": "extra", "user_id": "from extra"})
    with bind(level="bound", user_id="from bind", message="bound"):
        attributes = human.attributes(record)
    assert attributes == {
        "level": "extra",
        "user_id": "from extra",
        "message": "bound",
        "context.level": "bound",
        "context.user_id": "from bind",
    }


def test_bound_and_extra_fields_are_redacted_by_name_and_in_values() -> None:
    fields = step()
    record = make_record(
        extras={"api_token": SECRET, "target": f"https://h/x?sig={SECRET}", "n": {"pwd": 1}}
    )
    with bind(password=SECRET, dsn="x", database=f"mysql://root:{SECRET}@127.0.0.1/test"):
        attributes = fields.attributes(record)
    assert attributes["password"] == attributes["dsn"] == attributes["api_token"] == REDACTED
    assert attributes["n"] == {"pwd": REDACTED}
    assert SECRET not in repr(attributes)
    off = step(redactor=Redactor(enabled=False))
    with bind(password=SECRET):
        assert off.attributes(make_record())["password"] == SECRET


def test_convert_runs_before_the_collision_rule_and_on_the_fixed_fields() -> None:
    def shouting(name: str, value: object) -> tuple[str, str]:
        return name.lower(), str(value).upper()

    fields = RecordFields[str](Redactor(), shouting)
    record = make_record(extras={"LEVEL": "x", "Order": 1}, stack_info="stack")
    with bind(User="u"):
        assert fields.attributes(record) == {"user": "U", "extra.level": "X", "order": "1"}
    assert fields.fixed(record, "why", logging.Formatter()) == {
        CODE_STACKTRACE: "STACK",
        FORMAT_ERROR: "WHY",
    }


def test_the_bound_context_is_prepared_once_per_mapping_of_constants() -> None:
    prepare = BoundFields[object](Redactor(), as_is)
    with bind(request_id="r1") as binding:
        first = prepare(binding.fields)
        assert prepare(binding.fields) is first
    profile: dict[str, str] = {"user": "u7"}
    with bind(profile=profile) as binding:
        before = prepare(binding.fields)
        profile["password"] = SECRET  # a mutable value: prepared again on each record
        after = prepare(binding.fields)
    assert after is not before
    assert after["profile"] == {"user": "u7", "password": REDACTED}


def test_attributes_are_a_new_dict_never_the_cached_context() -> None:
    fields = step()
    with bind(request_id="r1") as binding:
        attributes = fields.attributes(make_record())
        attributes["mine"] = 1
        assert fields.context(binding.fields) == {"request_id": "r1"}


def test_appended_extras_only_when_the_rule_renames_nothing() -> None:
    fields = step()
    context = {"request_id": "r1"}
    assert fields.appended_extras(context, {"n": 1, "token": "t"}) == {"n": 1, "token": REDACTED}
    assert fields.appended_extras(context, {"request_id": "r2"}) is None
    assert fields.appended_extras(context, {"level": "x"}) is None
    assert step(reserved=frozenset()).appended_extras(context, {"level": "x"}) == {"level": "x"}


@pytest.mark.parametrize("record_type", [logging.LogRecord, FastLogRecord])
def test_extras_are_the_attributes_added_after_the_record_was_made(
    record_type: type[logging.LogRecord],
) -> None:
    assert record_extras(make_record(record_type=record_type)) == {}
    record = make_record(extras={"order_id": 1, "message": "set by a formatter", "b": 2})
    assert record_extras(record) == {"order_id": 1, "b": 2}


def test_the_whole_step_in_one_call() -> None:
    fields = step()
    record = make_record("paid %s", ("now",), extras={"n": 1}, exc_info=caught())
    with bind(request_id="r1"):
        result = fields(record, logging.Formatter())
    assert result.message == "paid now"
    assert list(result.fixed) == ["exception.type", "exception.message", EXCEPTION_STACKTRACE]
    assert result.attributes == {"request_id": "r1", "n": 1}


# -- every output renders the step's fields -----------------------------------------------


def otlp_pipeline() -> tuple[OtlpLogHandler, InMemoryLogRecordExporter]:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return OtlpLogHandler(provider), exporter


TABLE: list[tuple[dict[str, object], dict[str, object], str, tuple[object, ...], bool]] = [
    # bound, extras, message, args, with an exception
    ({}, {}, "plain", (), False),
    ({"request_id": "r1"}, {"order_id": 7}, "order %s", (7,), False),
    ({"level": "b", "user_id": "b"}, {"user_id": "e", "timestamp": "e"}, "m", (), False),
    ({"password": SECRET}, {"api_token": SECRET, "note": f"Bearer {SECRET}"}, "m", (), True),
    ({}, {"extra.level": 1, "level": 2}, "%d", ("x",), False),
]


@pytest.mark.parametrize(("bound", "extras", "msg", "args", "with_exception"), TABLE)
def test_json_lines_otlp_attributes_and_human_pairs_are_the_steps_fields(
    bound: dict[str, object],
    extras: dict[str, object],
    msg: str,
    args: tuple[object, ...],
    with_exception: bool,
) -> None:
    record = make_record(msg, args, extras=extras, exc_info=caught() if with_exception else None)
    json_formatter = JsonFormatter()
    human = HumanFormatter(short_ids=False)
    handler, exporter = otlp_pipeline()
    with bind(bound), TRACER.start_as_current_span("s"):
        expected = step()(record, logging.Formatter())
        expected_human = step(reserved=frozenset()).attributes(record)
        line = json.loads(json_formatter.format_bytes(record))
        human_line = human.format(record).split("\n")[0]
        handler.emit(record)
    (exported,) = exporter.get_finished_logs()
    names = [*expected.fixed, *expected.attributes]

    assert [name for name in line if name not in ENVELOPE] == names
    assert line["message"] == expected.message
    assert list(exported.log_record.attributes or {}) == names
    assert exported.log_record.body == expected.message
    for name, value in expected.attributes.items():
        if isinstance(value, str | int):
            assert line[name] == value
            assert (exported.log_record.attributes or {})[name] == value
    for name in expected_human:  # the human line's pairs, in the step's order
        assert f" {name}=" in human_line
    positions = [human_line.index(f" {name}=") for name in expected_human]
    assert positions == sorted(positions)
    assert (FORMAT_ERROR in expected.fixed) == (f" {FORMAT_ERROR}=" in human_line)
    assert SECRET not in json.dumps(line) + human_line + repr(exported.log_record.attributes)


# -- the fast paths give what the step gives ------------------------------------------------

NAMES = st.sampled_from(
    [
        "order_id",
        "user_id",
        "request_id",
        "note",
        "level",  # reserved
        "trace_id",  # reserved
        "exception.type",  # reserved
        "extra.level",
        "context.user_id",
        "password",  # sensitive
        "api_token",  # sensitive
        "naïve",
        "caf\udce9",  # a lone surrogate
    ]
)
VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(
        [f"Bearer {SECRET}", f"postgresql://u:{SECRET}@127.0.0.1/db", "two words", "caf\udce9"]
    ),
    st.binary(max_size=4),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3).map(tuple),
    st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(st.sampled_from(["a", "token"]), st.integers(), max_size=2),
)
MESSAGES = st.sampled_from(
    [
        ("plain", ()),
        ("order %s placed", (5,)),
        ("%d is not a number", ("five",)),
        ("connecting to %s", (f"redis://:{SECRET}@127.0.0.1:6379/0",)),
        ("surrogate \udcff", ()),
        ("ünïcödé %s", ("ok",)),
    ]
)
FIELDS = st.dictionaries(NAMES, VALUES, max_size=4)
EXTRAS = st.dictionaries(NAMES, VALUES, max_size=4).map(
    lambda extras: {k: v for k, v in extras.items() if k not in STANDARD_RECORD_ATTRIBUTES}
)

# Shared across examples, so later examples meet warm caches (names known clean, the bound
# context's fragment, the level and logger heads) as a long-running program's records do.
FAST_JSON = JsonFormatter(service_name="shop")
GENERAL_JSON = JsonFormatter(service_name="shop")
GENERAL_JSON._fast = False
OTLP_HANDLER, _ = otlp_pipeline()


@contextmanager
def around(bound: Mapping[str, object], in_span: bool) -> Iterator[None]:
    with ExitStack() as stack:
        if in_span:
            stack.enter_context(TRACER.start_as_current_span("generated"))
        stack.enter_context(bind(bound))
        yield


@settings(max_examples=300, deadline=None)
@given(
    bound=FIELDS,
    extras=EXTRAS,
    message=MESSAGES,
    in_span=st.booleans(),
    fast_record=st.booleans(),
)
def test_the_json_fast_path_writes_what_the_fields_step_gives(
    bound: dict[str, object],
    extras: dict[str, object],
    message: tuple[str, tuple[object, ...]],
    in_span: bool,
    fast_record: bool,
) -> None:
    record_type = FastLogRecord if fast_record else logging.LogRecord
    record = make_record(*message, extras=extras, record_type=record_type)
    with around(bound, in_span):
        for _ in range(2):  # the second time with the caches this record filled
            general = GENERAL_JSON.format_bytes(record)
            assert FAST_JSON.format_bytes(record) == general
        fields = step()(record, logging.Formatter())
    line = json.loads(general)
    assert [name for name in line if name not in (*ENVELOPE, "service.name")] == [
        clean_text(name)  # JSON is UTF-8: a lone surrogate is escaped
        for name in (*fields.fixed, *fields.attributes)
    ]
    assert SECRET.encode() not in general


@settings(max_examples=300, deadline=None)
@given(bound=FIELDS, extras=EXTRAS, in_span=st.booleans())
def test_the_otlp_plain_attributes_are_what_the_fields_step_gives(
    bound: dict[str, object], extras: dict[str, object], in_span: bool
) -> None:
    record = make_record("order %s placed", (5,), extras=extras)
    with around(bound, in_span):
        general = OTLP_HANDLER._all_attributes(record, None)
        for _ in range(2):  # the first sight of a name may only teach the handler it is clean
            plain = OTLP_HANDLER._plain_attributes(record)
            if plain is not None:
                assert list((plain or {}).items()) == list((general or {}).items())
                for name, value in plain.items():
                    assert type(value) is type((general or {})[name])
    assert SECRET not in repr(general)


def test_the_reserved_names_are_the_json_schema() -> None:
    assert frozenset(JSON_FIELDS) == RESERVED_NAMES
    assert list(JSON_FIELDS)[:4] == ["timestamp", "level", "logger", "message"]


def test_the_common_record_does_take_the_shortcuts(monkeypatch: pytest.MonkeyPatch) -> None:
    """So that the comparisons above compare something: the usual record is not handed over
    to the general path, by either output."""
    formatter = JsonFormatter()

    def general_path(record: logging.LogRecord) -> bytes:
        raise AssertionError(f"the general path took {record.__dict__}")

    monkeypatch.setattr(formatter, "_general_bytes", general_path)
    handler, _ = otlp_pipeline()
    record = make_record("order %s placed", (7,), extras={"order_id": 7, "note": "n"})
    with bind(request_id="r1"), TRACER.start_as_current_span("s"):
        for _ in range(2):
            formatter.format_bytes(record)
        handler._plain_attributes(record)  # learns that the names are plain
        assert handler._plain_attributes(record) == {"request_id": "r1", "order_id": 7, "note": "n"}
