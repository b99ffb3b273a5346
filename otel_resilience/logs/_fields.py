"""The one step from a ``logging`` record to its fields, shared by every output.

The JSON line, the human line and the OTLP record show the same record, so they must agree
on its fields: a rule (a collision, a redaction, the fallback for a message that does not
format) written once per output drifts apart, and a fix made in one leaves the others
broken. So what a record's fields are is decided here, once, and each output only renders
the result: JSON bytes
(:mod:`~otel_resilience.logs._json_format`), ``key=value`` pairs
(:mod:`~otel_resilience.logs._human_format`), OTLP attribute values
(:mod:`~otel_resilience.logs._otlp_handler`).

The step is made of small functions, each usable and testable alone, in the spirit of
structlog's processors, and :class:`RecordFields` runs them in order for one output:

1. the message (:func:`record_message`): ``record.getMessage()``, or, when the ``%``
   arguments do not fit, the raw message and ``repr(args)`` with the reason kept for
   ``otel_resilience.format_error``; a caller's bug must not cost the record;
2. the fixed fields that apply, in :data:`JSON_FIELDS` order: ``thread.*``
   (:func:`add_thread_fields`, when the output asks), ``code.*``
   (:func:`add_source_fields`, when it asks), ``exception.*``
   (:func:`add_exception_fields`), ``code.stacktrace`` and ``otel_resilience.format_error``;
3. the bound context (:mod:`~otel_resilience.logs._context`), prepared once per bound
   mapping (:class:`BoundFields`);
4. the record's ``extra=`` fields (:func:`record_extras`), merged by the collision rule
   (:func:`merge_extras`);
5. redaction (:mod:`~otel_resilience.logs._redaction`) at each of these: the message, the
   exception's text, the stack and a format error have the credentials they quote
   replaced; bound and ``extra=`` fields go through the redactor by name and value.

Collisions: an output reserves the names it writes itself (``reserved``; the JSON and OTLP
outputs reserve every name of :data:`JSON_FIELDS`, present or not; the human line, whose
fixed parts are columns rather than ``key=value`` pairs, reserves none). A bound field with
a reserved name is renamed ``context.<name>``, an ``extra=`` field ``extra.<name>``. When an
``extra=`` field and a bound field share a name, the ``extra=`` value (the more specific)
takes the name and the bound one moves to ``context.<name>``. A prefixed name that is
itself taken is not written.

Values are kept as they are, unless the output passes ``convert``, which turns each
(name, value) into what it takes before the collision rule applies (the OTLP handler's
attribute values): converting the bound context there is done once per bound mapping too.
Correlation (the current span's ids) is the other shared step, in
:mod:`~otel_resilience.logs._context`; timestamps and levels are each output's own.

The outputs' fast paths (the JSON formatter's spliced bytes, the OTLP handler's plain
attributes) skip this step for the common record, whose fields need no renaming and no
redaction by name; they read the names and the reserved set from here, and
``tests/unit/test_log_fields.py`` checks that they give exactly what this step gives.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Generic, Literal, TypeVar

from otel_resilience.logs._context import bound_reader, holds_only_constants
from otel_resilience.logs._fast_record import PLAIN_RECORD_TYPES
from otel_resilience.logs._redaction import Redactor

__all__ = [
    "CODE_STACKTRACE",
    "EXCEPTION_STACKTRACE",
    "FORMAT_ERROR",
    "INITIAL_RECORD_ATTRIBUTE_COUNT",
    "JSON_FIELDS",
    "RESERVED_NAMES",
    "STANDARD_RECORD_ATTRIBUTES",
    "BoundFields",
    "Convert",
    "Fields",
    "JsonField",
    "RecordFields",
    "add_exception_fields",
    "add_source_fields",
    "add_thread_fields",
    "as_is",
    "clean_text",
    "exception_type_name",
    "formatted_traceback",
    "merge_extras",
    "record_extras",
    "record_message",
    "safe_repr",
    "safe_str",
]

V = TypeVar("V")

Convert = Callable[[str, object], tuple[str, V]]
"""Turns a field's (name, value) into what an output takes: (key, converted value)."""

Presence = Literal[
    "always",
    "span",
    "service_name",
    "include_thread",
    "include_source",
    "exc_info",
    "stack_info",
    "format_error",
]


@dataclass(frozen=True, slots=True)
class JsonField:
    """One fixed field: its name, JSON type (as parsed), and when it appears."""

    name: str
    type: type[str] | type[int]
    presence: Presence
    meaning: str


def _schema(*fields: JsonField) -> Mapping[str, JsonField]:
    return MappingProxyType({field.name: field for field in fields})


JSON_FIELDS: Final = _schema(
    JsonField("timestamp", str, "always", "creation time, RFC 3339 UTC with microseconds"),
    JsonField("level", str, "always", "level name: TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    JsonField("logger", str, "always", "the logger's name"),
    JsonField("message", str, "always", "the formatted message"),
    JsonField("trace_id", str, "span", "current trace id, 32 lowercase hex digits"),
    JsonField("span_id", str, "span", "current span id, 16 lowercase hex digits"),
    JsonField("trace_flags", str, "span", "W3C trace flags, 2 hex digits (bit 01 = sampled)"),
    JsonField("service.name", str, "service_name", "the service_name given to the formatter"),
    JsonField("thread.name", str, "include_thread", "the logging thread's name"),
    JsonField("thread.id", int, "include_thread", "the logging thread's id"),
    JsonField("code.function.name", str, "include_source", "the calling function"),
    JsonField("code.file.path", str, "include_source", "the calling function's source file"),
    JsonField("code.line.number", int, "include_source", "the calling line"),
    JsonField("exception.type", str, "exc_info", "the exception's fully qualified class name"),
    JsonField("exception.message", str, "exc_info", "str(exception)"),
    JsonField("exception.stacktrace", str, "exc_info", "the formatted traceback"),
    JsonField("code.stacktrace", str, "stack_info", "the stack captured with stack_info=True"),
    JsonField("otel_resilience.format_error", str, "format_error", "what failed to format"),
)
"""The fixed fields, in output order; bound and ``extra=`` fields follow. Named for the JSON
lines, which can carry all of them; the OTLP attributes use the same names for those that
are not OTLP fields of their own (timestamp, severity, body, ids)."""

RESERVED_NAMES: Final = frozenset(JSON_FIELDS)
"""The names a bound or ``extra=`` field cannot take in the JSON and OTLP outputs."""

EXCEPTION_STACKTRACE: Final = "exception.stacktrace"
CODE_STACKTRACE: Final = "code.stacktrace"
FORMAT_ERROR: Final = "otel_resilience.format_error"

_INITIAL_RECORD_ATTRIBUTES: Final = logging.LogRecord(
    "", logging.INFO, "", 0, "", (), None
).__dict__
INITIAL_RECORD_ATTRIBUTE_COUNT: Final = len(_INITIAL_RECORD_ATTRIBUTES)
"""How many attributes ``LogRecord.__init__`` sets: a record with no more has no extras."""

STANDARD_RECORD_ATTRIBUTES: Final = frozenset(_INITIAL_RECORD_ATTRIBUTES) | {
    # Set on the shared record by formatters (stdlib's included) after it is created.
    "message",
    "asctime",
    # Set by opentelemetry-instrumentation-logging's record factory; we write our own.
    "otelTraceID",
    "otelSpanID",
    "otelTraceSampled",
    "otelServiceName",
}
"""Attributes every record has; any other attribute came from ``extra=``.

Computed from a real record once, so attributes newer Pythons add (``taskName`` in 3.12)
are known without a version table.
"""


# -- text that never raises -------------------------------------------------------------


def safe_repr(value: object) -> str:
    """``repr(value)``, or ``<unrepresentable T>`` when that raises."""
    try:
        return repr(value)
    except Exception:
        try:
            name = type(value).__qualname__
        except Exception:
            name = "object"
        return f"<unrepresentable {name}>"


def safe_str(value: object) -> str:
    """``str(value)``, or its :func:`safe_repr` when that raises."""
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (undecodable file names) escaped: UTF-8 outputs need it."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def as_is(name: str, value: object) -> tuple[str, object]:
    """The :data:`Convert` of outputs that take fields as they are (the JSON and human lines)."""
    return name, value


# -- the steps ------------------------------------------------------------------------------


def record_message(record: logging.LogRecord) -> tuple[str, str | None]:
    """The record's message, and why formatting it failed (None when it did not).

    A message whose ``%`` arguments do not fit is the caller's bug, not a reason to lose
    the record: it comes back as the raw message followed by ``repr(args)``.
    """
    msg = record.msg
    if type(msg) is str and not record.args:
        return msg, None
    try:
        return record.getMessage(), None
    except Exception as error:
        raw = safe_str(msg)
        return (
            f"{raw} {safe_repr(record.args)}" if record.args else raw,
            f"message: {type(error).__name__}: {safe_str(error)}",
        )


def add_thread_fields(fields: dict[str, object], record: logging.LogRecord) -> None:
    """``thread.name`` and ``thread.id``: which thread logged."""
    fields["thread.name"] = record.threadName
    fields["thread.id"] = record.thread


def add_source_fields(fields: dict[str, object], record: logging.LogRecord) -> None:
    """``code.function.name``, ``code.file.path``, ``code.line.number``: where it was logged."""
    fields["code.function.name"] = record.funcName
    fields["code.file.path"] = record.pathname
    fields["code.line.number"] = record.lineno


def exception_type_name(exc_type: type[BaseException]) -> str:
    """The semantic conventions' fully qualified name; builtins stay bare (``ValueError``)."""
    module = getattr(exc_type, "__module__", None)
    name = getattr(exc_type, "__qualname__", None) or exc_type.__name__
    if not module or module == "builtins":
        return str(name)
    return f"{module}.{name}"


def formatted_traceback(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    """The record's traceback as ``formatter`` renders it; never raises."""
    # Cached on the record as the stdlib formatter does, so every handler formats it once.
    try:
        if not record.exc_text and record.exc_info:
            record.exc_text = formatter.formatException(record.exc_info)
        return record.exc_text or ""
    except Exception as error:
        return f"<traceback unavailable: {type(error).__name__}: {safe_str(error)}>"


def add_exception_fields(
    fields: dict[str, object],
    record: logging.LogRecord,
    formatter: logging.Formatter,
    redactor: Redactor,
) -> None:
    """``exception.type``, ``exception.message``, ``exception.stacktrace`` (redacted); none
    when the record carries no exception (``exc_info=True`` outside an ``except``)."""
    exc_info = record.exc_info
    if not exc_info or exc_info[0] is None:
        return
    fields["exception.type"] = exception_type_name(exc_info[0])
    # A driver's message may quote its DSN; a traceback's source lines, a hard-coded one.
    fields["exception.message"] = redactor.redact_text(safe_str(exc_info[1]))
    fields[EXCEPTION_STACKTRACE] = redactor.redact_text(formatted_traceback(formatter, record))


def record_extras(record: logging.LogRecord) -> dict[str, object]:
    """The record's ``extra=`` fields, in the order given; empty (and cheap) when none."""
    attributes = record.__dict__
    # Most records have no extras and exactly the attributes ``LogRecord.__init__`` sets:
    # counting them is enough.
    if len(attributes) <= INITIAL_RECORD_ATTRIBUTE_COUNT:
        return {}
    if type(record) in PLAIN_RECORD_TYPES:
        # ``makeRecord`` adds the extras after ``__init__`` (and a record factory's own
        # attributes) so, a dict keeping insertion order, they are among the attributes past
        # the initial ones: only those few are looked at, not all twenty-odd.
        return {
            key: attributes[key]
            for key in itertools.islice(attributes, INITIAL_RECORD_ATTRIBUTE_COUNT, None)
            if key not in STANDARD_RECORD_ATTRIBUTES
        }
    # A LogRecord subclass may set its attributes in any order: one full pass.
    return {
        key: value for key, value in attributes.items() if key not in STANDARD_RECORD_ATTRIBUTES
    }


def merge_extras(
    fields: dict[str, V],
    extras: Mapping[str, object],
    convert: Convert[V],
    reserved: frozenset[str] = RESERVED_NAMES,
) -> None:
    """Add the (already redacted) ``extra=`` fields to ``fields``, in place, by the
    collision rule (see the module).

    ``fields`` holds the bound context (and possibly fixed fields, whose names are all
    ``reserved``). An ``extra=`` field with a reserved name is written as ``extra.<name>``
    unless that is taken; one that shares a bound field's name takes the name and the bound
    value moves to ``context.<name>`` unless that is taken.
    """
    for name, value in extras.items():
        key, converted = convert(name, value)
        if key in reserved:
            renamed = f"extra.{key}"
            if renamed not in fields:
                fields[renamed] = converted
            continue
        if key in fields:
            # Only a bound field can hold a non-reserved name: it moves aside.
            fields.setdefault(f"context.{key}", fields[key])
        fields[key] = converted


class BoundFields(Generic[V]):
    """The bound context as fields: redacted, converted, kept clear of reserved names, and
    prepared once per bound mapping (it only changes on ``bind``) when its values are
    constants. Callers must not change the mapping returned: it may be the cached one.
    """

    def __init__(
        self,
        redactor: Redactor,
        convert: Convert[V],
        reserved: frozenset[str] = RESERVED_NAMES,
    ) -> None:
        self._redactor = redactor
        self._convert = convert
        self._reserved = reserved
        # A tuple replaced in one assignment: safe across threads.
        self._cache: tuple[Mapping[str, object], dict[str, V]] = (MappingProxyType({}), {})

    def __call__(self, context: Mapping[str, object]) -> dict[str, V]:
        cached_context, prepared = self._cache
        if cached_context is context:
            return prepared
        prepared = {}
        reserved = self._reserved
        for name, value in self._redactor.redact(context).items():
            key, converted = self._convert(name, value)
            if key in reserved:
                prepared.setdefault(f"context.{key}", converted)
            else:
                prepared[key] = converted
        if holds_only_constants(context):
            # Holding ``context`` keeps its identity from being reused by another mapping.
            self._cache = (context, prepared)
        return prepared


@dataclass(slots=True)
class Fields(Generic[V]):
    """One record's fields, as :class:`RecordFields` makes them for one output."""

    message: str
    """The message, redacted (its raw form and ``repr(args)`` when it did not format)."""
    fixed: dict[str, V]
    """The fixed fields that apply, in :data:`JSON_FIELDS` order (see the module)."""
    attributes: dict[str, V]
    """The bound context, then the ``extra=`` fields, named by the collision rule."""


class RecordFields(Generic[V]):
    """The step "record -> fields" for one output: what it includes, redacts and reserves.

    ``redactor`` redacts (see :mod:`~otel_resilience.logs._redaction`); ``convert`` turns
    each field into the output's value type (:func:`as_is` keeps it); ``include_thread``
    and ``include_source`` add the ``thread.*`` and ``code.*`` fields; ``reserved`` are the
    names bound and ``extra=`` fields cannot take. Safe to share between threads.

    Calling it runs the whole step. Its parts are there for outputs that lay fields out
    themselves or take shortcuts on the common record: :meth:`message`, :meth:`fixed`,
    :meth:`attributes` (``into`` appends to the output's own dict rather than making one;
    its names must then all be reserved), :attr:`context`, :meth:`add_extras` and
    :meth:`appended_extras`.
    """

    def __init__(
        self,
        redactor: Redactor,
        convert: Convert[V],
        *,
        include_thread: bool = False,
        include_source: bool = False,
        reserved: frozenset[str] = RESERVED_NAMES,
    ) -> None:
        self.redactor: Final = redactor
        self.include_thread: Final = include_thread
        self.include_source: Final = include_source
        self.reserved: Final = reserved
        self.context: Final = BoundFields[V](redactor, convert, reserved)
        """The bound context as fields, prepared once per bound mapping: :class:`BoundFields`."""
        self._convert = convert
        self._converts = convert is not as_is
        self._redact_text = redactor.redact_text
        self._thread_or_source = include_thread or include_source

    def __call__(self, record: logging.LogRecord, formatter: logging.Formatter) -> Fields[V]:
        """The whole step; ``formatter`` renders the traceback (its ``formatException``)."""
        message, message_error = self.message(record)
        return Fields(
            message,
            self.fixed(record, message_error, formatter),
            self.attributes(record),
        )

    def message(self, record: logging.LogRecord) -> tuple[str, str | None]:
        """The message and, when it did not format, why: both redacted."""
        message, message_error = record_message(record)
        if message_error is None:
            return self._redact_text(message), None
        return self._redact_text(message), self._redact_text(message_error)

    def fixed(
        self,
        record: logging.LogRecord,
        message_error: str | None,
        formatter: logging.Formatter,
        into: dict[str, V] | None = None,
    ) -> dict[str, V]:
        """The fixed fields that apply, in order, added to ``into`` (or a new dict).

        ``message_error`` as :meth:`message` gave it; ``formatter`` renders the traceback.
        """
        fields: dict[str, V] = {} if into is None else into
        if not (
            self._thread_or_source
            or record.exc_info
            or record.stack_info
            or message_error is not None
        ):
            return fields  # the common record has none
        # Outputs that take values as they are get them written straight into ``fields``.
        found: dict[str, object] = {} if self._converts else fields  # type: ignore[assignment]
        if self.include_thread:
            add_thread_fields(found, record)
        if self.include_source:
            add_source_fields(found, record)
        if record.exc_info:
            add_exception_fields(found, record, formatter, self.redactor)
        if record.stack_info:
            found[CODE_STACKTRACE] = self._redact_text(record.stack_info)
        if message_error is not None:
            found[FORMAT_ERROR] = message_error
        if found is not fields:
            convert = self._convert
            for name, value in found.items():
                key, converted = convert(name, value)
                fields[key] = converted
        return fields

    def attributes(
        self, record: logging.LogRecord, into: dict[str, V] | None = None
    ) -> dict[str, V]:
        """The bound context, then the record's ``extra=`` fields, added to ``into`` (or a
        new dict); never the cached context itself."""
        fields: dict[str, V] = {} if into is None else into
        context = bound_reader()
        if context:
            fields.update(self.context(context))
        extras = record_extras(record)
        if extras:
            merge_extras(fields, self.redactor.redact(extras), self._convert, self.reserved)
        return fields

    def add_extras(self, fields: dict[str, V], extras: Mapping[str, object]) -> None:
        """Redact ``extras`` (as :func:`record_extras` found them) and merge them into
        ``fields`` by the collision rule (:func:`merge_extras`)."""
        merge_extras(fields, self.redactor.redact(extras), self._convert, self.reserved)

    def appended_extras(
        self, context: Mapping[str, object], extras: Mapping[str, object]
    ) -> Mapping[str, object] | None:
        """``extras`` redacted, when merging them after ``context`` (the bound context's
        fields) only appends them: for an output that keeps names as they are, when none
        of their names is reserved or bound, so the collision rule renames nothing. None
        otherwise (:meth:`add_extras` then says where each goes). For outputs that render
        the bound context once per mapping and only the ``extra=`` fields per record."""
        if self._converts or not (
            self.reserved.isdisjoint(extras) and context.keys().isdisjoint(extras)
        ):
            return None
        return self.redactor.redact(extras)
