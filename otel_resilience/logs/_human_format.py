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
message; the bound context and ``extra=`` fields as ``key=value`` (redacted, the same
collision rule as the JSON format: ``extra=`` wins and the bound value moves to
``context.<key>``); the span ids in brackets when there is a valid current span. The
message, traceback and stack have the credentials they quote replaced, as in the JSON
lines (see :mod:`otel_resilience.logs._redaction`).

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

from otel_resilience.logs._context import bound, current_span_ids, holds_only_constants
from otel_resilience.logs._json_format import (
    clean_text,
    formatted_traceback,
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
        # One-entry caches, each a tuple replaced in one assignment (safe across threads).
        self._second: tuple[int, str] = (-1, "")
        self._bound_cache: tuple[Mapping[str, object], Mapping[str, object], str] = (
            MappingProxyType({}),
            {},
            "",
        )
        self._level_cells: dict[tuple[int, str], str] = {}

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line, followed by its traceback or stack when it has one."""
        try:
            return clean_text(self._format(record))
        except Exception as error:
            return clean_text(self._error_line(record, error))

    def _format(self, record: logging.LogRecord) -> str:
        message, message_error = record_message(record)
        redactor = self.redactor
        message = redactor.redact_text(message)
        name = record.name if type(record.name) is str else safe_repr(record.name)
        line = (
            f"{self._time(record)} {self._level_cell(record)} "
            f"{name:<{self.logger_width}}  {message}"
        )
        fields = self._fields(record)
        if message_error is not None:
            error_pair = self._pair(
                "otel_resilience.format_error", redactor.redact_text(message_error)
            )
            fields = f"{fields} {error_pair}" if fields else error_pair
        if fields:
            line = f"{line}  {fields}"
        ids = current_span_ids()
        if ids is not None:
            trace_id, span_id = ids.trace_id, ids.span_id
            if self.short_ids:
                trace_id = trace_id[:_SHORT_ID_LENGTH]
                span_id = span_id[:_SHORT_ID_LENGTH]
            line = f"{line}  {self._dim_start}[trace={trace_id} span={span_id}]{self._dim_end}"
        if record.exc_info and record.exc_info[0] is not None:
            # Its message may quote a DSN; its source lines, a hard-coded one.
            line = f"{line}\n{redactor.redact_text(formatted_traceback(self, record))}"
        if record.stack_info:
            line = f"{line}\n{redactor.redact_text(record.stack_info)}"
        return line

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

    def _fields(self, record: logging.LogRecord) -> str:
        """``key=value ...`` for the bound and ``extra=`` fields; empty when there are none."""
        context = bound()
        cached_context, redacted_context, rendered_context = self._bound_cache
        if context is not cached_context:
            redacted_context = self.redactor.redact(context)
            rendered_context = self._render(redacted_context)
            if holds_only_constants(context):
                # Holding ``context`` keeps its identity from being reused by another mapping.
                self._bound_cache = (context, redacted_context, rendered_context)
        raw_extras = record_extras(record)
        if not raw_extras:
            return rendered_context
        extras = self.redactor.redact(raw_extras)
        if redacted_context.keys() & extras.keys():
            merged = dict(redacted_context)
            for key, value in extras.items():
                if key in merged:
                    merged.setdefault(f"context.{key}", merged[key])
                merged[key] = value
            return self._render(merged)
        rendered_extras = self._render(extras)
        if rendered_context:
            return f"{rendered_context} {rendered_extras}"
        return rendered_extras

    def _error_line(self, record: logging.LogRecord, error: BaseException) -> str:
        """A plain line for a record that could not be rendered in full; never raises."""
        try:
            message = self.redactor.redact_text(record_message(record)[0])
            name = safe_repr(getattr(record, "name", "?"))
            problem = self.redactor.redact_text(safe_repr(error))
            return f"{level_name(record)} {name}  {message}  [format error: {problem}]"
        except Exception:
            return "<unformattable log record>"
