"""JSON lines for machines: one object per record, correlated with the current span.

:class:`JsonFormatter` is a plain ``logging.Formatter``, so it formats every record that
reaches its handler alike, the program's and third-party libraries' records. Fields, in
the order they appear (also :data:`JSON_FIELDS`, which tests and the README read):

=================================  =======  ==================  ===============================
field                              type     present             meaning
=================================  =======  ==================  ===============================
``timestamp``                      string   always              creation time, RFC 3339 UTC
                                                                with microseconds:
                                                                ``2026-11-27T17:02:03.123456Z``
``level``                          string   always              ``TRACE``, ``DEBUG``, ``INFO``,
                                                                ``WARNING``, ``ERROR``,
                                                                ``CRITICAL`` or a custom name
``logger``                         string   always              the logger's name
``message``                        string   always              ``record.getMessage()``; if
                                                                that fails, the raw message
                                                                and ``repr(args)``
``trace_id``                       string   in a valid span     32 lowercase hex digits
``span_id``                        string   in a valid span     16 lowercase hex digits
``trace_flags``                    string   in a valid span     2 hex digits: bit ``01`` =
                                                                sampled, ``02`` = random id
``service.name``                   string   ``service_name``    the constructor argument
``thread.name``                    string   ``include_thread``  ``record.threadName``
``thread.id``                      integer  ``include_thread``  ``record.thread``
``code.function.name``             string   ``include_source``  ``record.funcName``
``code.file.path``                 string   ``include_source``  ``record.pathname``
``code.line.number``               integer  ``include_source``  ``record.lineno``
``exception.type``                 string   ``exc_info``        fully qualified class name
                                                                (builtins bare: ``KeyError``)
``exception.message``              string   ``exc_info``        ``str(exception)``
``exception.stacktrace``           string   ``exc_info``        the formatted traceback
``code.stacktrace``                string   ``stack_info``      the stack the logger captured
``otel_resilience.format_error``   string   on a failure        what could not be formatted
=================================  =======  ==================  ===============================

Then the bound context (:mod:`otel_resilience.logs._context`), then the record's ``extra=``
fields, both at the top level and both through the redactor. Names follow the OTel semantic
conventions (``exception.*``, ``code.*``, ``thread.*``, ``service.name``), so a collector can
map them onto log record attributes unchanged.

Collisions: the names above are reserved, whether present in a record or not. A bound field
with a reserved name is written as ``context.<name>``, an ``extra=`` field as
``extra.<name>``. When an ``extra=`` field and a bound field share a name, the ``extra=``
value (the more specific) takes the name and the bound one moves to ``context.<name>``. A
prefixed name that is itself taken is not written.

Values: strings, numbers, booleans, None, lists, tuples and mappings are JSON; datetimes,
dates and times ISO 8601, UUIDs strings, enums their value, sets lists, other objects their
``repr`` (``<unrepresentable T>`` if that raises). Non-finite floats become ``null``, mapping
keys strings, and with orjson integers beyond 64 bits strings.

The formatter never raises. A value that cannot be serialised, or whose ``repr`` fails, is
replaced where it is met; a message whose ``%`` arguments do not fit is kept raw, with
``otel_resilience.format_error`` saying why. Should anything else fail, one valid line still
comes out, with ``timestamp``, ``level``, ``logger``, ``message`` and
``otel_resilience.format_error``.

Cost: the fixed fields are read straight from the record; the timestamp's date and time are
formatted once per second, a span's ids once per span, and the bound context's redaction
once per bound mapping (it only changes on ``bind``) when its values are constants.
Caller-frame details are written only when asked (``include_source``). ``orjson``
serialises when installed; the standard ``json`` module otherwise, with the same output for
the types above.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Generic, Literal, TypeVar

from otel_resilience.logs._context import bound, current_span_ids, holds_only_constants
from otel_resilience.logs._levels import level_name
from otel_resilience.logs._redaction import DEFAULT_REDACTOR, TRUNCATED, Redactor

try:
    import orjson

    _HAVE_ORJSON = True
except ImportError:  # orjson is optional: the json module gives the same output, slower
    _HAVE_ORJSON = False

__all__ = [
    "JSON_FIELDS",
    "STANDARD_RECORD_ATTRIBUTES",
    "JsonField",
    "JsonFormatter",
    "clean_text",
    "exception_type_name",
    "formatted_traceback",
    "record_extras",
    "record_message",
    "safe_repr",
]

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
    """One field of the JSON schema: its name, JSON type (as parsed), and when it appears."""

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
"""The fixed fields of every line, in output order; bound and ``extra=`` fields follow."""

_RESERVED: Final = frozenset(JSON_FIELDS)
_FORMAT_ERROR: Final = "otel_resilience.format_error"

_INITIAL_RECORD_ATTRIBUTES: Final = logging.LogRecord(
    "", logging.INFO, "", 0, "", (), None
).__dict__
_INITIAL_RECORD_ATTRIBUTE_COUNT: Final = len(_INITIAL_RECORD_ATTRIBUTES)

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


def record_extras(record: logging.LogRecord) -> dict[str, object]:
    """The record's ``extra=`` fields, in the order given; empty (and cheap) when none."""
    attributes = record.__dict__
    # Most records have no extras and exactly the attributes ``LogRecord.__init__`` sets:
    # counting them is enough. Otherwise one C-level pass decides.
    if len(attributes) <= _INITIAL_RECORD_ATTRIBUTE_COUNT or STANDARD_RECORD_ATTRIBUTES.issuperset(
        attributes
    ):
        return {}
    return {
        key: value for key, value in attributes.items() if key not in STANDARD_RECORD_ATTRIBUTES
    }


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


def _safe_str(value: object) -> str:
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


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
        raw = _safe_str(msg)
        return (
            f"{raw} {safe_repr(record.args)}" if record.args else raw,
            f"message: {type(error).__name__}: {_safe_str(error)}",
        )


def exception_type_name(exc_type: type[BaseException]) -> str:
    """The semantic conventions' fully qualified name; builtins stay bare (``ValueError``)."""
    module = getattr(exc_type, "__module__", None)
    name = getattr(exc_type, "__qualname__", None) or exc_type.__name__
    if not module or module == "builtins":
        return str(name)
    return f"{module}.{name}"


def _exception_fields(
    formatter: logging.Formatter, record: logging.LogRecord, fields: dict[str, object]
) -> None:
    exc_info = record.exc_info
    if not exc_info or exc_info[0] is None:
        return
    fields["exception.type"] = exception_type_name(exc_info[0])
    fields["exception.message"] = _safe_str(exc_info[1])
    fields["exception.stacktrace"] = formatted_traceback(formatter, record)


def formatted_traceback(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    """The record's traceback as ``formatter`` renders it; never raises."""
    # Cached on the record as the stdlib formatter does, so every handler formats it once.
    try:
        if not record.exc_text and record.exc_info:
            record.exc_text = formatter.formatException(record.exc_info)
        return record.exc_text or ""
    except Exception as error:
        return f"<traceback unavailable: {type(error).__name__}: {_safe_str(error)}>"


def _serialisable(value: object) -> object:
    """orjson's and json's ``default=``: a JSON-able stand-in for ``value``; never raises."""
    try:
        if isinstance(value, (set, frozenset)):
            try:
                return sorted(value)
            except TypeError:
                return list(value)
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, (datetime.date, datetime.time)):
            return value.isoformat()
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, enum.Enum):
            return value.value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    except Exception:
        pass
    return safe_repr(value)


_MAX_PLAIN_DEPTH: Final = 32
_INT_RANGE: Final = range(-(2**63), 2**64)


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (undecodable file names, say) escaped: UTF-8 needs it."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _plain(value: object, depth: int) -> object:
    """``value`` as plain JSON types only: the slow path after a fast serialisation failed."""
    try:
        kind = type(value)
        if kind is str:
            return clean_text(value)  # type: ignore[arg-type]
        if value is None or kind is bool:
            return value
        if kind is int:
            return value if value in _INT_RANGE else str(value)
        if kind is float:
            return value if math.isfinite(value) else None  # type: ignore[arg-type]
        if depth >= _MAX_PLAIN_DEPTH:
            return TRUNCATED
        if isinstance(value, enum.Enum):
            return _plain(value.value, depth + 1)
        if isinstance(value, Mapping):
            return {
                (clean_text(key) if isinstance(key, str) else _safe_str(key)): _plain(
                    item, depth + 1
                )
                for key, item in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [_plain(item, depth + 1) for item in value]
        if isinstance(value, str):
            return clean_text(str.__str__(value))
        if isinstance(value, int):
            return _plain(int(value), depth + 1)
        if isinstance(value, float):
            return _plain(float(value), depth + 1)
        replacement = _serialisable(value)
        if isinstance(replacement, str):
            return clean_text(replacement)
        return _plain(replacement, depth + 1)
    except Exception:
        return clean_text(safe_repr(value))


_json_encoder: Final = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_serialisable
)


V = TypeVar("V")


class BoundFields(Generic[V]):
    """The bound context as record fields: redacted, kept clear of reserved names, and
    prepared once per bound mapping (it only changes on ``bind``), for the JSON lines and
    the OTLP attributes alike; ``convert`` turns a (name, value) into what the output takes.
    """

    def __init__(self, redactor: Redactor, convert: Callable[[str, object], tuple[str, V]]) -> None:
        self._redactor = redactor
        self._convert = convert
        # A tuple replaced in one assignment: safe across threads.
        self._cache: tuple[Mapping[str, object], dict[str, V]] = (MappingProxyType({}), {})

    def __call__(self, context: Mapping[str, object]) -> dict[str, V]:
        cached_context, prepared = self._cache
        if cached_context is context:
            return prepared
        prepared = {}
        for name, value in self._redactor.redact(context).items():
            key, converted = self._convert(name, value)
            if key in _RESERVED:
                prepared.setdefault(f"context.{key}", converted)
            else:
                prepared[key] = converted
        if holds_only_constants(context):
            # Holding ``context`` keeps its identity from being reused by another mapping.
            self._cache = (context, prepared)
        return prepared


def _as_is(name: str, value: object) -> tuple[str, object]:
    return name, value


class JsonFormatter(logging.Formatter):
    """Formats each record as one JSON object on one line; see the module for the fields.

    ``service_name`` adds ``service.name``; ``redactor`` replaces the default
    :class:`~otel_resilience.logs._redaction.Redactor` (``Redactor(enabled=False)`` turns
    redaction off); ``include_thread`` and ``include_source`` add the ``thread.*`` and
    ``code.*`` fields. The positional parameters exist so ``logging.config.dictConfig`` can
    build it from a ``class`` key; a format string has no meaning here and is ignored.
    With dictConfig, prefer the ``"()"`` key, which passes the keyword arguments too.
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: str = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
        service_name: str | None = None,
        redactor: Redactor | None = None,
        include_thread: bool = False,
        include_source: bool = False,
    ) -> None:
        super().__init__()
        self.service_name: Final = service_name
        self.redactor: Final = DEFAULT_REDACTOR if redactor is None else redactor
        self.include_thread: Final = include_thread
        self.include_source: Final = include_source
        self._use_orjson = _HAVE_ORJSON
        # A one-entry cache, a tuple replaced in one assignment (safe across threads): the
        # second whose date and time were formatted.
        self._second: tuple[int, str] = (-1, "")
        self._prepared_bound = BoundFields[object](self.redactor, _as_is)

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON, without a newline (the handler adds it)."""
        try:
            fields = self._fields(record)
        except Exception as error:
            return self._error_line(record, error)
        try:
            if self._use_orjson:
                try:
                    return orjson.dumps(fields, default=_serialisable).decode("utf-8")
                except orjson.JSONEncodeError:
                    return orjson.dumps(_plain(fields, 0)).decode("utf-8")
            try:
                text = _json_encoder.encode(fields)
                if not text.isascii():
                    text.encode("utf-8")  # lone surrogates pass json but not a UTF-8 stream
                return text
            except (TypeError, ValueError, RecursionError):
                return _json_encoder.encode(_plain(fields, 0))
        except Exception as error:
            return self._error_line(record, error)

    def format_bytes(self, record: logging.LogRecord) -> bytes:
        """The record as one line of UTF-8 JSON, newline included, for byte-oriented writers."""
        if self._use_orjson:
            try:
                fields = self._fields(record)
            except Exception as error:
                return (self._error_line(record, error) + "\n").encode("utf-8")
            try:
                try:
                    return orjson.dumps(
                        fields, default=_serialisable, option=orjson.OPT_APPEND_NEWLINE
                    )
                except orjson.JSONEncodeError:
                    return orjson.dumps(_plain(fields, 0), option=orjson.OPT_APPEND_NEWLINE)
            except Exception as error:
                return (self._error_line(record, error) + "\n").encode("utf-8")
        return (self.format(record) + "\n").encode("utf-8")

    def _timestamp(self, created: float) -> str:
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)))
            self._second = cached
        # Rounded, not truncated: a float's error must not turn .123456 into .123455.
        micros = min(int((created - second) * 1_000_000 + 0.5), 999_999)
        return "%s%06dZ" % (cached[1], micros)  # noqa: UP031 - faster than an f-string here

    def _fields(self, record: logging.LogRecord) -> dict[str, object]:
        message, message_error = record_message(record)
        fields: dict[str, object] = {
            "timestamp": self._timestamp(record.created),
            "level": level_name(record),
            "logger": record.name,
            "message": message,
        }
        ids = current_span_ids()
        if ids is not None:
            fields["trace_id"] = ids.trace_id
            fields["span_id"] = ids.span_id
            fields["trace_flags"] = ids.trace_flags
        if self.service_name is not None:
            fields["service.name"] = self.service_name
        if self.include_thread:
            fields["thread.name"] = record.threadName
            fields["thread.id"] = record.thread
        if self.include_source:
            fields["code.function.name"] = record.funcName
            fields["code.file.path"] = record.pathname
            fields["code.line.number"] = record.lineno
        if record.exc_info:
            _exception_fields(self, record, fields)
        if record.stack_info:
            fields["code.stacktrace"] = record.stack_info
        if message_error is not None:
            fields[_FORMAT_ERROR] = message_error

        context = bound()
        if context:
            fields.update(self._prepared_bound(context))
        extras = record_extras(record)
        if extras:
            for key, value in self.redactor.redact(extras).items():
                if key in _RESERVED:
                    if f"extra.{key}" not in fields:
                        fields[f"extra.{key}"] = value
                    continue
                if key in fields:
                    # Only a bound field can hold a non-reserved name: it moves aside.
                    fields.setdefault(f"context.{key}", fields[key])
                fields[key] = value
        return fields

    def _error_line(self, record: logging.LogRecord, error: BaseException) -> str:
        """The minimal line for a record that could not be rendered: valid JSON, always."""
        try:
            try:
                timestamp = self._timestamp(float(record.created))
            except Exception:
                timestamp = self._timestamp(time.time())
            fields = {
                "timestamp": timestamp,
                "level": level_name(record),
                "logger": _safe_str(getattr(record, "name", "")),
                "message": record_message(record)[0],
                _FORMAT_ERROR: f"{type(error).__name__}: {_safe_str(error)}",
            }
            return json.dumps({key: clean_text(value) for key, value in fields.items()})
        except Exception:
            return '{"message":"","otel_resilience.format_error":"unformattable log record"}'
