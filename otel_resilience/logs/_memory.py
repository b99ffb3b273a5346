"""Keep the last few thousand log records in memory, to query from tests or a debug endpoint.

A ``LogRecord`` is a poor thing to keep: it holds the call's ``args`` and, with
``exc_info``, a traceback whose frames keep every local variable of the failed call alive.
So each record is reduced at emit to a small frozen :class:`LogEntry` (its message rendered
once, its trace context read once) and the record itself is let go.

Concurrency: ``logging.Handler.handle`` already serialises ``emit`` under the handler's own
lock, but that lock is held while the record is formatted, so queries do not take it. The
ring has its own short lock, held only for one ``deque.append`` (and the eviction count that
must agree with it) or for one copy of the deque; filtering runs on the copy, outside it.
A bare ``deque(maxlen=...)`` append is atomic under the GIL, but the eviction count would
then be read and written apart from the append and drift under contention.

Redaction: an entry holds only the redacted form, since a buffer that a debug endpoint or a
test dumps is an output like any other. The message has the credentials it quotes taken
out, the attributes go through the handler's :class:`~otel_resilience.logs._redaction.Redactor`
(by name and in values, as the formatters' fields do), and the formatted line, exception
and traceback included, is redacted by the formatter when it is one of this package's
(which every output uses) or by the handler's redactor otherwise.
"""

from __future__ import annotations

import logging
import threading
import types
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from opentelemetry import trace

from otel_resilience._fork import unlock_after_fork
from otel_resilience.logs._context import bound, holds_only_constants
from otel_resilience.logs._levels import TRACE, level_name
from otel_resilience.logs._redaction import DEFAULT_REDACTOR, Redactor

__all__ = ["LogEntry", "RingBufferHandler"]

# Everything a LogRecord carries by itself; any other attribute came from ``extra=``.
# ``message`` and ``asctime`` are added by formatters, ``taskName`` by Python 3.12, and the
# ``otel*`` fields by opentelemetry-instrumentation-logging (the entry already has the ids).
_RECORD_FIELDS: Final = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "otelSpanID",
    "otelTraceID",
    "otelTraceSampled",
    "otelServiceName",
}
_EMPTY: Final[Mapping[str, object]] = types.MappingProxyType({})


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One record as kept by :class:`RingBufferHandler`; references nothing of the call's.

    ``timestamp`` is the record's ``created`` (seconds since the epoch). ``trace_id`` and
    ``span_id`` are lower-case hex, ``None`` outside a valid span. ``attributes`` holds the
    bound context overlaid with the record's ``extra=`` fields (the record's win: they are
    the more specific). ``formatted`` is the handler formatter's line, ``None`` without one.
    ``message``, ``attributes`` and ``formatted`` are redacted (see the module).
    """

    timestamp: float
    level: str
    levelno: int
    logger: str
    message: str
    trace_id: str | None = None
    span_id: str | None = None
    attributes: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    formatted: str | None = None


class RingBufferHandler(logging.Handler):
    """Keeps the last ``capacity`` records as :class:`LogEntry`; the oldest go first.

    ``context_provider``, if given, is called at each emit and its mapping is stored in the
    entry's attributes (e.g. the fields bound by the logs context API). ``redactor``
    replaces the default :class:`~otel_resilience.logs._redaction.Redactor`
    (``Redactor(enabled=False)`` keeps records as they were logged). Like every handler
    of this package it never raises into the program: a failure is counted in
    :attr:`errors` instead (see :meth:`handleError`).
    """

    def __init__(
        self,
        capacity: int = 1000,
        *,
        level: int | str = logging.NOTSET,
        context_provider: Callable[[], Mapping[str, object]] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        super().__init__(level)
        self.capacity: Final = capacity
        self._context_provider = context_provider
        self.redactor: Final = DEFAULT_REDACTOR if redactor is None else redactor
        # A tuple replaced in one assignment: the context mapping last redacted, redacted.
        self._context_cache: tuple[Mapping[str, object] | None, Mapping[str, object]] = (
            None,
            _EMPTY,
        )
        self._ring: deque[LogEntry] = deque(maxlen=capacity)
        self._ring_lock = threading.Lock()
        unlock_after_fork(self, "_ring_lock")
        self._evicted = 0
        self._errors = 0

    # ``logging.shutdown`` skips a handler that is false (``if h:``): without this, an empty
    # buffer, whose ``__len__`` is 0, would not be flushed and closed at exit.
    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._ring)

    @property
    def evicted(self) -> int:
        """Records pushed out by newer ones since creation (``clear`` does not reset it)."""
        return self._evicted

    @property
    def errors(self) -> int:
        """Records (or their bound context) lost to an error while emitting."""
        return self._errors

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = self._entry(record)
            with self._ring_lock:
                if len(self._ring) == self.capacity:
                    self._evicted += 1
                self._ring.append(entry)
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        """Count the failure and carry on: a debugging buffer must not print or raise.

        The standard handler prints a traceback to stderr for each failing record; for a
        buffer that is often attached in tests or production alike, that is noise at best.
        """
        del record
        self._errors += 1

    def _entry(self, record: logging.LogRecord) -> LogEntry:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            trace_id: str | None = format(context.trace_id, "032x")
            span_id: str | None = format(context.span_id, "016x")
        else:
            trace_id = span_id = None
        return LogEntry(
            timestamp=record.created,
            level=level_name(record),
            levelno=record.levelno,
            logger=record.name,
            message=self.redactor.redact_text(record.getMessage()),
            trace_id=trace_id,
            span_id=span_id,
            attributes=self._attributes(record),
            formatted=self._formatted(record),
        )

    def _formatted(self, record: logging.LogRecord) -> str | None:
        formatter = self.formatter
        if formatter is None:
            return None
        line = self.format(record)
        own = getattr(formatter, "redactor", None)
        if isinstance(own, Redactor) and own.scan_values:
            return line  # this package's formatter redacted it: no second pass
        return self.redactor.redact_text(line)

    def _attributes(self, record: logging.LogRecord) -> Mapping[str, object]:
        attributes: dict[str, object] = {}
        if self._context_provider is not None:
            try:
                attributes.update(self._redacted_context(self._context_provider()))
            except Exception:  # the record is worth keeping without its context
                self._errors += 1
        extras = {key: value for key, value in record.__dict__.items() if key not in _RECORD_FIELDS}
        if extras:
            attributes.update(self.redactor.redact(extras))
        return types.MappingProxyType(attributes) if attributes else _EMPTY

    def _redacted_context(self, context: Mapping[str, object]) -> Mapping[str, object]:
        """The context redacted; once per mapping for the logs context API's bound fields,
        which are replaced on each bind, never changed (when their values are constants).
        Another provider's mapping may be changed in place: it is redacted every time."""
        cached, redacted = self._context_cache
        if context is cached:
            return redacted
        redacted = self.redactor.redact(context)
        if context is bound() and holds_only_constants(context):
            # Holding ``context`` keeps its identity from being reused by another mapping.
            self._context_cache = (context, redacted)
        return redacted

    def entries(
        self,
        level: int | str | None = None,
        logger: str | None = None,
        contains: str | None = None,
        trace_id: str | int | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[LogEntry]:
        """The kept entries that match every given filter, oldest first.

        ``level`` is a minimum (a number or a name such as ``"WARNING"``). ``logger`` matches
        that logger and its descendants (``"app.db"`` matches ``app.db.pool``, not
        ``app.dbx``; ``""`` or ``"root"`` matches all). ``contains`` is a substring of the
        message. ``since`` is a ``time.time()`` value. ``limit`` keeps the *newest* matches,
        because the question asked of a ring buffer is "what happened just before this".
        """
        minimum = _level_number(level) if level is not None else None
        prefix = None if logger in (None, "", "root") else f"{logger}."
        wanted_trace = _trace_hex(trace_id) if trace_id is not None else None
        with self._ring_lock:
            snapshot = list(self._ring)
        matches: list[LogEntry] = []
        for entry in reversed(snapshot):
            if limit is not None and len(matches) >= limit:
                break
            # Not ``break``: threads can emit in another order than they created records.
            if since is not None and entry.timestamp < since:
                continue
            if minimum is not None and entry.levelno < minimum:
                continue
            if (
                prefix is not None
                and entry.logger != logger
                and not entry.logger.startswith(prefix)
            ):
                continue
            if contains is not None and contains not in entry.message:
                continue
            if wanted_trace is not None and entry.trace_id != wanted_trace:
                continue
            matches.append(entry)
        matches.reverse()
        return matches

    def clear(self) -> None:
        """Forget every kept entry; :attr:`evicted` and :attr:`errors` keep counting."""
        with self._ring_lock:
            self._ring.clear()


def _level_number(level: int | str) -> int:
    if isinstance(level, int):
        return level
    name = level.upper()
    if name == "TRACE":  # known by this package whether or not the name was installed
        return TRACE
    number = logging.getLevelName(name)
    if not isinstance(number, int):
        raise ValueError(f"unknown logging level {level!r}")
    return number


def _trace_hex(trace_id: str | int) -> str:
    if isinstance(trace_id, int):
        return format(trace_id, "032x")
    return trace_id.lower()
