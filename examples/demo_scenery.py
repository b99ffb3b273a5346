"""The demo's scenery: flaky local services and a live view, none of it part of a real program.

``demo.py`` is the program a newcomer should read: plain ``requests``, ``httpx`` and DB-API
calls. Everything here exists only to make those calls fail on a schedule and to show,
while it runs, what the distribution does about it:

- ``FlakyService``: an HTTP service on 127.0.0.1 that is sometimes flaky and sometimes down,
  and counts the requests that reach it (so retries can be told from calls);
- ``DatabaseLock``: a maintenance job in another, uninstrumented process that holds an
  exclusive lock on the demo's database for a while (SQLite's ``BEGIN EXCLUSIVE``, or
  PostgreSQL's ``LOCK TABLE``), so the program's writes time out the way they would on a
  real busy database;
- ``LiveView``: breaker states and call outcomes, redrawn in place on a terminal, or as
  plain periodic lines when the output is a file or a pipe.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Literal

from otel_resilience import CircuitBreaker, StateTransition, default_registry

Mode = Literal["flaky", "healthy", "down"]

# --------------------------------------------------------------------------- HTTP service


class FlakyService:
    """An HTTP service on 127.0.0.1: healthy, flaky (one 503 in ``flaky_every``) or down (503s).

    A flaky service fails one request in a fixed number rather than a random share, so that
    a retry always succeeds and only the outage opens the breaker, run after run. It answers
    503 rather than refusing connections while down, because a released port could be
    taken by another process before the service comes back.
    """

    def __init__(self, flaky_every: int = 7, seed: int = 7) -> None:
        self.mode: Mode = "flaky"
        self.flaky_every = flaky_every
        self._randomness = random.Random(seed)
        self._lock = threading.Lock()
        self._requests = 0
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="flaky-service", daemon=True
        )

    @property
    def url(self) -> str:
        """The service's base URL, ``http://127.0.0.1:PORT``, which also names its breaker."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests_received(self) -> int:
        """Requests that reached the service: calls sent plus the distribution's retries."""
        with self._lock:
            return self._requests

    def answer(self) -> int:
        """The status of the next response; sleeps a little on successes, like real work."""
        with self._lock:
            self._requests += 1
            failing = self.mode == "down" or (
                self.mode == "flaky" and self._requests % self.flaky_every == 0
            )
            delay = self._randomness.uniform(0.0, 0.05)
        if failing:
            return 503
        time.sleep(delay)
        return 200

    def __enter__(self) -> FlakyService:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(service: FlakyService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status = service.answer()
            body = b"ok\n" if status == 200 else b"unavailable\n"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep the demo's output about the client."""

    return Handler


class _QuietServer(ThreadingHTTPServer):
    """A client hanging up mid-answer is not worth a traceback in the demo's output."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- database lock

# Runs with ``python -I`` (no PYTHONPATH, so not under the launcher): the lock holder is
# another program, not part of the demo, and its statements must not share the demo's
# breaker. The target (a path or a DSN, which may hold a password) comes on stdin, never
# on the command line where `ps` would show it.
_LOCK_JOB = """
import sys
kind, table = sys.argv[1], sys.argv[2]
target = sys.stdin.readline().strip()
if kind == "sqlite":
    import sqlite3
    connection = sqlite3.connect(target, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
else:
    import psycopg
    connection = psycopg.connect(target, connect_timeout=5)
    connection.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
print("locked", flush=True)
sys.stdin.read()
connection.rollback()
connection.close()
"""


class DatabaseLock:
    """A maintenance job in another process that locks the demo's table while it runs."""

    def __init__(self, kind: Literal["sqlite", "postgresql"], target: str, table: str) -> None:
        self._kind = kind
        self._target = target
        self._table = table
        self._process: subprocess.Popen[str] | None = None

    @property
    def held(self) -> bool:
        return self._process is not None

    def acquire(self, timeout: float = 10.0) -> bool:
        """Start the job and wait until it holds the lock; False (job stopped) if it cannot."""
        process = subprocess.Popen(
            [sys.executable, "-I", "-c", _LOCK_JOB, self._kind, self._table],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdin is not None and process.stdout is not None
        self._process = process
        try:
            process.stdin.write(self._target + "\n")
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], timeout)
            if ready and process.stdout.readline().strip() == "locked":
                return True
        except OSError:
            pass
        self.release()
        return False

    def release(self) -> None:
        """End the job's transaction (closing its stdin) and wait for it, bounded."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# --------------------------------------------------------------------------- live view

Outcome = Literal["ok", "retried", "failed", "rejected"]
_SYMBOLS: dict[Outcome, str] = {"ok": ".", "retried": "r", "failed": "x", "rejected": "-"}
_COLOURS: dict[str, str] = {
    "closed": "32",
    "half_open": "33",
    "open": "31;1",
    "forced_open": "31;1",
    "disabled": "2",
    "x": "31",
    "-": "33",
    "r": "36",
}
LEGEND = ". ok   r ok after retries   x failed   - rejected by an open breaker (nothing sent)"


@dataclass
class _Lane:
    """One row of call outcomes (HTTP or database)."""

    label: str
    outcomes: list[Outcome] = field(default_factory=list)


class LiveView:
    """Breaker states and call outcomes while the demo runs.

    On a terminal the board is redrawn in place (cursor up, clear line); elsewhere (a pipe,
    a file, a test) it prints a status line about once a second and each breaker transition
    as it happens, so the output reads as a log.
    """

    def __init__(self, stream: IO[str], *, total_calls: int, live: bool, width: int = 80) -> None:
        self._stream = stream
        self._total = total_calls
        self._live = live
        self._width = width
        self._started = time.monotonic()
        self._lock = threading.RLock()
        self._lanes = {"http": _Lane("HTTP"), "db": _Lane("DB  ")}
        self._phase = ""
        self._call = 0
        self._drawn_lines = 0
        self._last_plain = -1.0
        self.transitions: list[tuple[float, StateTransition]] = []
        self._watched: set[str] = set()

    # -- what happens

    def watch_new_breakers(self) -> None:
        """Listen to every breaker the distribution has made so far (they appear on first use)."""
        for breaker in default_registry().breakers():
            if breaker.name not in self._watched:
                self._watched.add(breaker.name)
                breaker.add_listener(self)

    def on_transition(self, event: StateTransition) -> None:
        """A breaker listener: keep every state change, and print it at once in plain mode."""
        with self._lock:
            self.transitions.append((self.elapsed, event))
            if not self._live:
                self._print(f"  breaker {event.breaker}: {_describe(event)}")

    def phase(self, call: int, description: str) -> None:
        """Announce what the scenery does from this call on."""
        with self._lock:
            self._phase = description
            if not self._live:
                self._print(f"-- call {call}: {description}")
            self.draw(force=True)

    def record(self, lane: Literal["http", "db"], call: int, outcome: Outcome) -> None:
        with self._lock:
            self._call = max(self._call, call)
            self._lanes[lane].outcomes.append(outcome)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    # -- drawing

    def draw(self, *, force: bool = False) -> None:
        """Redraw the board (live), or print a status line if a second has passed (plain)."""
        with self._lock:
            if self._live:
                self._redraw()
            elif force or self.elapsed - self._last_plain >= 1.0:
                self._last_plain = self.elapsed
                self._print(self._status_line())

    def finish(self) -> None:
        """Leave the final board on screen (live) or print a last status line (plain)."""
        with self._lock:
            if self._live:
                self._redraw()
            else:
                self._print(self._status_line())

    def _status_line(self) -> str:
        breakers = "; ".join(
            f"{b.name} {b.state} ({_counts(b)})" for b in default_registry().breakers()
        )
        breakers = breakers or "no breakers yet"
        return f"[{self.elapsed:5.1f}s] call {self._call}/{self._total}: {breakers}"

    def _board(self) -> list[str]:
        lines = [
            self._paint("1", "otel-resilience demo")
            + f"   call {self._call}/{self._total}   {self.elapsed:4.1f} s",
            f"now: {self._phase}",
            "",
            f"  {'breaker':<46} {'state':<11} {'ok':>5} {'failed':>7} {'rejected':>9}",
        ]
        for breaker in default_registry().breakers():
            stats = breaker.stats
            lines.append(
                f"  {_shorten(breaker.name, 46):<46} "
                + self._paint(_COLOURS.get(breaker.state, "0"), f"{breaker.state:<11}")
                + f" {stats.successes:>5} {stats.failures:>7} {stats.rejections:>9}"
            )
        lines.append("")
        for lane in self._lanes.values():
            recent = lane.outcomes[-self._width :]
            strip = "".join(
                self._paint(_COLOURS.get(_SYMBOLS[outcome], "32"), _SYMBOLS[outcome])
                for outcome in recent
            )
            lines.append(f"  {lane.label}  {strip}")
        lines.append(f"        {LEGEND}")
        lines.append("")
        lines.append("  recent transitions:")
        for at, event in self.transitions[-5:]:
            lines.append(f"  {at:5.1f} s  {_shorten(event.breaker, 40)}: {_describe(event)}")
        return lines

    def _redraw(self) -> None:
        lines = self._board()
        out = []
        if self._drawn_lines:
            out.append(f"\x1b[{self._drawn_lines}F")  # to the start of the board's first line
        out.extend(f"\x1b[2K{line}\n" for line in lines)
        self._stream.write("".join(out))
        self._stream.flush()
        self._drawn_lines = len(lines)

    def _paint(self, colour: str, text: str) -> str:
        return f"\x1b[{colour}m{text}\x1b[0m" if self._live else text

    def _print(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()


def _describe(event: StateTransition) -> str:
    return f"{event.from_state} -> {event.to_state} ({event.reason})"


def _counts(breaker: CircuitBreaker) -> str:
    stats = breaker.stats
    return f"{stats.successes} ok, {stats.failures} failed, {stats.rejections} rejected"


def _shorten(text: str, width: int) -> str:
    """Keep both ends, the scheme and the file or port, which tell breakers apart."""
    if len(text) <= width:
        return text
    head = min(12, width // 3)
    return text[:head] + "..." + text[-(width - head - 3) :]


def stdout_is_terminal() -> bool:
    """Whether in-place redrawing will look right: a terminal that understands ANSI codes."""
    return sys.stdout.isatty() and os.environ.get("TERM", "") not in ("", "dumb")


# --------------------------------------------------------------------------- reading back


def scrape(url: str, wanted: tuple[str, ...], timeout: float = 5.0) -> list[str]:
    """The endpoint's series whose names start with ``wanted``, without scope labels.

    Only non-zero samples are kept, and the ``otel_scope_*`` labels (the same on every
    series) are left out so that each line shows what tells the series apart.
    """
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text: str = response.read().decode()
    lines = []
    for line in text.splitlines():
        if not line.startswith(wanted):
            continue
        series, _, value = line.rpartition(" ")
        if value in ("0", "0.0"):
            continue
        name, _, labels = series.partition("{")
        kept = [
            label
            for label in labels.rstrip("}").split(",")
            if label and not label.startswith("otel_scope_") and not label.endswith('=""')
        ]
        lines.append(f"{name}{{{','.join(kept)}}} {value}")
    return lines


def last_lines(path: str, count: int, containing: str) -> Iterator[str]:
    """The last ``count`` lines of a text file that contain ``containing``; none if unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            matching = [line.rstrip("\n") for line in file if containing in line]
    except OSError:
        return iter(())
    return iter(matching[-count:])
