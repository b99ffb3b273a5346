"""JSON lines for machines: one object per record, correlated with the current span.

:class:`JsonFormatter` is a plain ``logging.Formatter``, so it formats every record that
reaches its handler alike, the program's and third-party libraries' records. Fields, in
the order they appear (also :data:`JSON_FIELDS`, which tests and the README read; it is
defined with the fields step, :mod:`otel_resilience.logs._fields`):

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

Redaction (:mod:`otel_resilience.logs._redaction` says exactly what): bound and ``extra=``
fields by name and in their string values; ``message``, ``exception.message``,
``exception.stacktrace``, ``code.stacktrace`` and ``otel_resilience.format_error`` have the
credentials they quote replaced, so a DSN in a driver's error or a token in a URL passed as
a ``%s`` argument does not reach the line.

Collisions: the names above are reserved, whether present in a record or not. A bound field
with a reserved name is written as ``context.<name>``, an ``extra=`` field as
``extra.<name>``. When an ``extra=`` field and a bound field share a name, the ``extra=``
value (the more specific) takes the name and the bound one moves to ``context.<name>``. A
prefixed name that is itself taken is not written.

What the fields are (the message and its fallback, the fixed fields after the span's ids and
``service.name``, the bound and ``extra=`` fields, collisions and redaction) is decided by
the step the human line and the OTLP handler use too,
:class:`~otel_resilience.logs._fields.RecordFields`; this module only renders them as JSON,
so the three outputs name and redact every field alike.

Values: strings, numbers, booleans, None, lists, tuples and mappings are JSON; datetimes,
dates and times ISO 8601, UUIDs strings, enums their value, sets lists, other objects their
``repr`` (``<unrepresentable T>`` if that raises). Non-finite floats become ``null``, mapping
keys strings, and with orjson integers beyond 64 bits strings.

The formatter never raises. A value that cannot be serialised, or whose ``repr`` fails, is
replaced where it is met; a message whose ``%`` arguments do not fit is kept raw, with
``otel_resilience.format_error`` saying why. Should anything else fail, one valid line still
comes out, with ``timestamp``, ``level``, ``logger``, ``message`` and
``otel_resilience.format_error``.

Cost: the common record (no exception or stack, a message that formats, no ``extra=`` name
colliding with another field, no ``thread.*`` or ``code.*`` asked for) takes a fast path
that splices pre-serialised bytes: the timestamp's date and time once per second, the level
and logger names once per pair, the span's ids, ``service.name`` and the bound context
together once per (OTel context, bound mapping) when the bound values are constants (both
compared by identity, read straight from their context variables), and the ``extra=``
fields with one ``orjson.dumps`` (found among the attributes added after the record was
made, the redactor skipped for names it already let through with number values, and only
its text scan run on strings under such names; a single such field is its cached
``,"name":`` and its value, scanned if a string, serialised alone). The message's scan for
credentials costs a few substring tests when it holds none (about 0.2 to 1 µs).
Every other record takes the general path (a dict of the fields, then one serialisation);
both give the same bytes. Caller-frame details are read only when asked
(``include_source``). ``orjson`` serialises when installed; the standard ``json`` module
otherwise, with the same output for the types above (and no fast path).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import json
import logging
import math
import time
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from opentelemetry.context import Context as OtelContext

from otel_resilience._secrets import redact_text
from otel_resilience.logs._context import (
    bound_reader,
    current_otel_context,
    current_span_ids,
    holds_only_constants,
    span_ids_of,
)
from otel_resilience.logs._fast_record import PLAIN_RECORD_TYPES
from otel_resilience.logs._fields import (
    FORMAT_ERROR,
    INITIAL_RECORD_ATTRIBUTE_COUNT,
    JSON_FIELDS,
    RESERVED_NAMES,
    RecordFields,
    as_is,
    clean_text,
    record_extras,
    record_message,
    safe_repr,
    safe_str,
)
from otel_resilience.logs._levels import TRACE, level_name
from otel_resilience.logs._redaction import DEFAULT_REDACTOR, TRUNCATED, Redactor

try:
    import orjson

    _HAVE_ORJSON = True
except ImportError:  # orjson is optional: the json module gives the same output, slower
    _HAVE_ORJSON = False

__all__ = ["JSON_FIELDS", "JsonFormatter"]


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
                (clean_text(key) if isinstance(key, str) else safe_str(key)): _plain(
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


_THREE_DIGITS: Final = tuple(b"%03d" % number for number in range(1000))
"""``b"000"`` to ``b"999"``: microseconds as two look-ups, cheaper than ``%06d``."""
_HEADS_LIMIT: Final = 1024
_CLEAN_NAMES_LIMIT: Final = 4096
_SCALAR_TYPES: Final = frozenset({str, int, float, bool, type(None), bytes})
_PLAIN_VALUE_TYPES: Final = frozenset({str, int, float, bool, type(None)})
"""Values under a plain name that need at most the text scan (bytes show as a ``repr``)."""
_NO_CONTEXT: Final[Mapping[str, object]] = MappingProxyType({})
_UNNAMED_TRACE: Final = f"Level {TRACE}"  # what logging names 5 before anyone does


def _json_bytes(text: str) -> bytes:
    """``text`` as a JSON string; raises (the caller falls back) on lone surrogates."""
    if _HAVE_ORJSON:
        return orjson.dumps(text)
    return json.dumps(text, ensure_ascii=False).encode("utf-8")


def _members(fields: Mapping[str, object]) -> bytes:
    """``,"a":1,"b":2``: the mapping's members, to splice into a line; raises when orjson
    cannot serialise them (the caller falls back to the general path)."""
    if not fields:
        return b""
    return b"," + orjson.dumps(fields, default=_serialisable)[1:-1]


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
        # What the fields are; this class only renders them (the fast path below included,
        # for the records whose fields need no renaming and no redaction by name).
        self._record_fields = RecordFields[object](
            self.redactor,
            as_is,
            include_thread=include_thread,
            include_source=include_source,
            reserved=RESERVED_NAMES,
        )
        # The fast path's pre-serialised fragments (see ``format_bytes``), each a tuple or
        # dict entry replaced in one assignment, so threads sharing the formatter never see
        # a torn one: the line's start up to the second; ``"level":...,"logger":...`` per
        # (level name, logger name); the span's ids, service name and bound fields per
        # (OTel context, bound mapping), the first never matching (no OTel context is None).
        self._second_prefix: tuple[int, bytes] = (-1, b"")
        self._heads: dict[tuple[str, str], bytes] = {}
        self._context_fragment: tuple[
            OtelContext | None, Mapping[str, object], bytes, frozenset[str]
        ] = (None, _NO_CONTEXT, b"", RESERVED_NAMES)
        # Plain field names (``Redactor.is_plain``), each with its ``,"name":`` serialised:
        # ``extra=`` fields under them with number or string values skip the redactor, their
        # strings only scanned for credentials (only grown, one entry at a time under the
        # GIL; bounded).
        self._extra_prefixes: dict[str, bytes] = {}
        # Strings are scanned for credentials (message and values) unless the redactor says
        # not to.
        self._scan = self.redactor.scan_values
        self._fast = not (include_thread or include_source)
        try:
            self._service_fragment = (
                b"" if service_name is None else b',"service.name":' + _json_bytes(service_name)
            )
        except Exception:  # not UTF-8 (a lone surrogate): the general path cleans it
            self._service_fragment = b""
            self._fast = False

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON, without a newline (the handler adds it)."""
        if self._use_orjson:
            return self.format_bytes(record)[:-1].decode("utf-8")
        try:
            fields = self._fields(record)
        except Exception as error:
            return self._error_line(record, error)
        try:
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
        """The record as one line of UTF-8 JSON, newline included, for byte-oriented writers.

        The common record (no exception, no stack, no thread or source fields, a message
        that formats, no ``extra=`` name colliding with a fixed or bound field) is spliced
        from pre-serialised fragments, here rather than in a method of its own because a
        Python call is a measurable share of its cost: the timestamp's second (once per
        second), its microseconds, the level and logger names (once per pair), the
        message, then the span's ids, ``service.name`` and the bound context (together,
        once per OTel context and bound mapping), then the ``extra=`` fields (a single
        one with a scalar value under a name already found clean: its cached ``,"name":``
        and one ``orjson.dumps`` of the value). Any other record, or any failure on the
        way, takes the general path (``_general_bytes``), which gives the same bytes when
        both apply.
        """
        if self._fast and self._use_orjson:
            try:
                if record.exc_info or record.stack_info:
                    return self._general_bytes(record)
                message = record.msg
                if type(message) is not str:
                    return self._general_bytes(record)
                if record.args:
                    message = message % record.args  # on failure, the general path says why
                if self._scan:
                    message = redact_text(message)
                created = record.created
                second = int(created)
                stamp = self._second_prefix
                if stamp[0] != second:
                    stamp = self._new_second(second)
                # Rounded, not truncated, as in ``_timestamp``.
                micros = int((created - second) * 1_000_000 + 0.5)
                if micros > 999_999:  # noqa: PLR1730 - cheaper than min() on the hot path
                    micros = 999_999
                head = self._heads.get((record.levelname, record.name))
                if head is None:
                    head = self._head(record.levelname, record.name)
                otel = current_otel_context()
                context = bound_reader()
                around = self._context_fragment
                if around[0] is not otel or around[1] is not context:
                    around = self._new_context_fragment(otel, context)
                attributes = record.__dict__
                added = len(attributes) - INITIAL_RECORD_ATTRIBUTE_COUNT
                if added <= 0:  # no extras at all
                    extra = b""
                elif added == 1 and type(record) in PLAIN_RECORD_TYPES:
                    # One attribute added after ``__init__``, the most common case by far:
                    # the last one, read without a pass over the others.
                    name = next(reversed(attributes))
                    value = attributes[name]
                    prefix = self._extra_prefixes.get(name)
                    if prefix is not None and type(value) is str and name not in around[3]:
                        extra = prefix + orjson.dumps(redact_text(value) if self._scan else value)
                    elif (
                        prefix is not None
                        and type(value) in _SCALAR_TYPES
                        and name not in around[3]
                    ):
                        extra = prefix + orjson.dumps(value)  # bytes raise: the general path
                    else:
                        found = self._extra_fields(record, around[3])
                        if found is None:
                            return self._general_bytes(record)
                        extra = found
                else:
                    found = self._extra_fields(record, around[3])
                    if found is None:
                        return self._general_bytes(record)
                    extra = found
                return b"".join(
                    (
                        stamp[1],
                        _THREE_DIGITS[micros // 1000],
                        _THREE_DIGITS[micros % 1000],
                        head,
                        orjson.dumps(message),
                        around[2],
                        extra,
                        b"}\n",
                    )
                )
            except Exception:  # the general path replaces what could not be serialised
                pass
        return self._general_bytes(record)

    def _general_bytes(self, record: logging.LogRecord) -> bytes:
        """The general path: a dict of the fields (``_fields``), then one serialisation."""
        if not self._use_orjson:
            return (self.format(record) + "\n").encode("utf-8")
        try:
            fields = self._fields(record)
        except Exception as error:
            return (self._error_line(record, error) + "\n").encode("utf-8")
        try:
            try:
                return orjson.dumps(fields, default=_serialisable, option=orjson.OPT_APPEND_NEWLINE)
            except orjson.JSONEncodeError:
                return orjson.dumps(_plain(fields, 0), option=orjson.OPT_APPEND_NEWLINE)
        except Exception as error:
            return (self._error_line(record, error) + "\n").encode("utf-8")

    def _new_second(self, second: int) -> tuple[int, bytes]:
        text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        stamp = (second, b'{"timestamp":"' + text.encode("ascii"))
        self._second_prefix = stamp
        return stamp

    def _new_context_fragment(
        self, otel: OtelContext, context: Mapping[str, object]
    ) -> tuple[OtelContext | None, Mapping[str, object], bytes, frozenset[str]]:
        """The span's ids, ``service.name`` and the bound context, serialised, and the names
        an ``extra=`` field must not take (reserved or bound); kept for the next record when
        the bound values cannot change. An OTel context is immutable, so the span current
        in it, hence its ids, cannot change either."""
        ids = span_ids_of(otel)
        span = (
            b""
            if ids is None
            else b',"trace_id":"%s","span_id":"%s","trace_flags":"%s"'
            % (
                ids.trace_id.encode("ascii"),
                ids.span_id.encode("ascii"),
                ids.trace_flags.encode("ascii"),
            )
        )
        prepared = self._record_fields.context(context) if context else {}
        around = (
            otel,
            context,
            span + self._service_fragment + _members(prepared),
            self._record_fields.reserved.union(prepared),
        )
        if holds_only_constants(context):
            self._context_fragment = around
        return around

    def _extra_fields(self, record: logging.LogRecord, taken: frozenset[str]) -> bytes | None:
        """``,"name":value...`` for the ``extra=`` fields; None when a name is ``taken``."""
        extras = record_extras(record)
        if not extras:
            return b""
        if not taken.isdisjoint(extras):
            return None  # the general path renames
        clean = self._extra_prefixes
        # Known plain names with numbers and strings skip the redactor (two C-level set
        # checks); their strings only need the text scan, done here.
        if clean.keys() >= extras.keys() and _PLAIN_VALUE_TYPES.issuperset(
            map(type, extras.values())
        ):
            if self._scan:
                for name, value in extras.items():
                    if type(value) is str:
                        extras[name] = redact_text(value)  # ``extras`` is our own dict
        else:
            redactor = self.redactor
            redacted = redactor.redact(extras)
            if len(clean) < _CLEAN_NAMES_LIMIT:
                for name in extras:
                    if name not in clean and redactor.is_plain(name):
                        with contextlib.suppress(Exception):  # a lone surrogate: never cached
                            clean[name] = b"," + _json_bytes(name) + b":"
            extras = redacted  # type: ignore[assignment]
        return b"," + orjson.dumps(extras, default=_serialisable)[1:-1]

    def _head(self, levelname: str, name: str) -> bytes:
        """``Z","level":"INFO","logger":"<name>","message":`` for one level and logger name
        (the timestamp's end with it, one fragment fewer to join)."""
        if len(self._heads) >= _HEADS_LIMIT:  # logger names are few; a bound against odd ones
            self._heads = {}
        level = "TRACE" if levelname == _UNNAMED_TRACE else levelname
        head = b'Z","level":%s,"logger":%s,"message":' % (_json_bytes(level), _json_bytes(name))
        self._heads[(levelname, name)] = head
        return head

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
        """The line's fields: the fields step's, with the timestamp, level, logger, the
        span's ids and ``service.name`` around its message."""
        record_fields = self._record_fields
        message, message_error = record_fields.message(record)
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
        record_fields.fixed(record, message_error, self, into=fields)
        record_fields.attributes(record, into=fields)
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
                "logger": safe_str(getattr(record, "name", "")),
                "message": self.redactor.redact_text(record_message(record)[0]),
                FORMAT_ERROR: self.redactor.redact_text(
                    f"{type(error).__name__}: {safe_str(error)}"
                ),
            }
            return json.dumps({key: clean_text(value) for key, value in fields.items()})
        except Exception:
            return '{"message":"","otel_resilience.format_error":"unformattable log record"}'
