"""The log outputs: the in-memory ring buffer and the non-blocking handler with its sinks.

Formatting here is a plain ``logging.Formatter``, so these tests stand on their own; the
handlers take any formatter and prefer its ``format_bytes`` when it has one.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otel_resilience.logs._async_handler import NonBlockingHandler
from otel_resilience.logs._memory import LogEntry, RingBufferHandler
from otel_resilience.logs._sinks import FileSink, StreamSink

REPO = Path(__file__).resolve().parents[2]
MESSAGE_ONLY = logging.Formatter("%(message)s")


@pytest.fixture
def attach(request: pytest.FixtureRequest) -> Iterator[Attach]:
    """Attach a handler to a fresh, non-propagating logger; detach and close it afterwards."""
    attached: list[tuple[logging.Logger, logging.Handler]] = []

    def attach(handler: logging.Handler, name: str = "") -> logging.Logger:
        logger = logging.getLogger(f"test_log_outputs.{request.node.name}{name}")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(handler)
        attached.append((logger, handler))
        return logger

    yield attach
    for logger, handler in attached:
        logger.removeHandler(handler)
        handler.close()


class Attach(Protocol):
    def __call__(self, handler: logging.Handler, name: str = "") -> logging.Logger: ...


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


# --- the ring buffer ----------------------------------------------------------------------


def test_ring_buffer_keeps_the_newest_and_counts_the_evicted(attach: Attach) -> None:
    handler = RingBufferHandler(capacity=3)
    log = attach(handler)
    for number in range(5):
        log.info("record %d", number)
    assert len(handler) == 3
    assert handler.evicted == 2
    assert [entry.message for entry in handler.entries()] == ["record 2", "record 3", "record 4"]
    handler.clear()
    assert len(handler) == 0
    assert handler.evicted == 2  # clearing is not evicting
    assert bool(handler)  # an empty buffer is still a handler logging.shutdown must close


def test_ring_buffer_entries_are_small_and_immutable(attach: Attach) -> None:
    handler = RingBufferHandler(capacity=10, context_provider=lambda: {"tenant": "a", "job": 1})
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = attach(handler)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed %s", "job", extra={"job": 2, "user": "u"})
    (entry,) = handler.entries()
    assert entry.message == "failed job"
    assert entry.level == "ERROR"
    assert entry.levelno == logging.ERROR
    assert entry.logger == log.name
    assert entry.attributes == {"tenant": "a", "job": 2, "user": "u"}  # the record's win
    assert entry.formatted is not None
    assert entry.formatted.startswith("ERROR failed job")
    assert "ValueError: boom" in entry.formatted
    assert entry.timestamp == pytest.approx(time.time(), abs=60)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.message = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        entry.attributes["tenant"] = "b"  # type: ignore[index]
    assert not hasattr(entry, "__dict__")  # slots: no room for the record's baggage


def test_ring_buffer_without_formatter_keeps_no_line(attach: Attach) -> None:
    handler = RingBufferHandler()
    attach(handler).warning("plain")
    (entry,) = handler.entries()
    assert entry.formatted is None
    assert entry.attributes == {}
    assert (entry.trace_id, entry.span_id) == (None, None)


def test_ring_buffer_queries(attach: Attach) -> None:
    handler = RingBufferHandler(capacity=100)
    app = attach(handler, ".app")
    base = app.name
    db = logging.getLogger(f"{base}.db")
    pool = logging.getLogger(f"{base}.db.pool")
    dbx = logging.getLogger(f"{base}.dbx")
    app.debug("starting")
    db.info("connected to primary")
    pool.warning("pool exhausted")
    dbx.error("other component failed")
    before_last = time.time()
    time.sleep(0.01)  # record timestamps have the clock's resolution
    db.critical("primary lost")

    def messages(**filters: object) -> list[str]:
        return [entry.message for entry in handler.entries(**filters)]  # type: ignore[arg-type]

    assert messages(level="WARNING") == [
        "pool exhausted",
        "other component failed",
        "primary lost",
    ]
    assert messages(level=logging.ERROR) == ["other component failed", "primary lost"]
    assert messages(level="warning") == messages(level=logging.WARNING)
    with pytest.raises(ValueError, match="unknown logging level"):
        handler.entries(level="LOUD")
    assert messages(logger=f"{base}.db") == [
        "connected to primary",
        "pool exhausted",
        "primary lost",
    ]
    assert messages(logger=f"{base}.db.pool") == ["pool exhausted"]
    assert len(messages(logger="root")) == len(messages(logger="")) == len(handler) == 5
    assert messages(contains="primary") == ["connected to primary", "primary lost"]
    assert messages(since=before_last) == ["primary lost"]
    assert messages(limit=2) == ["other component failed", "primary lost"]  # the newest two
    assert messages(logger=f"{base}.db", level="INFO", contains="primary", limit=1) == [
        "primary lost"
    ]
    assert messages(limit=0) == []


def test_ring_buffer_reads_the_current_span(attach: Attach) -> None:
    handler = RingBufferHandler()
    log = attach(handler)
    tracer = TracerProvider().get_tracer("test_log_outputs")
    log.info("outside")
    with tracer.start_as_current_span("work") as span:
        log.info("inside")
        context = span.get_span_context()
    with tracer.start_as_current_span("other"):
        log.info("elsewhere")
    trace_hex = format(context.trace_id, "032x")
    outside, inside, elsewhere = handler.entries()
    assert (outside.trace_id, outside.span_id) == (None, None)
    assert inside.trace_id == trace_hex
    assert inside.span_id == format(context.span_id, "016x")
    assert elsewhere.trace_id not in (None, trace_hex)
    assert handler.entries(trace_id=trace_hex) == [inside]
    assert handler.entries(trace_id=trace_hex.upper()) == [inside]
    assert handler.entries(trace_id=context.trace_id) == [inside]


def test_ring_buffer_is_thread_safe(attach: Attach) -> None:
    handler = RingBufferHandler(capacity=500)
    log = attach(handler)
    threads_count, per_thread = 8, 1000
    start = threading.Barrier(threads_count)

    def produce(thread: int) -> None:
        start.wait()
        for number in range(per_thread):
            log.info("thread %d record %d", thread, number)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(handler) == 500
    assert handler.evicted == threads_count * per_thread - 500
    assert handler.errors == 0
    kept = handler.entries()
    for index in range(threads_count):  # each thread's records stay in its order
        numbers = [
            int(e.message.split()[-1]) for e in kept if e.message.startswith(f"thread {index} ")
        ]
        assert numbers == sorted(numbers)


def test_ring_buffer_never_raises_into_the_program(
    attach: Attach, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken_context() -> dict[str, object]:
        raise RuntimeError("context API bug")

    handler = RingBufferHandler(context_provider=broken_context)
    log = attach(handler)
    log.info("kept without its context")
    log.info("%d apples", "three")  # a formatting bug in the program's own call
    assert [entry.message for entry in handler.entries()] == ["kept without its context"]
    assert handler.errors == 2
    assert capsys.readouterr().err == ""


def test_ring_buffer_rejects_a_useless_capacity() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RingBufferHandler(capacity=0)


def test_log_entry_defaults() -> None:
    entry = LogEntry(timestamp=0.0, level="INFO", levelno=20, logger="x", message="m")
    assert entry.attributes == {}
    assert entry.formatted is None


# --- the non-blocking handler -------------------------------------------------------------


class GatedSink:
    """Collects lines; ``write`` waits for ``gate`` so the writer can be held mid-write."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.lines: list[str] = []
        self.closed = 0

    def write(self, data: bytes) -> None:
        self.entered.set()
        assert self.gate.wait(timeout=30), "test gate never opened"
        self.lines.extend(data.decode().splitlines())

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed += 1


def test_writes_everything_in_order_from_one_thread(tmp_path: Path, attach: Attach) -> None:
    path = tmp_path / "out.log"
    handler = NonBlockingHandler(FileSink(path), formatter=MESSAGE_ONLY, max_queue=20_000)
    log = attach(handler)
    for number in range(5000):
        log.info("record %d", number)
    handler.flush()
    assert read_lines(path) == [f"record {n}" for n in range(5000)]
    assert handler.written == 5000
    assert handler.dropped == 0
    assert handler.pending == 0


def test_every_record_from_four_threads_is_written(tmp_path: Path, attach: Attach) -> None:
    path = tmp_path / "out.log"
    handler = NonBlockingHandler(FileSink(path), formatter=MESSAGE_ONLY, max_queue=50_000)
    log = attach(handler)
    start = threading.Barrier(4)

    def produce(thread: int) -> None:
        start.wait()
        for number in range(2500):
            log.info("thread %d record %d", thread, number)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.close()
    lines = read_lines(path)
    assert sorted(lines) == sorted(f"thread {t} record {n}" for t in range(4) for n in range(2500))
    for index in range(4):
        numbers = [int(line.split()[-1]) for line in lines if line.startswith(f"thread {index} ")]
        assert numbers == list(range(2500))


@pytest.mark.timeout(60)
def test_flushes_amid_heavy_logging_each_return_with_what_came_before_written(
    tmp_path: Path, attach: Attach
) -> None:
    """Flush markers travel in the queue among records: each is found in whatever batch the
    writer takes it in, and no record is lost around it."""
    path = tmp_path / "out.log"
    handler = NonBlockingHandler(FileSink(path), formatter=MESSAGE_ONLY, max_queue=200_000)
    log = attach(handler)
    written_at_flush: list[tuple[int, int]] = []
    done = threading.Event()

    def produce(thread: int) -> None:
        for number in range(20_000):
            log.info("thread %d record %d", thread, number)

    def flush_repeatedly() -> None:
        while not done.is_set():
            before = handler.written
            handler.flush(timeout=10)
            written_at_flush.append((before, handler.written))

    producers = [threading.Thread(target=produce, args=(t,)) for t in range(3)]
    flusher = threading.Thread(target=flush_repeatedly)
    flusher.start()
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    done.set()
    flusher.join()
    handler.close()
    lines = read_lines(path)
    assert len(lines) == 60_000
    expected = (f"thread {t} record {n}" for t in range(3) for n in range(20_000))
    assert sorted(lines) == sorted(expected)
    assert handler.dropped == 0
    assert len(written_at_flush) > 1
    assert all(after >= before for before, after in written_at_flush)


@pytest.mark.timeout(10)
def test_overflow_drops_instead_of_blocking(
    attach: Attach, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = GatedSink()
    sink.gate.clear()  # the writer blocks in its first write until the test opens the gate
    drops: list[int] = []
    handler = NonBlockingHandler(
        sink, formatter=MESSAGE_ONLY, max_queue=100, on_drop=drops.append, report_interval=0
    )
    log = attach(handler)
    for number in range(1000):  # would hang here (and time out) if emit waited for the sink
        log.info("record %d", number)
    assert sink.entered.wait(timeout=5)
    assert handler.dropped > 0
    assert handler.pending <= 100
    sink.gate.set()
    handler.close()
    assert handler.written + handler.dropped == 1000
    assert len(sink.lines) == handler.written
    numbers = [int(line.split()[-1]) for line in sink.lines]
    assert numbers == sorted(numbers)  # what was kept is in order
    assert sum(drops) == handler.dropped  # the metric hook saw every drop
    warning = capsys.readouterr().err
    assert "log records dropped (queue full: " in warning
    assert "max_queue=100" in warning


def test_queued_records_are_written_at_exit(tmp_path: Path) -> None:
    path = tmp_path / "exit.log"
    script = textwrap.dedent(
        """
        import atexit, logging, sys

        log = logging.getLogger("exit")

        def count_lines():
            with open(sys.argv[1]) as file:
                return sum(1 for _ in file)

        def late_hook():
            before = count_lines()
            log.info("logged by a later exit hook after %d lines", before)
            print(count_lines() - before)  # 1: written at once, there is no writer any more

        # Registered before the handler's module is imported, so it runs after the drain.
        atexit.register(late_hook)

        import time
        from otel_resilience.logs._async_handler import NonBlockingHandler
        from otel_resilience.logs._sinks import FileSink

        class SlowSink(FileSink):  # so that much is still queued when the program ends
            def write_records(self, records):
                time.sleep(0.0005)
                super().write_records(records)

        handler = NonBlockingHandler(
            SlowSink(sys.argv[1]),
            formatter=logging.Formatter("%(message)s"),
            max_queue=20_000,
            max_batch=10,
            flush_timeout=60,
        )
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
        for number in range(10_000):
            log.info("record %d", number)
        assert handler.pending > 1000
        # no close(), no flush(): the exit must write what is queued
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == "1\n"
    lines = read_lines(path)
    assert lines[:-1] == [f"record {n}" for n in range(10_000)]
    assert lines[-1] == "logged by a later exit hook after 10000 lines"


def test_a_stuck_sink_does_not_hold_the_exit() -> None:
    script = textwrap.dedent(
        """
        import logging, threading
        from otel_resilience.logs._async_handler import NonBlockingHandler

        class StuckSink:
            def write(self, data):
                threading.Event().wait()  # a pipe nobody reads

            def flush(self):
                pass

            def close(self):
                raise AssertionError("closed under its stuck writer")

        handler = NonBlockingHandler(StuckSink(), flush_timeout=0.2)
        log = logging.getLogger("stuck")
        log.addHandler(handler)
        log.propagate = False
        for number in range(100):
            log.warning("record %d", number)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,  # the exit would hang here without the bound
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "log records not written when exiting" in result.stderr
    assert "Traceback" not in result.stderr


class PerProcessSink:
    """Appends to ``<pid>.log``; in the parent process only, waits for the test's gate."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.parent = os.getpid()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def write(self, data: bytes) -> None:
        if os.getpid() == self.parent:
            self.entered.set()
            assert self.gate.wait(timeout=30), "test gate never opened"
        with open(self.directory / f"{os.getpid()}.log", "ab") as file:
            file.write(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.timeout(60)
# Python 3.12+ warns about forking a process with threads; here that is the point.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_starts_clean(tmp_path: Path, attach: Attach) -> None:
    sink = PerProcessSink(tmp_path)
    handler = NonBlockingHandler(sink, formatter=MESSAGE_ONLY)
    log = attach(handler)
    for number in range(50):
        log.info("parent %d", number)
    handler.flush()
    assert handler.written == 50
    # Hold the writer inside a write with more records queued behind it, then fork.
    sink.gate.clear()
    sink.entered.clear()
    log.info("parent 50")
    assert sink.entered.wait(timeout=5)
    for number in range(51, 100):
        log.info("parent %d", number)
    assert handler.pending == 49
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            fresh = (handler.written, handler.dropped, handler.pending) == (0, 0, 0)
            for number in range(20):
                log.info("child %d", number)
            handler.flush()
            status = 0 if fresh and handler.written == 20 and handler.dropped == 0 else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert handler.pending == 49  # the parent is untouched by the child's reset
    sink.gate.set()
    handler.flush()
    assert read_lines(tmp_path / f"{pid}.log") == [f"child {n}" for n in range(20)]
    assert read_lines(tmp_path / f"{os.getpid()}.log") == [f"parent {n}" for n in range(100)]
    assert (handler.written, handler.dropped) == (100, 0)


def all_files(path: Path) -> list[Path]:
    """The rotated set, oldest first: path.N ... path.1, path."""
    backups = sorted(path.parent.glob(f"{path.name}.*"), key=lambda p: -int(p.suffix[1:]))
    return [*backups, path]


def test_size_rotation_keeps_records_whole(tmp_path: Path, attach: Attach) -> None:
    path = tmp_path / "size.log"
    handler = NonBlockingHandler(
        FileSink(path, max_bytes=1000, backup_count=1000), formatter=MESSAGE_ONLY
    )
    log = attach(handler)
    for number in range(2000):
        log.info("record %04d %s", number, "x" * (number % 17))
    handler.close()
    files = all_files(path)
    assert len(files) > 10
    lines: list[str] = []
    for file in files:
        data = file.read_bytes()
        assert 0 < len(data) <= 1000
        assert data.endswith(b"\n")
        lines.extend(data.decode().splitlines())
    assert lines == [f"record {n:04d} {'x' * (n % 17)}" for n in range(2000)]


def test_size_rotation_keeps_backup_count_files(tmp_path: Path) -> None:
    path = tmp_path / "size.log"
    sink = FileSink(path, max_bytes=100, backup_count=2)
    records = [f"record {n:03d}\n".encode() for n in range(100)]  # 11 bytes each
    for start in range(0, 100, 7):
        sink.write_records(records[start : start + 7])
    sink.write(b"y" * 150 + b"\n")  # bigger than max_bytes: alone in its own file
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["size.log", "size.log.1", "size.log.2"]
    assert path.read_bytes() == b"y" * 150 + b"\n"
    kept = (tmp_path / "size.log.2").read_text() + (tmp_path / "size.log.1").read_text()
    assert kept.splitlines() == [f"record {n:03d}" for n in range(100)][-len(kept.splitlines()) :]
    assert sink.rotation_errors == 0


def test_a_failed_rotation_keeps_appending(tmp_path: Path) -> None:
    path = tmp_path / "stuck.log"
    (tmp_path / "stuck.log.1").mkdir()  # the backup's name is taken: the rename must fail
    (tmp_path / "stuck.log.1" / "keep").touch()
    sink = FileSink(path, max_bytes=50, backup_count=1)
    for number in range(10):
        sink.write(f"record {number:03d}\n".encode())  # 11 bytes
    sink.close()
    assert read_lines(path) == [f"record {n:03d}" for n in range(10)]
    assert sink.rotation_errors == 2  # retried after another max_bytes, not at every record


def test_time_rotation(tmp_path: Path, attach: Attach) -> None:
    now = [1_000_000.0]
    path = tmp_path / "time.log"
    handler = NonBlockingHandler(
        FileSink(path, when="S", interval=2, clock=lambda: now[0]), formatter=MESSAGE_ONLY
    )
    log = attach(handler)

    def log_at(seconds: float, message: str) -> None:
        now[0] = 1_000_000.0 + seconds
        log.info(message)
        handler.flush()

    log_at(0, "a")
    log_at(1, "b")  # within the first 2 s
    log_at(2.5, "c")  # rotated: a and b go to time.log.1
    log_at(3.9, "d")
    log_at(60, "e")  # many idle intervals later: one rotation, and the schedule catches up
    log_at(61, "f")
    log_at(62, "g")
    handler.close()
    assert [read_lines(file) for file in all_files(path)] == [
        ["a", "b"],
        ["c", "d"],
        ["e", "f"],
        ["g"],
    ]


def test_midnight_rotation(tmp_path: Path) -> None:
    day = datetime.datetime(2024, 3, 5, 23, 59, 58)
    now = [day.timestamp()]
    path = tmp_path / "daily.log"
    sink = FileSink(path, when="midnight", clock=lambda: now[0])
    sink.write(b"tuesday\n")
    now[0] = (day + datetime.timedelta(seconds=1)).timestamp()
    sink.write(b"still tuesday\n")
    now[0] = (day + datetime.timedelta(seconds=3)).timestamp()
    sink.write(b"wednesday\n")
    sink.close()
    assert read_lines(tmp_path / "daily.log.1") == ["tuesday", "still tuesday"]
    assert read_lines(path) == ["wednesday"]


def test_file_sink_rejects_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="when"):
        FileSink(tmp_path / "x.log", when="fortnight")
    with pytest.raises(ValueError, match="max_bytes"):
        FileSink(tmp_path / "x.log", max_bytes=0)


def test_close_is_idempotent_and_later_records_are_counted(attach: Attach) -> None:
    sink = GatedSink()
    handler = NonBlockingHandler(sink, formatter=MESSAGE_ONLY)
    log = attach(handler)
    log.info("before close")
    handler.close()
    handler.close()
    log.info("after close")  # neither raises nor is written
    handler.flush()
    assert sink.lines == ["before close"]
    assert sink.closed == 1
    assert handler.dropped == 1


def test_a_failing_sink_does_not_stop_the_writer(
    attach: Attach, capsys: pytest.CaptureFixture[str]
) -> None:
    class FailingSink(GatedSink):
        def write(self, data: bytes) -> None:
            if b"boom" in data:
                raise OSError("disk full")
            super().write(data)

    sink = FailingSink()
    handler = NonBlockingHandler(sink, formatter=MESSAGE_ONLY, report_interval=0)
    log = attach(handler)
    log.info("first")
    handler.flush()
    log.info("boom")
    handler.flush()
    log.info("%d apples", "three")  # the program's formatting bug: dropped, not raised
    log.info("second")
    handler.close()
    assert sink.lines == ["first", "second"]
    assert handler.written == 2
    assert handler.dropped == 2
    err = capsys.readouterr().err
    assert "write failed: 1" in err
    assert "OSError('disk full')" in err
    assert "Traceback" not in err


def test_format_bytes_is_preferred(attach: Attach) -> None:
    class BytesFormatter(logging.Formatter):
        def format_bytes(self, record: logging.LogRecord) -> bytes:
            return f"<{record.getMessage()}>\n".encode()

    written: list[bytes] = []
    handler = NonBlockingHandler(written.append, formatter=BytesFormatter())
    log = attach(handler)
    log.info("hello")
    handler.close()
    assert b"".join(written) == b"<hello>\n"


@pytest.mark.parametrize("binary", [True, False])
def test_stream_sinks(binary: bool, attach: Attach) -> None:
    stream: io.BytesIO | io.StringIO = io.BytesIO() if binary else io.StringIO()
    handler = NonBlockingHandler(stream, formatter=MESSAGE_ONLY)  # wrapped in a StreamSink
    assert isinstance(handler.sink, StreamSink)
    log = attach(handler)
    log.info("caf\u00e9")
    handler.close()
    assert not stream.closed  # the stream belongs to whoever opened it
    value = stream.getvalue()
    assert (value.decode() if isinstance(value, bytes) else value) == "caf\u00e9\n"


def test_handler_rejects_what_is_not_a_sink() -> None:
    with pytest.raises(TypeError, match="sink"):
        NonBlockingHandler(42)  # type: ignore[arg-type]


def test_the_writer_is_one_named_daemon_thread(attach: Attach) -> None:
    handler = NonBlockingHandler(GatedSink(), formatter=MESSAGE_ONLY)
    log = attach(handler)
    before = {t for t in threading.enumerate() if t.name == "otel-resilience-log-writer"}
    for number in range(100):
        log.info("record %d", number)
    handler.flush()
    writers = {t for t in threading.enumerate() if t.name == "otel-resilience-log-writer"} - before
    assert len(writers) == 1
    assert all(writer.daemon for writer in writers)


def _drop_secrets(record: logging.LogRecord) -> bool:
    return "secret" not in record.getMessage()


def test_filters_on_the_non_blocking_handler_apply(attach: Attach) -> None:
    written: list[bytes] = []
    handler = NonBlockingHandler(written.append, formatter=MESSAGE_ONLY)
    handler.addFilter(_drop_secrets)

    class Rewrite(logging.Filter):  # returns a replacement record (honoured on 3.12+)
        def filter(self, record: logging.LogRecord) -> bool:
            record.msg = record.msg.upper()
            return True

    handler.addFilter(Rewrite())
    log = attach(handler)
    log.info("kept")
    log.info("a secret")
    handler.close()
    assert b"".join(written) == b"KEPT\n"


def test_a_late_record_after_close_is_counted_not_lost_silently(attach: Attach) -> None:
    written: list[bytes] = []
    handler = NonBlockingHandler(written.append, formatter=MESSAGE_ONLY)
    log = attach(handler)
    log.info("before")
    handler.close()
    log.info("after close")
    assert b"".join(written) == b"before\n"
    assert handler.dropped == 1
    assert handler.pending == 0


def test_a_busy_writer_is_not_signalled_per_record(attach: Attach) -> None:
    sink = GatedSink()
    handler = NonBlockingHandler(sink, formatter=MESSAGE_ONLY, max_queue=10_000)
    log = attach(handler)
    log.info("first")
    handler.flush()
    sink.gate.clear()  # the writer is held inside a write: not idle
    log.info("held")
    for number in range(1000):
        log.info("queued %d", number)
    assert not handler._idle
    sink.gate.set()
    handler.flush()
    assert sink.lines == ["first", "held", *(f"queued {n}" for n in range(1000))]


def test_a_lone_record_is_written_without_a_flush(attach: Attach) -> None:
    sink = GatedSink()
    handler = NonBlockingHandler(sink, formatter=MESSAGE_ONLY, linger=0.05)
    log = attach(handler)
    for round_number in range(3):  # the writer lingers, then sleeps until signalled
        log.info("lone %d", round_number)
        deadline = time.monotonic() + 30
        while len(sink.lines) <= round_number and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # past the linger: the next record must wake a sleeping writer
    assert sink.lines == ["lone 0", "lone 1", "lone 2"]


def test_linger_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="linger"):
        NonBlockingHandler(lambda data: None, linger=-1)
