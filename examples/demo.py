"""The first thing to run: a flaky upstream service, plain clients calling it, what we see.

Run it with ``make demo``, which runs it under ``opentelemetry-instrument`` with a quick
breaker (``OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES=3``,
``OTEL_RESILIENCE_BREAKER_RECOVERY_TIMEOUT=0.5``), or by hand::

    opentelemetry-instrument python examples/demo.py --calls 60

It starts a small HTTP service on 127.0.0.1 that answers 503 to some requests, is slow on
others and goes down completely for a while, and calls it in a loop with plain ``requests``
and ``httpx``, written the way any program would: no breaker, retry or telemetry code. The
distribution adds all of it; the demo then shows the endpoint's breaker opening, probing and
closing, and prints what was recorded, read back from the Prometheus endpoint served by
default. It needs no collector; set ``OTEL_EXPORTER_OTLP_ENDPOINT`` to send traces, metrics
and logs to one instead.

Each outcome is also written to a database with plain DB-API code: a SQLite file in a
temporary directory by default, or PostgreSQL with ``--dsn "host=127.0.0.1 dbname=test
user=postgres"`` (through psycopg 3). Those statements get client spans and
``db.client.operation.duration`` too, and PostgreSQL its own breaker.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import requests

from otel_resilience import StateTransition, default_registry, installed_telemetry


class FlakyService(BaseHTTPRequestHandler):
    """Answers 503 to about a fifth of the requests (all while down), up to 80 ms each."""

    protocol_version = "HTTP/1.1"
    failure_ratio = 0.2
    down = threading.Event()
    randomness = random.Random(7)

    def do_GET(self) -> None:
        if self.down.is_set() or self.randomness.random() < self.failure_ratio:
            status = 503
        else:
            time.sleep(self.randomness.uniform(0.0, 0.08))
            status = 200
        body = b"ok\n" if status == 200 else b"unavailable\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the demo's output about the client."""


class QuietServer(ThreadingHTTPServer):
    """The flaky service's server: a client hanging up mid-answer is not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class PrintTransitions:
    """A breaker listener: show each state change as it happens."""

    def on_transition(self, event: StateTransition) -> None:
        print(f"  breaker {event.breaker}: {event.from_state} -> {event.to_state} ({event.reason})")


def call(url: str, number: int, client: httpx.Client) -> str:
    """One GET, alternating between requests and httpx, as a program would write it."""
    try:
        if number % 2:
            return f"httpx {client.get(url).status_code}"
        return f"requests {requests.get(url, timeout=5).status_code}"
    except (requests.exceptions.ConnectionError, httpx.TransportError) as error:
        # The breaker's rejection is also the library's own connection error, so this
        # ordinary except clause catches it; nothing was sent.
        return f"{type(error).__name__}"


@contextmanager
def outcome_log(dsn: str | None) -> Iterator[tuple[Any, str]]:
    """A DB-API connection to log outcomes in, and its placeholder style."""
    if dsn is None:
        with tempfile.TemporaryDirectory() as directory:
            connection: Any = sqlite3.connect(Path(directory) / "outcomes.db")
            try:
                yield connection, "?"
            finally:
                connection.close()
        return
    import psycopg  # only when asked for: SQLite needs nothing installed

    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection, "%s"


def log_outcomes(dsn: str | None, outcomes: list[tuple[int, str]]) -> list[tuple[str, int]]:
    """Write every call's outcome, then count them by outcome, as any program would."""
    with outcome_log(dsn) as (connection, mark):
        cursor = connection.cursor()
        cursor.execute("CREATE TEMPORARY TABLE demo_calls (number INTEGER, outcome TEXT)")
        cursor.executemany(f"INSERT INTO demo_calls VALUES ({mark}, {mark})", outcomes)
        cursor.execute("SELECT outcome, COUNT(*) FROM demo_calls GROUP BY outcome ORDER BY outcome")
        counted: list[tuple[str, int]] = cursor.fetchall()
    return counted


def read_back(prometheus_url: str) -> list[str]:
    """The demo's series as Prometheus scrapes them: durations, breaker calls, retries."""
    with urllib.request.urlopen(prometheus_url, timeout=5) as response:
        text = response.read().decode()
    wanted = (
        "http_client_request_duration_seconds_count",
        "db_client_operation_duration_seconds_count",
        "resilience_circuit_breaker_calls_total",
        "resilience_circuit_breaker_state",
        "resilience_retry_attempts_total",
    )
    return [line for line in text.splitlines() if line.startswith(wanted)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60, help="how many calls to make")
    parser.add_argument(
        "--dsn", help="log outcomes to this PostgreSQL database instead of a SQLite file"
    )
    arguments = parser.parse_args()

    telemetry = installed_telemetry()
    if telemetry is None:
        print("otel-resilience is not active: run this under `opentelemetry-instrument`.")
        return 1

    server = QuietServer(("127.0.0.1", 0), FlakyService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    url = f"{endpoint}/inventory"
    down_from, down_until = arguments.calls // 4, arguments.calls // 2
    print(f"flaky upstream service on {url}; down for calls {down_from} to {down_until}")
    default_registry().get(endpoint).add_listener(PrintTransitions())

    outcomes: list[tuple[int, str]] = []
    with httpx.Client(timeout=5) as client:
        for number in range(arguments.calls):
            if number == down_from:
                FlakyService.down.set()
            elif number == down_until:
                FlakyService.down.clear()
            outcomes.append((number, call(url, number, client)))
            time.sleep(0.08)
    server.shutdown()
    counted = log_outcomes(arguments.dsn, outcomes)
    where = "PostgreSQL" if arguments.dsn else "a SQLite file"
    print(
        f"{arguments.calls} calls, counted in {where}: "
        + ", ".join(f"{count} x {outcome}" for outcome, count in counted)
    )
    breaker = default_registry().get(endpoint)
    stats = breaker.stats
    print(
        f"breaker {breaker.name}: {breaker.state}; {stats.successes} successes, "
        f"{stats.failures} failures, {stats.rejections} rejected"
    )

    print(f"exporters: {telemetry.exporters}")
    if telemetry.prometheus_url is None:
        print("no Prometheus endpoint in this process (see the warning above, if any)")
        return 0
    print(f"metrics at {telemetry.prometheus_url}; what it serves now:")
    for line in read_back(telemetry.prometheus_url):
        print(f"  {line}")
    print("point Prometheus at that endpoint, or set OTEL_EXPORTER_OTLP_ENDPOINT for a collector")
    return 0


if __name__ == "__main__":
    sys.exit(main())
