"""Write log records from a background thread, so that logging never waits on I/O.

A program that logs to a slow disk, a full pipe or a stalled terminal should not slow down
with it. The caller's thread only turns the record into bytes and appends them to a bounded
queue; one writer thread per handler drains the queue in batches, joining each batch into
one ``write``. When the writer falls behind and the queue is full, the record is dropped and
counted rather than making the program wait: losing a log line is better than stalling a
request.

Why the queue holds bytes and not ``LogRecord`` objects (as the standard ``QueueHandler``
does): a record references the call's arguments and, with ``exc_info``, a traceback and its
frames, so a full queue of records keeps a great many objects alive for the garbage
collector to walk on every collection; bytes are one untracked object each. Formatting on
the caller also fixes the message as it was at the call, when its arguments may change next.

Caller-side cost is the formatting plus a ``len`` and an ``append`` on a ``collections.deque``
(atomic under the GIL, no lock), and, only when the writer is idle, setting the ``Event`` it
sleeps on: a busy writer is never signalled per record, so callers and writer share no lock
while records flow. Having emptied the queue with a small batch, the writer first lingers
(50 ms by default) for more records before it goes idle, so a trickle costs one wake-up and
one write per linger rather than per burst; a caller cuts the linger short when the queue
is half full, and ``flush``/``close`` always do. ``handle`` is overridden to skip the handler lock
``logging`` would take around each ``emit`` (``emit`` needs none); the handler's filters
still apply. Drops are reported by the writer (to ``on_drop``, and as one line on stderr
at most every ``report_interval`` seconds), never through ``logging``, so reporting cannot
recurse into the handler.

What is queued is written at exit (``atexit``, within ``flush_timeout``), after which the
handler writes synchronously, so that records logged by later exit hooks are not lost. A
child made by ``os.fork()`` starts with an empty queue, zero counters and no writer (a new
one starts on its first record): the parent's queued records are the parent's to write.
What the child queues is written before it ends, as for any process, and also where it
ends through ``os._exit``, which runs no exit handler: in the children ``multiprocessing``
starts (``fork`` and ``forkserver`` end so; a ``multiprocessing`` finalizer drains them),
and in any forked child (``os._exit`` is wrapped there). Records still queued are lost
only when a process is killed, or when one that was not forked calls ``os._exit``: call
``logging.shutdown()`` first.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import IO, Final, Literal, NoReturn, cast

from otel_resilience.logs._sinks import Sink, as_sink

__all__ = [
    "LockFreeHandler",
    "NonBlockingHandler",
    "SerialisingHandler",
    "serialiser_for",
]


_Mode = Literal["queue", "direct", "closed"]
_DEFAULT_FORMATTER: Final = logging.Formatter()
_WRITER_THREAD_NAME: Final = "otel-resilience-log-writer"


class _Control:
    """A marker queued behind the records a ``flush`` or a stop must wait for."""

    __slots__ = ("done", "stop")

    def __init__(self, *, stop: bool) -> None:
        self.stop = stop
        self.done = threading.Event()


class LockFreeHandler(logging.Handler):
    """A handler whose ``handle`` takes no handler lock: for ``emit`` methods safe without it.

    ``logging.Handler.handle`` holds the handler's lock around ``emit``; our handlers do
    their own fine-grained locking (or none), so that lock is pure cost on every record.
    Filters added to the handler apply as with any handler (a filter may return a
    replacement record, since Python 3.12).
    """

    def handle(self, record: logging.LogRecord) -> bool:
        if self.filters:
            passed = self.filter(record)
            if not passed:
                return False
            if isinstance(passed, logging.LogRecord):
                record = passed
        self.emit(record)
        return True


class SerialisingHandler(LockFreeHandler):
    """A lock-free handler that turns records into bytes with its formatter's fastest path.

    The serialiser (see :func:`serialiser_for`) is looked up once per formatter, not per
    record; ``setFormatter`` at runtime is picked up on the next record.
    """

    def __init__(self, level: int | str = logging.NOTSET) -> None:
        super().__init__(level)
        self._serialiser = (_DEFAULT_FORMATTER, serialiser_for(_DEFAULT_FORMATTER))

    def _serialise(self, record: logging.LogRecord) -> bytes:
        formatter = self.formatter or _DEFAULT_FORMATTER
        cached = self._serialiser
        if cached[0] is not formatter:
            cached = self._serialiser = (formatter, serialiser_for(formatter))
        return cached[1](record)


class NonBlockingHandler(SerialisingHandler):
    """A handler whose ``emit`` formats and enqueues, and never blocks on the sink.

    ``sink`` is a :class:`~otel_resilience.logs._sinks.Sink`, a ``callable(bytes)``, or an
    ``io`` stream (see :func:`~otel_resilience.logs._sinks.as_sink`). The formatter's
    ``format_bytes(record)`` is used when it has one, else ``format(record)`` plus a
    newline, in UTF-8. At most ``max_queue`` records wait;
    the writer takes up to ``max_batch`` at a time: large, because a writer that gets the
    GIL back only once per switch interval (5 ms) while callers log flat out must drain
    all they logged meanwhile in one turn (at 128 a 100k-record burst lost a tenth of it on
    a busy machine; at 1024, a caller logging 250,000 records/s outran it). Taking 4096
    holds the GIL for about 0.2 ms. ``on_drop(count)`` is called by the
    writer with each new number of dropped records. ``flush_timeout`` bounds how long
    :meth:`flush`, :meth:`close` and the exit wait for the writer. ``linger``: how long
    the writer, having emptied the queue with a batch under a quarter of ``max_batch``,
    waits for more records before it sleeps until a caller signals it; records written
    meanwhile wait up to that long (a flush does not), and a trickle costs a wake-up per
    ``linger`` rather than one per burst.
    """

    def __init__(
        self,
        sink: Sink | IO[bytes] | IO[str] | Callable[[bytes], object],
        *,
        formatter: logging.Formatter | None = None,
        level: int | str = logging.NOTSET,
        max_queue: int = 10_000,
        max_batch: int = 4096,
        on_drop: Callable[[int], object] | None = None,
        report_interval: float = 10.0,
        flush_timeout: float = 5.0,
        linger: float = 0.05,
    ) -> None:
        if max_queue < 1 or max_batch < 1:
            raise ValueError(f"max_queue and max_batch must be at least 1, got {max_queue}")
        if linger < 0:
            raise ValueError(f"linger must be at least 0, got {linger}")
        super().__init__(level)
        if formatter is not None:
            self.setFormatter(formatter)
        self.sink: Final[Sink] = as_sink(sink)
        self._write_records: Callable[[Sequence[bytes]], object] | None = getattr(
            self.sink, "write_records", None
        )
        self._max_queue = max_queue
        self._wake_at = max_queue // 2
        self._linger = linger
        self._max_batch = max_batch
        self._on_drop = on_drop
        self._report_interval = report_interval
        self._flush_timeout = flush_timeout
        self._closed = False
        self._start_fresh()
        self._mode: _Mode = "queue"
        _live_handlers.add(self)

    def _start_fresh(self) -> None:
        """A new queue, new counters and no writer: construction, and a forked child."""
        # Appended by callers, popped by the writer: deque operations are atomic under the
        # GIL. Bytes are not tracked by the garbage collector, so a long queue adds nothing
        # to its collections.
        self._queue: collections.deque[bytes | _Control] = collections.deque()
        # Set by a caller only when ``_idle`` says the writer sleeps on it (or will).
        self._wake = threading.Event()
        self._idle = False
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        # Counted on the callers' threads, so drawn from itertools.count (one atomic C call).
        self._overflowed = itertools.count()
        self._refused = itertools.count()
        self._unformattable = itertools.count()
        # Controls ever queued, counted before each is appended: while the writer has taken
        # as many, no batch it takes can hold one (see ``_run``).
        self._controls_queued = itertools.count()
        # Counted by whichever single thread writes (the writer, or the exit afterwards).
        self._failed = 0
        self._written = 0
        self._last_error: BaseException | None = None
        self._sink_abandoned = False
        self._dropped_reported = 0
        self._warned = (0, 0, 0, 0)
        self._next_warning = 0.0

    @property
    def _lock(self) -> threading.RLock:
        """The handler's own lock, serialising mode changes (close, exit) with each other
        and with ``_after_late_append``; ``emit`` does not take it, but re-checks the mode
        after appending (``None`` only before ``createLock``, which ``__init__`` calls)."""
        return cast(threading.RLock, self.lock)

    # --- counters ---------------------------------------------------------------------

    def _drop_counts(self) -> tuple[int, int, int, int]:
        """Dropped records by cause: queue full, write failed, unformattable, after close."""
        return (
            _count_value(self._overflowed),
            self._failed,
            _count_value(self._unformattable),
            _count_value(self._refused),
        )

    @property
    def dropped(self) -> int:
        """Records handed to the handler that will never be written, whatever the cause."""
        return sum(self._drop_counts())

    @property
    def written(self) -> int:
        """Records the sink accepted."""
        return self._written

    @property
    def pending(self) -> int:
        """Records queued and not yet taken by the writer."""
        return sum(1 for item in list(self._queue) if type(item) is bytes)

    # --- the caller's side ------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = self._serialise(record)
        except Exception:
            self.handleError(record)
            return
        if self._mode != "queue":
            self._emit_without_queue(data)
            return
        records = self._queue
        queued = len(records)
        if queued >= self._max_queue:
            next(self._overflowed)
            return
        records.append(data)
        if self._idle:
            # The first caller to see it clears the flag, so the records that follow,
            # until the writer has the GIL again, do not signal it over and over.
            self._idle = False
            self._wake.set()
        elif queued == self._wake_at:  # half full: cut the writer's linger short
            self._wake.set()
        if self._worker is None:
            self._start_worker()
        elif self._mode != "queue":
            # Closed or drained at exit between the check above and the append: the
            # writer may be gone, so what it will not take is written (or counted) here.
            self._after_late_append()

    def _after_late_append(self) -> None:
        with self._lock:
            if self._mode == "direct":
                self._write_queued()
            elif self._mode == "closed" and (self._worker is None or not self._worker.is_alive()):
                records = self._queue
                while records:
                    item = records.popleft()
                    if isinstance(item, _Control):
                        item.done.set()
                    else:
                        next(self._refused)

    def handleError(self, record: logging.LogRecord) -> None:
        """Count the record as dropped; the writer reports it. Nothing reaches the caller.

        The standard handler prints a traceback on the caller's thread, where the whole
        point of this handler is to do nothing slow.
        """
        del record
        next(self._unformattable)

    def _emit_without_queue(self, data: bytes) -> None:
        if self._mode == "direct":  # after the exit drain: the writer is gone, write here
            self._write([data])
            self._flush_sink()
        else:
            next(self._refused)

    def _start_worker(self) -> None:
        with self._worker_lock:
            if self._worker is not None:
                return
            worker = threading.Thread(
                target=self._run,
                args=(self._queue, self._wake),
                name=_WRITER_THREAD_NAME,
                daemon=True,
            )
            try:
                worker.start()
            except RuntimeError:  # the interpreter is shutting down: no new threads
                self._mode = "direct"
                self._write_queued()
                return
            self._worker = worker

    # --- the writer's side ------------------------------------------------------------

    def _run(self, records: collections.deque[bytes | _Control], wake: threading.Event) -> None:
        idle_wait = max(self._report_interval, 0.1)
        take = records.popleft
        max_batch = self._max_batch
        linger = self._linger
        lingered = True
        trickle = max(1, max_batch // 4)
        taken = 0
        controls_taken = 0
        starmap, repeat = itertools.starmap, itertools.repeat
        while True:
            if not records and not lingered and linger > 0 and taken < trickle:
                # The queue ran dry after a small batch: wait a little for more before
                # sleeping until signalled, so that a trickle is written in a few large
                # writes rather than with a wake-up per burst. Callers do not signal
                # meanwhile, except at half full; ``flush`` and ``close`` always do. After
                # a large batch the flow is heavy: lingering would only let the queue fill.
                lingered = True
                wake.wait(linger)
                wake.clear()
                continue
            lingered = False
            if not records:
                # Say "idle" before the last look, so a record appended after it is signalled.
                self._idle = True
                if not records and not wake.wait(idle_wait):
                    self._idle = False
                    self._report()
                    continue
                wake.clear()
                self._idle = False  # when woken by a control, not by a caller
            # Callers wait for the GIL while this thread runs Python, so the batch is taken
            # by a loop in C (``starmap`` of ``popleft``: half a comprehension's time), bounded
            # by ``max_batch``; ``len`` items are surely there, as only this thread takes. It
            # is searched for controls only if one may be in it: every control is counted
            # before it is queued, so while that count equals the controls taken, none is.
            items: list[bytes | _Control] = list(
                starmap(take, repeat((), min(len(records), max_batch)))
            )
            taken = len(items)
            if not items:
                continue
            if _count_value(self._controls_queued) == controls_taken:
                batch = cast(list[bytes], items)
                controls: list[_Control] = []
            else:
                batch = [item for item in items if type(item) is bytes]
                controls = [i for i in items if type(i) is _Control] if len(batch) < taken else []
                controls_taken += len(controls)
            if batch:
                self._write(batch)
            if controls or not records:
                self._flush_sink()
                self._report()
            for control in controls:
                control.done.set()
            if any(control.stop for control in controls):
                return

    def _write(self, batch: list[bytes]) -> None:
        try:
            if self._write_records is not None:
                self._write_records(batch)
            else:
                self.sink.write(b"".join(batch))
        except Exception as error:  # the batch is lost; the next one may fare better
            self._failed += len(batch)
            self._last_error = error
        else:
            self._written += len(batch)

    def _flush_sink(self) -> None:
        try:
            self.sink.flush()
        except Exception as error:
            self._last_error = error

    def _write_queued(self) -> None:
        """Write what is left in the queue on this thread (the writer is gone)."""
        batch: list[bytes] = []
        records = self._queue
        while records:
            try:
                item = records.popleft()
            except IndexError:  # taken by a writer thread still finishing
                break
            if isinstance(item, _Control):
                item.done.set()
            else:
                batch.append(item)
        if batch:
            # Only then: flushing a stream this process wrote nothing through would, in a
            # forked child, write the parent's buffered bytes a second time.
            self._write(batch)
            self._flush_sink()

    def _report(self) -> None:
        """Tell ``on_drop`` about new drops, and stderr at most every ``report_interval``."""
        counts = self._drop_counts()
        dropped = sum(counts)
        if dropped != self._dropped_reported and self._on_drop is not None:
            with contextlib.suppress(Exception):  # a broken metric must not stop the writer
                self._on_drop(dropped - self._dropped_reported)
        self._dropped_reported = dropped
        new = [now - before for now, before in zip(counts, self._warned, strict=True)]
        if not any(new) or time.monotonic() < self._next_warning:
            return
        self._warned = counts
        self._next_warning = time.monotonic() + self._report_interval
        causes = ", ".join(
            f"{cause}: {count}"
            for cause, count in zip(
                ("queue full", "write failed", "unformattable", "after close"), new, strict=True
            )
            if count
        )
        error = f"; last sink error: {self._last_error!r}" if self._last_error else ""
        _warn(
            f"{sum(new)} log records dropped ({causes}) by {type(self).__name__} "
            f"(max_queue={self._max_queue}){error}"
        )

    # --- flush, close, exit, fork -----------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Return once the records emitted before the call are written and the sink flushed.

        Waits at most ``timeout`` seconds (default: ``flush_timeout``).
        """
        if self._mode == "direct":
            self._flush_sink()
            return
        worker = self._worker
        if (
            self._mode != "queue"
            or worker is None
            or not worker.is_alive()
            or worker is threading.current_thread()
        ):
            return
        control = _Control(stop=False)
        self._enqueue(control)
        control.done.wait(self._flush_timeout if timeout is None else timeout)

    def close(self) -> None:
        """Write what is queued (within ``flush_timeout``), then close the sink; idempotent.

        Records emitted afterwards are dropped and counted. If the sink is stuck, it is left
        open to its writer thread and what is still queued is reported as dropped.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            mode, self._mode = self._mode, "closed"
            worker = self._worker if mode == "queue" else None
            if worker is not None:
                self._enqueue(_Control(stop=True))
        stuck = False
        if worker is not None and worker is not threading.current_thread():
            worker.join(self._flush_timeout)
            stuck = worker.is_alive()
        if stuck:
            self._abandon("closing")
        elif not self._sink_abandoned:
            if worker is not None:
                # Records appended while the stop went in (``emit`` takes no lock).
                self._write_queued()
            try:
                self.sink.close()
            except Exception as error:
                self._last_error = error
            self._report()
        _live_handlers.discard(self)
        super().close()

    def _abandon(self, when: str) -> None:
        """The writer is stuck in the sink: count what it will not write, and say so."""
        self._sink_abandoned = True
        left = self.pending
        self._failed += left
        _warn(
            f"{left} log records not written when {when}: the sink did not finish within "
            f"{self._flush_timeout:g} s"
        )

    def _stop_for_exit(self) -> threading.Thread | None:
        """Queue a stop behind everything emitted so far; the writer to wait for, if any."""
        with self._lock:
            if self._mode != "queue":
                return None
            worker = self._worker
            if worker is None or not worker.is_alive():
                self._mode = "direct"
                self._write_queued()
                return None
            self._enqueue(_Control(stop=True))
            return worker

    def _finish_exit(self, worker: threading.Thread) -> None:
        """After the writer stopped: write stragglers here and keep writing synchronously."""
        with self._lock:
            if worker.is_alive():
                self._mode = "closed"
                self._abandon("exiting")
                return
            self._mode = "direct"
            self._write_queued()
            self._report()

    def _enqueue(self, control: _Control) -> None:
        next(self._controls_queued)
        self._queue.append(control)
        self._wake.set()

    def _after_fork_in_child(self) -> None:
        mode = self._mode
        self._start_fresh()
        self._mode = "closed" if mode == "closed" else "queue"


def serialiser_for(formatter: logging.Formatter) -> Callable[[logging.LogRecord], bytes]:
    """How ``formatter`` turns a record into one line of UTF-8 bytes, newline included."""
    format_bytes: Callable[[logging.LogRecord], bytes] | None = getattr(
        formatter, "format_bytes", None
    )
    if format_bytes is not None:
        return format_bytes

    def encoded(record: logging.LogRecord) -> bytes:
        # backslashreplace: a lone surrogate (say, from an undecodable file name) must not
        # cost the whole record.
        return (formatter.format(record) + "\n").encode("utf-8", "backslashreplace")

    return encoded


def _count_value(counter: itertools.count[int]) -> int:
    """How many values an ``itertools.count()`` has handed out, without drawing one."""
    return int(repr(counter)[6:-1])


def _warn(message: str) -> None:
    """One line on stderr, bypassing ``logging`` (which may be what is failing)."""
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(f"otel-resilience: {message}\n")
        stream.flush()
    except Exception:  # a closed or broken stderr: nowhere left to tell
        pass


_live_handlers: weakref.WeakSet[NonBlockingHandler] = weakref.WeakSet()


def _drain_at_exit() -> None:
    """Stop every writer behind its queued records, all at once, within their timeouts."""
    started = time.monotonic()
    stopping = [(handler, handler._stop_for_exit()) for handler in list(_live_handlers)]
    for handler, worker in stopping:
        if worker is not None:
            worker.join(max(0.0, started + handler._flush_timeout - time.monotonic()))
            handler._finish_exit(worker)


# Last among a multiprocessing child's finalizers, which may log; what is logged even later
# is written directly.
_MULTIPROCESSING_EXIT_PRIORITY: Final = -1000
# Whether ``multiprocessing`` was asked to drain the children it starts from here.
_draining_multiprocessing_children = False
# ``os._exit`` as it was before this module wrapped it in a forked child (None: not wrapped).
_exit_without_draining: Callable[[int], NoReturn] | None = None


def _reset_in_child() -> None:
    """A forked child's handlers start empty, and its ``os._exit`` writes what it logs.

    Forked children end through ``os._exit`` more often than not, which runs no exit
    handler: ``multiprocessing`` ends its ``fork`` and ``forkserver`` children so, and
    plain ``os.fork`` code does it to keep the parent's exit handlers and buffers out of
    the child. So in a forked child ``os._exit`` is wrapped (once: a grandchild inherits
    it), to drain as ``atexit`` would. Logging calls are untouched.
    """
    global _exit_without_draining  # noqa: PLW0603 - set once per process lineage
    for handler in list(_live_handlers):
        handler._after_fork_in_child()
    if _exit_without_draining is None:
        _exit_without_draining = os._exit
        os._exit = _exit_after_draining
    _drain_multiprocessing_children()


def _exit_after_draining(status: int) -> NoReturn:
    """``os._exit`` in a forked child: write what the child queued, then exit at once.

    Waits as ``atexit`` does, at most ``flush_timeout`` per handler, and only for writers
    this child started; nothing else that ``os._exit`` skips is run.
    """
    try:
        _drain_at_exit()
    finally:
        assert _exit_without_draining is not None
        _exit_without_draining(status)


def _drain_multiprocessing_children(*, running_child: bool = False) -> None:
    """Ask ``multiprocessing`` to drain every child it starts, before the child ends.

    Its ``fork`` and ``forkserver`` children end with ``os._exit``, after running the
    finalizers registered with ``multiprocessing.util.Finalize``; but a child clears those
    it inherited (or registered before it began), and only then runs its "after fork"
    callbacks, which is where the drain is registered. Done when this module is imported
    into a process that has ``multiprocessing`` (a child importing its main module, say)
    and in each forked child (``multiprocessing`` is imported in whatever starts children,
    if not yet in this module's process); never imports ``multiprocessing`` itself.
    ``running_child``: the drain is also registered at once if this process is a child
    already past that point (this module imported by the code the child runs).
    """
    global _draining_multiprocessing_children  # noqa: PLW0603 - once per process lineage
    if _draining_multiprocessing_children or "multiprocessing.util" not in sys.modules:
        return
    import multiprocessing.util

    _draining_multiprocessing_children = True
    multiprocessing.util.register_after_fork(_drain_before_exit, _drain_before_exit)
    if running_child and multiprocessing.parent_process() is not None:
        _drain_before_exit(None)


def _drain_before_exit(_: object) -> None:
    import multiprocessing.util

    multiprocessing.util.Finalize(None, _drain_at_exit, exitpriority=_MULTIPROCESSING_EXIT_PRIORITY)


# Registered after ``logging`` registered ``logging.shutdown``, so it runs first: the queued
# records are written before ``shutdown`` flushes and closes the handlers.
atexit.register(_drain_at_exit)
if hasattr(os, "register_at_fork"):  # absent on Windows, which cannot fork
    os.register_at_fork(after_in_child=_reset_in_child)
_drain_multiprocessing_children(running_child=True)
