"""One aligned line per record for people reading a terminal, correlated with the current span.

::

    17:02:03.123 INFO     checkout.api          paid  request_id=r1  [trace=4bf92f35 span=00f067aa]
    17:02:03.131 WARNING  urllib3.connectionpool  retrying  [trace=4bf92f35 span=5c3e1a0b]
    17:02:03.140 ERROR    checkout.api          payment failed  user_id=u7 attempt=2
    Traceback (most recent call last):
      ...

Columns: local time to the millisecond (the stdlib's ``converter``, so setting
``formatter.converter = time.gmtime`` switches to UTC, as for any ``logging.Formatter``);
the level name padded to 8; the logger name padded to ``logger_width`` (20; longer names
are printed whole rather than cut, since a cut name can point at the wrong module); the
message; the bound context and ``extra=`` fields as ``key=value``, then
``otel_resilience.format_error`` when the message did not format; the span ids in brackets
when there is a valid current span. The fields are those of the step every output shares
(:class:`~otel_resilience.logs._fields.RecordFields`), so they are redacted and named as in
the JSON lines and OTLP records: the message, traceback and stack have the credentials they
quote replaced, and when an ``extra=`` field and a bound field share a name the ``extra=``
value wins and the bound one moves to ``context.<key>``. Only one thing differs: the line's
fixed parts are columns, not ``key=value`` pairs, so a bound or ``extra=`` field named like
a JSON field (``level``, ``message``) keeps its name here.

Ids are shortened to their first 8 hex digits each (``short_ids=False`` prints them whole):
32 bits tell one trace or span from another on a screen of logs, and a prefix is what
Jaeger's and Zipkin's UIs show and what a search in the JSON logs matches. Generators that
put a timestamp in the first bytes of trace ids (AWS X-Ray's) make trace prefixes repeat
within a second; use full ids there.

Values print bare when they are simple (no spaces, quotes or ``=``) and JSON-quoted
otherwise, so a line splits back into fields unambiguously. Exceptions and captured stacks
follow the line, as the stdlib formatter prints them. ANSI colours (by level; field names
and ids dimmed) are written only with ``color=True``; :func:`stream_supports_color` is the
usual way to decide. Like the JSON formatter, it never raises.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from otel_resilience.logs._context import bound, current_span_ids
from otel_resilience.logs._fields import (
    CODE_STACKTRACE,
    EXCEPTION_STACKTRACE,
    FORMAT_ERROR,
    RecordFields,
    as_is,
    clean_text,
    record_extras,
    record_message,
    safe_repr,
)
from otel_resilience.logs._levels import TRACE, level_name
from otel_resilience.logs._redaction import DEFAULT_REDACTOR, Redactor

__all__ = ["HumanFormatter", "stream_supports_color"]

_RESET: Final = "\x1b[0m"
_DIM: Final = "\x1b[2m"
# Checked from the top: the first threshold a record's level reaches picks its colour.
_LEVEL_COLORS: Final = (
    (logging.CRITICAL, "\x1b[1;31m"),  # bold red
    (logging.ERROR, "\x1b[31m"),  # red
    (logging.WARNING, "\x1b[33m"),  # yellow
    (logging.INFO, "\x1b[32m"),  # green
    (logging.DEBUG, "\x1b[34m"),  # blue
    (TRACE, _DIM),
)
_LEVEL_WIDTH: Final = 8  # len("CRITICAL")
_NO_FIELDS: Final[Mapping[str, object]] = MappingProxyType({})
_SHORT_ID_LENGTH: Final = 8

# Characters that would make a bare value ambiguous when the line is split into fields.
_NEEDS_QUOTES: Final = frozenset(' ="\\\n\r\t')


def stream_supports_color(stream: object) -> bool:
    """Whether ANSI colours suit ``stream``: a terminal, ``NO_COLOR`` unset, ``TERM`` not dumb.

    ``NO_COLOR`` follows https://no-color.org: set to anything but the empty string, it
    turns colour off.
    """
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    if not callable(isatty):
        return False
    try:
        return bool(isatty())
    except Exception:  # a closed stream raises ValueError; a foreign one anything
        return False


def _render_value(value: object) -> str:
    if value is None or type(value) in (bool, int, float):
        return str(value)
    if type(value) is str:
        text = value
    elif isinstance(value, (datetime.date, datetime.time)):
        text = value.isoformat()  # as the JSON format writes them
    else:
        text = safe_repr(value)
    if text and not _NEEDS_QUOTES.intersection(text):
        return text
    return json.dumps(text, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    """Formats each record as one aligned, readable line; see the module for the layout.

    ``color`` writes ANSI colours; ``logger_width`` is the logger column's width;
    ``short_ids`` shortens trace and span ids to 8 hex digits; ``redactor`` replaces the default
    one. The positional parameters exist for ``logging.config.dictConfig``'s ``class`` key
    and are ignored.
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: str = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
        color: bool = False,
        logger_width: int = 20,
        short_ids: bool = True,
        redactor: Redactor | None = None,
    ) -> None:
        super().__init__()
        if logger_width < 0:
            raise ValueError(f"logger_width must be at least 0, got {logger_width!r}")
        self.color: Final = color
        self.logger_width: Final = logger_width
        self.short_ids: Final = short_ids
        self.redactor: Final = DEFAULT_REDACTOR if redactor is None else redactor
        self._dim_start = _DIM if color else ""
        self._dim_end = _RESET if color else ""
        # What the fields are; this class only lays them out. The line's fixed parts are
        # columns, not ``key=value`` pairs, so no bound or ``extra=`` name is reserved.
        self._record_fields = RecordFields[object](self.redactor, as_is, reserved=frozenset())
        # One-entry caches, each a tuple replaced in one assignment (safe across threads): the
        # second whose time was formatted; the bound context's fields (the fields step's
        # mapping, the same object while the bound values are constants) and their pairs.
        self._second: tuple[int, str] = (-1, "")
        self._context_pairs: tuple[Mapping[str, object], str] = (_NO_FIELDS, "")
        self._level_cells: dict[tuple[int, str], str] = {}

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line, followed by its traceback or stack when it has one."""
        try:
            return clean_text(self._format(record))
        except Exception as error:
            return clean_text(self._error_line(record, error))

    def _format(self, record: logging.LogRecord) -> str:
        record_fields = self._record_fields
        message, message_error = record_fields.message(record)
        name = record.name if type(record.name) is str else safe_repr(record.name)
        line = (
            f"{self._time(record)} {self._level_cell(record)} "
            f"{name:<{self.logger_width}}  {message}"
        )
        pairs = self._pairs(record)
        if message_error is not None:
            error_pair = self._pair(FORMAT_ERROR, message_error)
            pairs = f"{pairs} {error_pair}" if pairs else error_pair
        if pairs:
            line = f"{line}  {pairs}"
        ids = current_span_ids()
        if ids is not None:
            trace_id, span_id = ids.trace_id, ids.span_id
            if self.short_ids:
                trace_id = trace_id[:_SHORT_ID_LENGTH]
                span_id = span_id[:_SHORT_ID_LENGTH]
            line = f"{line}  {self._dim_start}[trace={trace_id} span={span_id}]{self._dim_end}"
        if record.exc_info or record.stack_info:
            # The traceback and the stack follow the line, as the stdlib formatter prints them.
            fixed = record_fields.fixed(record, None, self)
            traceback = fixed.get(EXCEPTION_STACKTRACE)
            if traceback is not None:
                line = f"{line}\n{traceback}"
            stack = fixed.get(CODE_STACKTRACE)
            if stack is not None:
                line = f"{line}\n{stack}"
        return line

    def _pairs(self, record: logging.LogRecord) -> str:
        """``key=value ...`` for the bound and ``extra=`` fields; empty when there are none."""
        record_fields = self._record_fields
        context = bound()
        prepared = record_fields.context(context) if context else _NO_FIELDS
        cached, rendered = self._context_pairs
        if cached is not prepared:
            rendered = self._render(prepared)
            # Holding ``prepared`` keeps its identity from being reused by another mapping.
            self._context_pairs = (prepared, rendered)
        extras = record_extras(record)
        if not extras:
            return rendered
        appended = record_fields.appended_extras(prepared, extras)
        if appended is not None:  # the usual case: the bound pairs as rendered, then these
            extra_pairs = self._render(appended)
            return f"{rendered} {extra_pairs}" if rendered else extra_pairs
        fields = dict(prepared)
        record_fields.add_extras(fields, extras)
        return self._render(fields)

    def _time(self, record: logging.LogRecord) -> str:
        created = record.created
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime("%H:%M:%S", self.converter(second)))
            self._second = cached
        return f"{cached[1]}.{int(record.msecs):03d}"

    def _level_cell(self, record: logging.LogRecord) -> str:
        key = (record.levelno, record.levelname)
        cell = self._level_cells.get(key)
        if cell is None:
            cell = f"{level_name(record):<{_LEVEL_WIDTH}}"
            if self.color:
                color = next((c for level, c in _LEVEL_COLORS if record.levelno >= level), "")
                stripped = cell.rstrip()
                cell = f"{color}{stripped}{_RESET}{cell[len(stripped) :]}" if color else cell
            self._level_cells[key] = cell
        return cell

    def _pair(self, key: str, value: object) -> str:
        return f"{self._dim_start}{key}={self._dim_end}{_render_value(value)}"

    def _render(self, fields: Mapping[str, object]) -> str:
        return " ".join(self._pair(key, value) for key, value in fields.items())

    def _error_line(self, record: logging.LogRecord, error: BaseException) -> str:
        """A plain line for a record that could not be rendered in full; never raises."""
        try:
            message = self.redactor.redact_text(record_message(record)[0])
            name = safe_repr(getattr(record, "name", "?"))
            problem = self.redactor.redact_text(safe_repr(error))
            return f"{level_name(record)} {name}  {message}  [format error: {problem}]"
        except Exception:
            return "<unformattable log record>"
