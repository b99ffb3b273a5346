"""Where log lines go: the byte destinations behind the handlers, one small class each.

A handler decides *when* a record is written (from a background thread, by
:class:`~otel_resilience.logs._async_handler.NonBlockingHandler`, or on the caller's); a renderer
decides *what* bytes a record becomes (:mod:`~otel_resilience.logs._json_format`,
:mod:`~otel_resilience.logs._human_format`); a sink decides only *where* those bytes go. Kept
apart, each can be chosen alone (``logs.configure`` composes a renderer, a sink and a handler
per output) and tested alone: a sink takes bytes and knows nothing of records.

:class:`StreamSink` writes to an open stream (the console output: standard error by
default), :class:`FileSink` appends to a file and rotates it (the file output), and any
object with ``write``, ``flush`` and ``close`` (:class:`Sink`) or a plain ``callable(bytes)``
(:func:`as_sink`) will do. The memory output keeps structured entries rather than bytes, so
it is a handler of its own (:class:`~otel_resilience.logs._memory.RingBufferHandler`).
"""

from __future__ import annotations

import datetime
import io
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Final, Protocol, cast

__all__ = ["FileSink", "LogFileError", "Sink", "StreamSink", "as_sink", "open_file_sink"]


class Sink(Protocol):
    """Where a handler writes bytes; a non-blocking handler's, from its writer thread only.

    ``write`` receives whole records (one or more, each ending in a newline). A sink that
    also has ``write_records(records: Sequence[bytes])`` gets each batch unjoined instead,
    for when it must know where records end (:class:`FileSink` rotates between records).
    ``flush`` is called when the writer's queue has run dry and on the handler's ``flush``;
    ``close`` once, by the handler's ``close``. An exception from any of them loses that
    batch and is reported; the writer carries on.
    """

    def write(self, data: bytes) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class _CallableSink:
    """A ``callable(bytes)`` as a sink: tests and adapters pass a function."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write

    def write(self, data: bytes) -> None:
        self._write(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def as_sink(sink: Sink | IO[bytes] | IO[str] | Callable[[bytes], object]) -> Sink:
    """``sink`` as a :class:`Sink`: a sink as it is, an ``io`` stream in a :class:`StreamSink`,
    a ``callable(bytes)`` as the ``write`` of a sink with nothing to flush or close."""
    if isinstance(sink, io.IOBase):
        return StreamSink(cast("IO[bytes] | IO[str]", sink))
    if all(hasattr(sink, method) for method in ("write", "flush", "close")):
        return cast(Sink, sink)
    if callable(sink):
        return _CallableSink(sink)
    raise TypeError(f"expected a sink, a stream or a callable(bytes), got {sink!r}")


class StreamSink:
    """Writes to an open stream, text or binary; closing it flushes but leaves it open.

    Like ``logging.StreamHandler``, the stream belongs to whoever opened it (``sys.stderr``
    by default), unless ``close_stream`` says otherwise. A text stream gets the bytes decoded
    back to ``str``, so what is written goes through the stream's own buffer, in order with
    the program's other writes to it.
    """

    def __init__(
        self, stream: IO[bytes] | IO[str] | None = None, *, close_stream: bool = False
    ) -> None:
        self.stream: Final = sys.stderr if stream is None else stream
        self._close_stream = close_stream
        self._text = _is_text(self.stream)

    def write(self, data: bytes) -> None:
        if self._text:
            cast("IO[str]", self.stream).write(data.decode("utf-8", "replace"))
        else:
            cast("IO[bytes]", self.stream).write(data)

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
        if self._close_stream:
            self.stream.close()


def _is_text(stream: IO[bytes] | IO[str]) -> bool:
    if isinstance(stream, io.TextIOBase):
        return True
    if isinstance(stream, io.RawIOBase | io.BufferedIOBase):
        return False
    return hasattr(stream, "encoding")


_INTERVAL_SECONDS: Final = {"S": 1, "M": 60, "H": 3600, "D": 86400}


class FileSink:
    """Appends to a file, rotating it by size, by time, or both; never splits a record.

    Its own small implementation rather than ``RotatingFileHandler`` and
    ``TimedRotatingFileHandler``: those are handlers, that take a record at a time, format it
    a second time to measure it, and have no way to be told about a batch of bytes, nor to
    rotate by size and time at once.

    The file is opened unbuffered: the writer already joins a batch into one buffer, so each
    batch is one ``write`` system call, and no bytes sit in a Python buffer where a forked
    child could write them a second time. Size rotation happens between records, so a file
    exceeds ``max_bytes`` only when a single record does. Time rotation (``when``: ``"S"``,
    ``"M"``, ``"H"``, ``"D"`` times ``interval``, or ``"midnight"``) is checked before each
    batch, against ``clock`` (injectable for tests). Either way ``path`` becomes ``path.1``,
    ``path.1`` becomes ``path.2``... up to ``backup_count`` files (0: the old file is
    deleted). Rotation is per process: processes sharing one file (a pre-fork server's
    workers) should each get their own path, or leave rotation to one of them.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int | None = None,
        backup_count: int = 5,
        when: str | None = None,
        interval: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        if backup_count < 0:
            raise ValueError(f"backup_count must be at least 0, got {backup_count}")
        if interval < 1:
            raise ValueError(f"interval must be at least 1, got {interval}")
        self._when = None if when is None else when.upper()
        if self._when is not None and self._when not in {*_INTERVAL_SECONDS, "MIDNIGHT"}:
            raise ValueError(f"when must be S, M, H, D or midnight, got {when!r}")
        self.path: Final = os.fspath(path)
        self._max_bytes = max_bytes
        self._backup_count = backup_count
        self._interval = interval
        self._clock = clock
        self.rotation_errors = 0
        self._file: io.FileIO | None = None
        self._size = self._open()
        self._rollover_at = math.inf
        if self._when is not None:
            started = os.stat(self.path).st_mtime if self._size else clock()
            self._rollover_at = self._next_rollover(started)

    def _open(self) -> int:
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 (kept open)
        return os.fstat(self._file.fileno()).st_size

    def _next_rollover(self, after: float) -> float:
        if self._when == "MIDNIGHT":
            day = datetime.datetime.fromtimestamp(after).date()
            midnight = datetime.datetime.combine(day, datetime.time())
            return (midnight + datetime.timedelta(days=self._interval)).timestamp()
        assert self._when is not None
        return after + self._interval * _INTERVAL_SECONDS[self._when]

    def write(self, data: bytes) -> None:
        self.write_records((data,))

    def write_records(self, records: Sequence[bytes]) -> None:
        """Write whole records, as few ``write`` calls as rotation allows (usually one)."""
        if self._file is None:
            raise ValueError(f"FileSink({self.path!r}) is closed")
        now = self._clock()
        if now >= self._rollover_at:
            if self._size:
                self._rotate()
            while self._rollover_at <= now:
                self._rollover_at = self._next_rollover(self._rollover_at)
        limit = self._max_bytes
        if limit is None:
            self._write_all(b"".join(records))
            return
        group: list[bytes] = []
        group_size = 0
        for record in records:
            if self._size + group_size + len(record) > limit and self._size + group_size:
                if group:
                    self._write_all(b"".join(group))
                    group, group_size = [], 0
                self._rotate()
            group.append(record)
            group_size += len(record)
        if group:
            self._write_all(b"".join(group))

    def _write_all(self, data: bytes) -> None:
        assert self._file is not None
        view = memoryview(data)
        while view:  # a regular file takes it all at once; the loop is for the exceptions
            written = self._file.write(view)
            if not written:
                raise OSError(f"{self.path} accepted no bytes")
            view = view[written:]
        self._size += len(data)

    def _rotate(self) -> None:
        """Shift the backups and start an empty file; on failure, keep appending here."""
        assert self._file is not None
        self._file.close()
        try:
            if self._backup_count == 0:
                os.remove(self.path)
            else:
                for number in range(self._backup_count - 1, 0, -1):
                    older = f"{self.path}.{number}"
                    if os.path.exists(older):
                        os.replace(older, f"{self.path}.{number + 1}")
                os.replace(self.path, f"{self.path}.1")
        except OSError:  # e.g. a reader holds the file on Windows: better a big file than none
            self.rotation_errors += 1
            self._open()
            self._size = 0  # the next attempt after another max_bytes, not at every record
        else:
            self._size = self._open()

    def flush(self) -> None:
        """Nothing to do: every batch went to the OS in its own ``write`` call."""

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class LogFileError(OSError):
    """The log file could not be opened; ``reason`` is the operating system's error."""

    def __init__(self, path: str, error: OSError) -> None:
        super().__init__(error.errno, f"cannot open the log file {path!r}: {error}")
        self.path = path
        self.reason = f"{type(error).__name__}: {error.strerror or error}"


def open_file_sink(
    path: str,
    *,
    max_bytes: int | None = None,
    backup_count: int = 5,
    when: str | None = None,
) -> FileSink:
    """The file output's sink, opened now: :class:`LogFileError` (an ``OSError``) names the
    file when it cannot be, so a caller can report it and go on without it."""
    try:
        return FileSink(path, max_bytes=max_bytes, backup_count=backup_count, when=when)
    except OSError as error:
        raise LogFileError(path, error) from error
