"""Send ``logging`` records to an OTel logger provider, shaped like our JSON lines.

:class:`OtlpLogHandler` replaces the SDK's ``LoggingHandler`` (deprecated in SDK 1.45). It
uses only the public Logs API: ``logger_provider.get_logger(name)`` once per logger name,
then ``Logger.emit(LogRecord(timestamp=..., context=..., severity_number=..., ...))`` per
record, with the API's ``LogRecord`` (the SDK's keyword form builds the same record and
first copies the attributes, to add exception attributes we never ask it for). What a
record becomes:

==========================  ==================================================================
OTLP field                  from
==========================  ==================================================================
``time_unix_nano``          ``record.created``
``trace_id``, ``span_id``,  the span current when the record is emitted: the OTel context is
``flags``                   passed as ``context``, so the ids travel in their own fields and
                            are never repeated as attributes
``severity_number``         ``TRACE`` (5) -> TRACE, ``DEBUG`` -> DEBUG, ``INFO`` -> INFO,
                            ``WARNING`` -> WARN, ``ERROR`` -> ERROR, ``CRITICAL`` -> FATAL; a
                            custom level takes the number of the nearest standard level below
                            it (25 -> INFO, 60 -> FATAL, 1 to 4 -> TRACE, 0 -> UNSPECIFIED)
``severity_text``           the level name (``TRACE`` even when the name was not installed),
                            except ``WARNING`` -> ``WARN`` and ``CRITICAL`` -> ``FATAL``, the
                            data model's display names, as the SDK's handler sends them
``body``                    ``record.getMessage()``; if that raises, the raw message and
                            ``repr(args)``, with ``otel_resilience.format_error`` saying why;
                            credentials it quotes replaced (as are those in the
                            ``exception.*`` and ``code.stacktrace`` attributes)
``attributes``              as the JSON line's fields, same names, same order: ``code.*``
                            (only with ``include_source``), ``exception.type`` (fully
                            qualified), ``exception.message``, ``exception.stacktrace``,
                            ``code.stacktrace`` (``stack_info``), then the bound context, then
                            the ``extra=`` fields, both through the redactor (by name and
                            in string values, see :mod:`~otel_resilience.logs._redaction`),
                            with the JSON lines' rules for colliding names
                            (``context.<name>``, ``extra.<name>``)
==========================  ==================================================================

The body and the attributes are what the fields step every output shares makes of the
record (:class:`~otel_resilience.logs._fields.RecordFields`); this module only turns them
into OTLP: severities, attribute values, and the emit itself.

Attribute values are OTel attribute types: ``str``, ``bool``, ``int`` (within 64 bits,
larger ones as their decimal string) and ``float`` as they are; a list or tuple whose items
are all of one of those types as a tuple; enums their value, dates and times ISO 8601,
UUIDs their string; anything else (None, bytes, mappings, sets, mixed sequences, other
objects) its ``repr``, which is where a redacted nested secret shows as ``[REDACTED]``.
Strings with lone surrogates (undecodable file names) are escaped, since protobuf refuses
them (the exporter would drop such an attribute, and fail the whole batch for such a body).
None of this raises.

What the handler does not send back into the pipeline: records logged while
instrumentation is suppressed (the SDK's batch processor suppresses it around each export,
so an exporter's "failed to export" records would otherwise be exported, fail, and be
logged again; a program's own records inside ``suppress_instrumentation`` are skipped too,
as instrumentations skip them), and records logged on a thread that is already
inside this handler's ``emit`` (the SDK logs warnings from within ``emit`` itself, about
full queues or dropped attributes). Both still reach the program's other handlers.

``flush`` does not flush the provider: ``logging.shutdown`` and ``dictConfig`` call it, and
an exporter facing a dead collector would hold them for its whole timeout. The provider's
owner flushes and shuts it down (the launcher's bounded shutdown, at exit). ``close`` does
not shut the provider down either, and records emitted after it are still sent.

Cost: the SDK ``Logger`` of each logger name is cached (the SDK's handler looks it up per
record, under a lock); ``handle`` takes no handler lock (the SDK is thread-safe); ``code.*``
is only read when asked; the bound context is redacted and converted once per bound
mapping when its values are constants; ``extra=`` fields are found among the attributes
added after the record was created, not by scanning all of them.
"""

from __future__ import annotations

import datetime
import enum
import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Final, cast

from opentelemetry.context import get_current

from otel_resilience._compat import ApiLogger as OtelLogger
from otel_resilience._compat import ApiLoggerProvider as LoggerProvider
from otel_resilience._compat import ApiLogRecord as OtelLogRecord
from otel_resilience._compat import (
    NoOpLogger,
    SeverityNumber,
    get_logger_provider,
    instrumentation_suppressed,
)
from otel_resilience._fork import unlock_after_fork
from otel_resilience._secrets import redact_text
from otel_resilience.logs._async_handler import LockFreeHandler
from otel_resilience.logs._context import bound
from otel_resilience.logs._fields import (
    RESERVED_NAMES,
    RecordFields,
    clean_text,
    record_extras,
    safe_repr,
)
from otel_resilience.logs._levels import TRACE, level_name
from otel_resilience.logs._redaction import DEFAULT_REDACTOR, Redactor

__all__ = [
    "AttributeValue",
    "OtlpLogHandler",
    "attribute_value",
    "severity_number",
    "severity_text",
]

AttributeValue = (
    str
    | bool
    | int
    | float
    | tuple[str, ...]
    | tuple[bool, ...]
    | tuple[int, ...]
    | tuple[float, ...]
)
"""What :func:`attribute_value` returns: an attribute value every OTLP backend accepts."""

_CLEAN_NAMES_LIMIT: Final = 4096
_NO_ATTRIBUTES: Final[dict[str, AttributeValue]] = {}
_TRACEBACK_FORMATTER: Final = logging.Formatter()
_INT64: Final = range(-(2**63), 2**63)
_PRIMITIVES: Final = frozenset({str, bool, int, float})

# Standard levels from the highest down: a level takes the first whose number it reaches.
_SEVERITIES: Final = (
    (logging.CRITICAL, SeverityNumber.FATAL),
    (logging.ERROR, SeverityNumber.ERROR),
    (logging.WARNING, SeverityNumber.WARN),
    (logging.INFO, SeverityNumber.INFO),
    (logging.DEBUG, SeverityNumber.DEBUG),
    (TRACE, SeverityNumber.TRACE),
    (1, SeverityNumber.TRACE),  # finer than TRACE: the finest severity there is
)
_SEVERITY_OF: Final[dict[int, SeverityNumber]] = {}
_SEVERITY_TEXT: Final = {"WARNING": "WARN", "CRITICAL": "FATAL"}


def severity_number(levelno: int) -> SeverityNumber:
    """The OTel severity of a ``logging`` level: that of the nearest standard level below."""
    severity = _SEVERITY_OF.get(levelno)
    if severity is None:
        severity = next(
            (number for level, number in _SEVERITIES if levelno >= level),
            SeverityNumber.UNSPECIFIED,
        )
        if len(_SEVERITY_OF) < 256:  # levels are few; a bound against odd callers
            _SEVERITY_OF[levelno] = severity
    return severity


def severity_text(record: logging.LogRecord) -> str:
    """The record's level name, with the data model's ``WARN`` and ``FATAL`` spellings."""
    name = level_name(record)
    return _SEVERITY_TEXT.get(name, name)


def attribute_value(value: object) -> AttributeValue:
    """``value`` as an OTel attribute value (see the module documentation); never raises."""
    if type(value) is str:
        return value if value.isascii() else clean_text(value)  # ASCII: clean, one call fewer
    kind = type(value)
    if kind is bool or kind is float:
        return value  # type: ignore[return-value]
    if kind is int:
        return value if value in _INT64 else str(value)  # type: ignore[return-value]
    try:
        return _other_value(value)
    except Exception:
        return clean_text(safe_repr(value))


def _attribute_field(name: str, value: object) -> tuple[str, AttributeValue]:
    """A bound or ``extra=`` field as an OTLP attribute: a clean key, an attribute value."""
    if type(name) is not str:
        return safe_repr(name), attribute_value(value)
    return (name if name.isascii() else clean_text(name)), attribute_value(value)


def _other_value(value: object) -> AttributeValue:
    if isinstance(value, (list, tuple)):
        return _sequence_value(value)
    if isinstance(value, enum.Enum):
        value = value.value
        if type(value) in _PRIMITIVES:
            return attribute_value(value)
    # Subclasses of the primitives (bool has none) as their plain value.
    if isinstance(value, str):
        return clean_text(str.__str__(value))
    if isinstance(value, int):
        return attribute_value(int.__index__(value))
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return clean_text(safe_repr(value))


def _sequence_value(items: Sequence[object]) -> AttributeValue:
    """A homogeneous tuple when every item has one primitive type, else the ``repr``."""
    if not items:
        return ()
    kind = type(items[0])
    if kind in _PRIMITIVES and all(type(item) is kind for item in items):
        if kind is str:
            return tuple(clean_text(item) for item in items)  # type: ignore[arg-type]
        if kind is int and not all(item in _INT64 for item in items):
            return tuple(str(item) for item in items)
        return tuple(items)  # type: ignore[return-value]
    return clean_text(safe_repr(items))


class _EmitState(threading.local):
    busy = False


class OtlpLogHandler(LockFreeHandler):
    # Lock-free: the SDK's logger is thread-safe, and emit keeps its own per-thread state.
    """Emits each record to ``logger_provider`` (the global one by default) as OTLP fields.

    ``redactor`` replaces the default
    :class:`~otel_resilience.logs._redaction.Redactor` (``Redactor(enabled=False)`` turns
    redaction off); ``include_source`` adds ``code.function.name``, ``code.file.path`` and
    ``code.line.number``. See the module documentation for the mapping. A failure while
    emitting is counted in :attr:`errors`; the first is also reported through the standard
    ``handleError``, the later ones only counted.
    """

    def __init__(
        self,
        logger_provider: LoggerProvider | None = None,
        *,
        level: int | str = logging.NOTSET,
        redactor: Redactor | None = None,
        include_source: bool = False,
    ) -> None:
        super().__init__(level)
        self.logger_provider: Final = (
            get_logger_provider() if logger_provider is None else logger_provider
        )
        self.redactor: Final = DEFAULT_REDACTOR if redactor is None else redactor
        self.include_source: Final = include_source
        # logger name -> its OTel logger, or None when the provider gives a no-op one.
        self._loggers: dict[str, OtelLogger | None] = {}
        self._loggers_lock = threading.Lock()
        unlock_after_fork(self, "_loggers_lock")
        self._state = _EmitState()
        self._errors = 0
        # What the attributes are; this class only emits them. Attribute values are
        # converted before the collision rule, and the bound context's once per mapping.
        self._record_fields = RecordFields[AttributeValue](
            self.redactor,
            _attribute_field,
            include_source=include_source,
            reserved=RESERVED_NAMES,
        )
        # ``extra=`` names that need neither renaming nor redaction by name (only grown;
        # bounded): their strings are only scanned for credentials, if the redactor does.
        self._clean_names: set[str] = set()
        self._scan = self.redactor.scan_values

    @property
    def errors(self) -> int:
        """Records that could not be emitted."""
        return self._errors

    def emit(self, record: logging.LogRecord) -> None:
        state = self._state
        if state.busy:  # logged by the SDK from within our own emit: not back into it
            return
        context = get_current()
        # The key instrumentations check; the SDK's batch processor sets it around exports.
        if instrumentation_suppressed(context):  # logged by the export pipeline
            return
        state.busy = True
        try:
            try:
                logger = self._loggers[record.name]
            except KeyError:
                logger = self._logger_for(record.name)
            if logger is None:
                return
            severity = severity_number(record.levelno)
            if not logger.enabled(context=context, severity_number=severity):
                return
            body, message_error = self._record_fields.message(record)
            logger.emit(
                OtelLogRecord(
                    timestamp=int(record.created * 1e9),
                    context=context,
                    severity_number=severity,
                    severity_text=severity_text(record),
                    body=clean_text(body),
                    attributes=self._attributes(record, message_error),
                )
            )
        except Exception:
            self.handleError(record)
        finally:
            state.busy = False

    def _logger_for(self, name: str) -> OtelLogger | None:
        with self._loggers_lock:
            if name in self._loggers:
                return self._loggers[name]
            logger: OtelLogger | None = self.logger_provider.get_logger(name)
            if isinstance(logger, NoOpLogger):  # e.g. OTEL_SDK_DISABLED: skip all the work
                logger = None
            self._loggers[name] = logger
            return logger

    def _attributes(
        self, record: logging.LogRecord, message_error: str | None
    ) -> dict[str, AttributeValue] | None:
        if not (self.include_source or record.exc_info or record.stack_info or message_error):
            plain = self._plain_attributes(record)
            if plain is not None:
                return plain or None
        return self._all_attributes(record, message_error)

    def _plain_attributes(self, record: logging.LogRecord) -> dict[str, AttributeValue] | None:
        """The bound context and ``extra=`` fields when there is nothing to rename, redact by
        name or convert (plain names, plain values; strings only scanned for credentials);
        None otherwise. A shortcut through the fields step for the common record, checked
        against it by ``tests/unit/test_log_fields.py``."""
        context = bound()
        prepared = self._record_fields.context(context) if context else _NO_ATTRIBUTES
        extras = record_extras(record)
        if not extras:
            return dict(prepared)
        clean = self._clean_names
        if not clean.issuperset(extras):
            redactor = self.redactor
            reserved = self._record_fields.reserved
            if len(clean) < _CLEAN_NAMES_LIMIT:  # ASCII names the redactor lets through
                clean.update(
                    name
                    for name in extras
                    if name.isascii() and name not in reserved and redactor.is_plain(name)
                )
            return None
        if not prepared.keys().isdisjoint(extras):
            return None
        attributes = dict(prepared)
        scan = self._scan
        for name, value in extras.items():
            kind = type(value)
            if kind is str and cast(str, value).isascii():
                attributes[name] = redact_text(cast(str, value)) if scan else cast(str, value)
                continue
            plain = kind is bool or kind is float or (kind is int and value in _INT64)
            if not plain:
                return None
            attributes[name] = cast(AttributeValue, value)
        return attributes

    def _all_attributes(
        self, record: logging.LogRecord, message_error: str | None
    ) -> dict[str, AttributeValue] | None:
        """The fields step's fixed fields, bound context and ``extra=`` fields, in order."""
        record_fields = self._record_fields
        formatter = self.formatter or _TRACEBACK_FORMATTER
        attributes = record_fields.fixed(record, message_error, formatter)
        record_fields.attributes(record, into=attributes)
        return attributes or None

    def handleError(self, record: logging.LogRecord) -> None:
        """Count the failure; report only the first through the standard ``handleError``."""
        self._errors += 1
        if self._errors == 1:
            super().handleError(record)

    def flush(self) -> None:
        """Nothing: the provider's owner flushes it (see the module documentation)."""
