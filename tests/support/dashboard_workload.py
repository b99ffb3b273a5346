"""A workload that makes every series of the Grafana dashboards appear, then keeps going.

Run under ``opentelemetry-instrument`` by tests/test_dashboards.py (with a Prometheus
endpoint, a quick breaker and a one-record log queue, see ``WORKLOAD_ENVIRONMENT`` there),
it calls two local HTTP services with plain ``requests`` and ``httpx`` and a SQLite file
with plain DB-API code, in rounds, until its standard input is closed, so a real
Prometheus scraping it sees rates, not just totals. Every round produces:

* successes, slow calls (``/slow``), failures (``/fail``: 503) and, while the breaker is
  open, rejections; so the breaker opens, half-opens and closes, again and again;
* retries that succeed (``/flaky`` fails every other request), that run out (``/fail``)
  and that the retry budget stops (every request to the second service fails, and its
  breaker never opens, so retries outrun the budget's floor of ten per ten seconds);
* database operations, failed ones included (a missing table);
* a burst of log records, more than the one-record queue of the non-blocking writer
  holds, so some are dropped.

It prints ``ready`` once every kind of event above has happened at least once.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import sqlite3
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import requests

from otel_resilience import BreakerPolicy, default_registry, installed_telemetry

ROUND_PAUSE = 0.05
"""Seconds between rounds: enough calls for rates, little enough CPU for the test."""

LOG_BURST = 50
"""Records logged at once each round; the writer's queue holds one."""


class Upstream(BaseHTTPRequestHandler):
    """``/ok``, ``/slow`` (80 ms), ``/fail`` (503) and ``/flaky`` (503 every other time)."""

    protocol_version = "HTTP/1.1"
    flaky_requests = itertools.count()

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(0.08)
            status = 200
        elif self.path == "/fail":
            status = 503
        elif self.path == "/flaky":
            status = 503 if next(self.flaky_requests) % 2 == 0 else 200
        else:
            status = 200
        body = b"ok\n" if status == 200 else b"unavailable\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads the metrics."""


def serve() -> str:
    """Start one upstream service on 127.0.0.1 and return its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def get(client: httpx.Client, url: str, number: int) -> None:
    """One GET, alternating libraries; rejections and failures are the point, not errors."""
    try:
        if number % 2:
            client.get(url)
        else:
            requests.get(url, timeout=5)
    except (requests.exceptions.ConnectionError, httpx.TransportError):
        pass


def query(connection: sqlite3.Connection, number: int) -> None:
    """A write, a read and a failing read, as any program would run them."""
    connection.execute("INSERT INTO calls VALUES (?)", (number,))
    connection.execute("SELECT COUNT(*) FROM calls").fetchall()
    with contextlib.suppress(sqlite3.OperationalError):
        connection.execute("SELECT * FROM missing_table").fetchall()


def main() -> int:
    telemetry = installed_telemetry()
    if telemetry is None or telemetry.prometheus_url is None:
        print("run this under opentelemetry-instrument with a Prometheus endpoint")
        return 1
    service, budget_service = serve(), serve()
    # Never open this service's breaker, so its failures keep being retried until the
    # retry budget says no.
    default_registry().override(
        budget_service,
        BreakerPolicy(
            consecutive_failures=None, failure_rate_threshold=None, slow_call_rate_threshold=None
        ),
    )
    stop = threading.Event()

    def wait_for_end_of_input() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_end_of_input, daemon=True).start()
    log = logging.getLogger("dashboard.workload")
    with (
        tempfile.TemporaryDirectory() as directory,
        httpx.Client(timeout=5) as client,
        sqlite3.connect(Path(directory) / "workload.db", isolation_level=None) as connection,
    ):
        connection.execute("CREATE TABLE calls (number INTEGER)")
        for number in itertools.count():
            for path in ("/ok", "/slow", "/flaky"):
                get(client, service + path, number)
            if number % 5 == 0:
                get(client, service + "/fail", number)
            get(client, budget_service + "/fail", number)
            query(connection, number)
            for record in range(LOG_BURST):
                log.warning("round %d, record %d", number, record)
            if number == 20:
                print(f"ready {telemetry.prometheus_url}", flush=True)
            if stop.wait(ROUND_PAUSE):
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
