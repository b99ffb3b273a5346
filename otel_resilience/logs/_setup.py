"""One call that puts correlated, structured output on the program's standard logging.

Records keep flowing through ``logging`` exactly as before: ``configure`` only adds its
handlers to the root logger (so third-party libraries' records are treated like the
program's), and changes the root level only when asked to. The program's own handlers,
levels and formats stay; a later ``logging.basicConfig()`` still takes effect, because the
log bridge ignores handlers marked as ours when it decides whether logging is configured.
Calling ``configure`` again replaces the previous set-up.

Each output is composed of four parts, each in a module of its own: the fields step
(:mod:`~otel_resilience.logs._fields`: what a record's fields are, redaction included),
inside a renderer (:mod:`~otel_resilience.logs._json_format` or
:mod:`~otel_resilience.logs._human_format`: how they look), a sink
(:mod:`~otel_resilience.logs._sinks`: where the bytes go) and a handler
(:mod:`~otel_resilience.logs._async_handler`: on which thread they are written). The memory
output keeps entries rather than bytes, so its handler is its sink
(:mod:`~otel_resilience.logs._memory`); the OTLP output is the log bridge's
(:mod:`~otel_resilience.logs._bridge`), not this module's.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import IO, Final, Literal

from otel_resilience._fork import unlock_after_fork
from otel_resilience.logs._async_handler import NonBlockingHandler, SerialisingHandler
from otel_resilience.logs._bridge import keep_basic_config_working, keep_logging_config_working
from otel_resilience.logs._context import bound
from otel_resilience.logs._fast_record import (
    install_fast_record_factory,
    uninstall_fast_record_factory,
)
from otel_resilience.logs._human_format import HumanFormatter, stream_supports_color
from otel_resilience.logs._json_format import JsonFormatter
from otel_resilience.logs._levels import install_trace_level
from otel_resilience.logs._memory import RingBufferHandler
from otel_resilience.logs._redaction import Redactor
from otel_resilience.logs._sinks import LogFileError, Sink, StreamSink, open_file_sink
from otel_resilience.metrics import Observation
from otel_resilience.metrics._registry import resilience_registry
from otel_resilience.sdk.settings import LOG_FILE, LogSettings

__all__ = [
    "LEAN_RECORD_SETTINGS",
    "OUR_HANDLER_MARK",
    "LogFileError",
    "LoggingSetup",
    "configure",
    "configure_from_settings",
    "current_setup",
    "get_logger",
    "memory_log",
]

Format = Literal["json", "human"]
Output = Literal["console", "file", "memory"]


_logger = logging.getLogger(__name__)


OUR_HANDLER_MARK = "_otel_resilience_handler"
"""Attribute set on every handler this package adds, so the log bridge can tell them apart."""


class _SinkHandler(SerialisingHandler):
    """The blocking counterpart of :class:`NonBlockingHandler`: writes on the caller's thread."""

    def __init__(self, sink: Sink, formatter: logging.Formatter) -> None:
        super().__init__()
        self.sink = sink
        self.setFormatter(formatter)
        # The lock is held around the write only, not the formatting (see LockFreeHandler).
        self._write_lock = threading.Lock()
        unlock_after_fork(self, "_write_lock")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = self._serialise(record)
            with self._write_lock:  # one record's bytes, one write: lines never interleave
                self.sink.write(data)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.sink.flush()

    def close(self) -> None:
        try:
            self.sink.close()
        finally:
            super().close()


@dataclass
class LoggingSetup:
    """What :func:`configure` installed; change its level or format at runtime."""

    handlers: tuple[logging.Handler, ...]
    memory: RingBufferHandler | None
    format: Format
    service_name: str | None
    redact: bool
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _restore_records: dict[str, object] | None = field(default=None, repr=False)
    _fast_records: bool = field(default=False, repr=False)

    @property
    def dropped(self) -> int:
        """Records the non-blocking writers dropped because their queue was full."""
        return sum(h.dropped for h in self.handlers if isinstance(h, NonBlockingHandler))

    def set_level(self, level: int | str) -> None:
        """The root logger's level, at runtime (``"TRACE"`` included)."""
        install_trace_level()
        logging.getLogger().setLevel(_level_number(level))

    def set_format(self, format: Format) -> None:
        """Switch every handler of this set-up to ``json`` or ``human``, at runtime."""
        with self._lock:
            for handler in self.handlers:
                handler.setFormatter(
                    _renderer(format, self.service_name, self.redact, _stream_of(handler))
                )
            self.format = format

    def close(self) -> None:
        """Remove the handlers from the root logger, writing out what they hold."""
        global _current  # noqa: PLW0603 - the one current set-up ends with it
        with _current_lock:
            if _current is self:
                _current = None
        root = logging.getLogger()
        for handler in self.handlers:
            root.removeHandler(handler)
            handler.close()
        restore, self._restore_records = self._restore_records, None
        if restore is not None:
            _set_record_settings(restore)
        fast, self._fast_records = self._fast_records, False
        if fast:
            uninstall_fast_record_factory()


_current: LoggingSetup | None = None
_current_lock = threading.Lock()
unlock_after_fork(sys.modules[__name__], "_current_lock")


LEAN_RECORD_SETTINGS: Final[Mapping[str, object]] = MappingProxyType(
    {
        "_srcfile": None,  # no caller frame: funcName, pathname and lineno are placeholders
        "logThreads": False,
        "logProcesses": False,
        "logMultiprocessing": False,
        "logAsyncioTasks": False,  # Python 3.12+
    }
)
"""What ``lean_records`` sets in the ``logging`` module: its documented optimisations."""


def _set_record_settings(settings: Mapping[str, object]) -> dict[str, object]:
    """Set ``logging`` module attributes (those it has); their previous values."""
    previous = {}
    for name, value in settings.items():
        if hasattr(logging, name):
            previous[name] = getattr(logging, name)
            setattr(logging, name, value)
    return previous


def _level_number(level: int | str) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    return number


def _stream_of(handler: logging.Handler) -> object:
    sink = getattr(handler, "sink", None)
    return getattr(sink, "stream", None)


def _renderer(
    format: Format, service_name: str | None, redact: bool, stream: object
) -> logging.Formatter:
    """The renderer of ``format``, with its fields step redacting or not; colours only for a
    ``stream`` that shows them."""
    redactor = None if redact else Redactor(enabled=False)
    if format == "json":
        return JsonFormatter(service_name=service_name, redactor=redactor)
    if format == "human":
        return HumanFormatter(color=stream_supports_color(stream), redactor=redactor)
    raise ValueError(f"format must be 'json' or 'human', got {format!r}")


def _writer(
    sink: Sink, formatter: logging.Formatter, non_blocking: bool, queue_size: int
) -> logging.Handler:
    """The handler that writes ``formatter``'s bytes to ``sink``: from a background thread
    (``non_blocking``) or on the caller's."""
    if non_blocking:
        return NonBlockingHandler(sink, formatter=formatter, max_queue=queue_size)
    return _SinkHandler(sink, formatter)


def configure(
    *,
    format: Format = "json",
    level: int | str | None = None,
    outputs: Iterable[Output] = ("console",),
    stream: IO[str] | IO[bytes] | None = None,
    file: str | None = None,
    file_max_bytes: int | None = None,
    file_backup_count: int = 5,
    file_rotate_when: str | None = None,
    non_blocking: bool = True,
    queue_size: int = 10_000,
    memory_capacity: int = 1000,
    service_name: str | None = None,
    redact: bool = True,
    lean_records: bool = False,
    fast_records: bool = True,
) -> LoggingSetup:
    """Add correlated ``json`` or ``human`` output for every logger to the root logger.

    ``outputs``: ``console`` (``stream``, standard error by default), ``file`` (``file``,
    rotated at ``file_max_bytes`` and/or ``file_rotate_when`` — ``S``, ``M``, ``H``, ``D``
    or ``midnight``), ``memory`` (a ring buffer of ``memory_capacity`` records, queried
    through :func:`memory_log`). With ``non_blocking`` the console and file writes happen
    on a background thread; ``queue_size`` bounds what may wait, and records beyond it are
    dropped and counted, never blocking the program. ``level`` sets the root logger's
    level; without it the program's level stays.

    ``lean_records`` applies Python's documented ``logging`` optimisations to the whole
    program while this set-up is current (restored when it is closed or replaced): no
    caller-frame look-up (``logging._srcfile = None``: ``funcName``, ``pathname`` and
    ``lineno`` become placeholders in every record, for every handler), no thread,
    process, multiprocessing or asyncio task names (``logging.logThreads`` and siblings).
    Our JSON and human lines use none of these; a program whose own formats show them
    should leave it off. It takes about a third off the standard library's own cost per
    record (see ``benchmarks/log_throughput.py``).

    ``fast_records`` (on by default) makes every record with
    :class:`~otel_resilience.logs._fast_record.FastLogRecord` while this set-up is current,
    where ``logging`` still has its default record factory: the same attributes with the
    same values as ``LogRecord``, about 1 µs sooner (a third of the standard record's own
    cost). A program's own record factory is left in place.

    A ``file`` that cannot be opened raises :class:`LogFileError` (an ``OSError``) before
    anything is installed.
    """
    global _current
    install_trace_level()
    chosen = tuple(dict.fromkeys(outputs))
    unknown = [name for name in chosen if name not in ("console", "file", "memory")]
    if unknown or not chosen:
        raise ValueError(f"outputs must be console, file or memory, got {list(chosen)!r}")
    if "file" in chosen and not file:
        raise ValueError("the file output needs file=<path>")
    handlers: list[logging.Handler] = []
    memory = None
    # The file is opened first: if it cannot be, nothing has been started yet.
    file_sink = None
    if "file" in chosen and file:
        file_sink = open_file_sink(
            file, max_bytes=file_max_bytes, backup_count=file_backup_count, when=file_rotate_when
        )
    if "console" in chosen:
        console = stream if stream is not None else sys.stderr
        renderer = _renderer(format, service_name, redact, console)
        handlers.append(_writer(StreamSink(console), renderer, non_blocking, queue_size))
    if file_sink is not None:
        renderer = _renderer(format, service_name, redact, None)
        handlers.append(_writer(file_sink, renderer, non_blocking, queue_size))
    if "memory" in chosen:
        memory = RingBufferHandler(
            memory_capacity,
            context_provider=bound,
            redactor=None if redact else Redactor(enabled=False),
        )
        memory.setFormatter(_renderer(format, service_name, redact, None))
        handlers.append(memory)
    setup = LoggingSetup(tuple(handlers), memory, format, service_name, redact)
    root = logging.getLogger()
    with _current_lock:
        previous, _current = _current, setup
    if previous is not None:
        previous.close()
    if lean_records:
        setup._restore_records = _set_record_settings(LEAN_RECORD_SETTINGS)
    if fast_records:
        setup._fast_records = install_fast_record_factory()
    with _current_lock:
        for handler in handlers:
            setattr(handler, OUR_HANDLER_MARK, True)
            root.addHandler(handler)
    keep_basic_config_working()  # the program's own basicConfig() still takes effect
    keep_logging_config_working()  # and its dictConfig()/fileConfig() keep ours in place
    if level is not None:
        setup.set_level(level)
    _register_drop_counter()
    return setup


def configure_from_settings(settings: LogSettings, service_name: str | None) -> LoggingSetup | None:
    """The launcher's path: ``OTEL_RESILIENCE_LOG_*`` as parsed by :mod:`config`.

    A log file that cannot be opened (a directory, a missing or read-only directory) costs
    one warning naming ``OTEL_RESILIENCE_LOG_FILE`` and the error; the other outputs asked
    for are set up without it, as a bad value of any other variable costs only its piece.
    """
    every: tuple[Output, ...] = ("console", "file", "memory")
    outputs: Sequence[Output] = tuple(name for name in every if name in settings.outputs)
    if settings.format != "none" and outputs:
        try:
            return _configure_outputs(settings, outputs, service_name)
        except LogFileError as error:
            outputs = tuple(name for name in outputs if name != "file")
            _logger.warning(
                "%s=%r cannot be opened (%s): expected a writable file path; %s",
                LOG_FILE.name,
                error.path,
                error.reason,
                f"logging goes on to {', '.join(outputs)} without the file"
                if outputs
                else "the file output is left out",
            )
            if outputs:
                return _configure_outputs(settings, outputs, service_name)
    if settings.level is not None:
        install_trace_level()
        logging.getLogger().setLevel(_level_number(settings.level))
    return None


def _configure_outputs(
    settings: LogSettings, outputs: Sequence[Output], service_name: str | None
) -> LoggingSetup:
    format: Format = "json" if settings.format == "json" else "human"
    return configure(
        format=format,
        level=settings.level,
        outputs=outputs,
        file=settings.file,
        file_max_bytes=settings.file_max_bytes,
        file_backup_count=settings.file_backup_count,
        non_blocking=settings.non_blocking,
        queue_size=settings.queue_size,
        service_name=service_name,
        redact=settings.redact,
        lean_records=settings.lean_records,
        fast_records=settings.fast_records,
    )


def current_setup() -> LoggingSetup | None:
    """The set-up :func:`configure` made last, if any."""
    return _current


def memory_log() -> RingBufferHandler | None:
    """The in-memory ring buffer of the current set-up (the ``memory`` output), if any."""
    return None if _current is None else _current.memory


def get_logger(name: str | None = None) -> logging.Logger:
    """``logging.getLogger(name)``, with the ``TRACE`` level and ``logger.trace()`` available.

    A plain standard ``Logger``: there is no parallel logging universe, and records of
    loggers obtained any other way are formatted and correlated alike.
    """
    install_trace_level()
    return logging.getLogger(name)


def _observe_drops() -> Iterable[Observation]:
    setup = _current
    yield (0 if setup is None else setup.dropped), {}


def _register_drop_counter() -> None:
    """``resilience.log.records.dropped``, read from the writers at collection time.

    In the registry of our own instruments, like the breakers': rendered on the Prometheus
    endpoint, sent with the OTLP batches, and in ``/status``. Registering again returns
    the same instrument.
    """
    resilience_registry().observable_counter(
        "resilience.log.records.dropped",
        _observe_drops,
        unit="{record}",
        description="Log records dropped because the non-blocking writer's queue was full.",
    )
