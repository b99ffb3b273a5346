"""The first thing to run: a program with plain HTTP and database calls, and what we see.

Run it with ``make demo``, or by hand::

    OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES=3 OTEL_RESILIENCE_BREAKER_RECOVERY_TIMEOUT=0.5 \\
    OTEL_RESILIENCE_BREAKER_MAX_RECOVERY_TIMEOUT=1 OTEL_RESILIENCE_DISABLED=none \\
    OTEL_RESILIENCE_LOG_FORMAT=human OTEL_RESILIENCE_LOG_LEVEL=INFO \\
        opentelemetry-instrument python examples/demo.py --linger 60

The program checks stock at an inventory service with plain ``requests`` and ``httpx`` and
records every answer in a database with plain DB-API code: a SQLite file in a temporary
directory, or PostgreSQL with ``--dsn "host=127.0.0.1 dbname=test user=postgres"`` (through
psycopg 3). It has no breaker, retry or telemetry code of its own beyond one span per unit
of work (the OpenTelemetry API, so that its log lines and its calls share a trace).

The scenery (``demo_scenery.py``) makes the service fail on a schedule: a few 503s, then an
outage, then a maintenance job that locks the database for a while. Under the launcher the
distribution gives each endpoint a circuit breaker that opens, rejects calls fast, probes and
closes; retries failed idempotent requests with backoff; and records spans, metrics and
correlated logs. A live view shows it as it happens (redrawn in place on a terminal, plain
lines otherwise); the end says where to look: the Prometheus endpoint served by default
(no collector needed), the status endpoint, the log file, and how to send everything to a
collector instead.

SQLite has no network, so the distribution leaves its breakers off unless
``OTEL_RESILIENCE_DISABLED`` says otherwise (``make demo`` sets it to ``none``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import requests
from demo_scenery import (
    DatabaseLock,
    FlakyService,
    LiveView,
    Outcome,
    last_lines,
    scrape,
    stdout_is_terminal,
)
from opentelemetry import trace

from otel_resilience import CircuitOpenError, default_registry, installed_telemetry

log = logging.getLogger("demo")
tracer = trace.get_tracer("demo")

# --------------------------------------------------------------------------- the program
#
# This is all the program does: ordinary client code, with the `except` clauses any program
# has. The breakers' rejections are also the libraries' own errors
# (requests.exceptions.ConnectionError, httpx.TransportError, sqlite3.OperationalError,
# psycopg.OperationalError), so those clauses catch them unchanged.


@dataclass
class OutcomeLog:
    """A DB-API connection to record answers in: its placeholder, table and error type."""

    connection: Any
    mark: str
    table: str
    error: type[Exception]
    where: str


@contextlib.contextmanager
def open_outcome_log(dsn: str | None, directory: Path) -> Iterator[OutcomeLog]:
    """A SQLite file (short busy timeout, autocommit), or PostgreSQL with a statement timeout."""
    if dsn is None:
        connection: Any = sqlite3.connect(
            directory / "outcomes.db", timeout=0.1, isolation_level=None
        )
        try:
            yield OutcomeLog(connection, "?", "demo_calls", sqlite3.Error, "a SQLite file")
        finally:
            connection.close()
        return
    import psycopg  # only when asked for: SQLite needs nothing installed

    table = f"demo_calls_{os.getpid()}"  # a real table, so another session can lock it
    with psycopg.connect(
        dsn, autocommit=True, connect_timeout=5, options="-c statement_timeout=200"
    ) as connection:
        try:
            yield OutcomeLog(connection, "%s", table, psycopg.Error, f"PostgreSQL table {table}")
        finally:
            with contextlib.suppress(psycopg.Error):
                connection.execute(f"DROP TABLE IF EXISTS {table}")


def check_stock(url: str, number: int, client: httpx.Client) -> str:
    """One GET, alternating between requests and httpx, as a program would write it."""
    try:
        if number % 2:
            return f"httpx {client.get(url).status_code}"
        return f"requests {requests.get(url, timeout=5).status_code}"
    except (requests.exceptions.ConnectionError, httpx.TransportError) as error:
        log.warning("inventory service unreachable: %s", error)
        return type(error).__name__


def record_answer(outcomes: OutcomeLog, number: int, answer: str) -> Exception | None:
    """Write one answer; a database error is logged and the program carries on."""
    try:
        outcomes.connection.execute(
            f"INSERT INTO {outcomes.table} VALUES ({outcomes.mark}, {outcomes.mark})",
            (number, answer),
        )
        return None
    except outcomes.error as error:
        log.warning("could not record call %d: %s", number, error)
        return error


def count_answers(outcomes: OutcomeLog) -> list[tuple[str, int]]:
    """The recorded answers counted by kind."""
    try:
        cursor = outcomes.connection.execute(
            f"SELECT outcome, COUNT(*) FROM {outcomes.table} GROUP BY outcome ORDER BY outcome"
        )
        counted: list[tuple[str, int]] = cursor.fetchall()
        return counted
    except outcomes.error as error:
        log.warning("could not count the answers: %s", error)
        return []


# --------------------------------------------------------------------------- the schedule


@dataclass(frozen=True)
class Schedule:
    """Which calls see the service down and the database locked (fractions of the run)."""

    calls: int

    @property
    def service_down(self) -> range:
        return self._calls_between(0.15, 0.35)

    @property
    def database_locked(self) -> range:
        return self._calls_between(0.5, 0.65)

    def _calls_between(self, start: float, stop: float) -> range:
        # A run too short for an outage gets none, rather than one that never ends.
        calls = range(int(self.calls * start), int(self.calls * stop))
        return calls if calls else range(-1, -1)


def _classify(failed: bool, rejected: bool, retried: bool) -> Outcome:
    if rejected:
        return "rejected"
    if failed:
        return "failed"
    return "retried" if retried else "ok"


def run_calls(
    arguments: argparse.Namespace,
    service: FlakyService,
    outcomes: OutcomeLog,
    database_lock: DatabaseLock,
    view: LiveView,
) -> tuple[list[str], dict[Outcome, int]]:
    """The main loop: the program's calls, with the scenery changing around them."""
    schedule = Schedule(arguments.calls)
    url = f"{service.url}/inventory"
    answers: list[str] = []
    writes: dict[Outcome, int] = {"ok": 0, "failed": 0, "rejected": 0, "retried": 0}
    view.phase(0, f"the inventory service at {url} is up; one request in 7 gets a 503")
    with httpx.Client(timeout=5) as client:
        for number in range(arguments.calls):
            if number == schedule.service_down.start:
                service.mode = "down"
                view.phase(number, "the inventory service is down: every request gets 503")
            elif number == schedule.service_down.stop:
                service.mode = "healthy"
                view.phase(number, "the inventory service is back, and healthy")
            if number == schedule.database_locked.start:
                locked = database_lock.acquire()
                view.phase(
                    number,
                    "a maintenance job locks the database: writes time out"
                    if locked
                    else "(could not start the database maintenance job; carrying on)",
                )
            elif number == schedule.database_locked.stop and database_lock.held:
                database_lock.release()
                view.phase(number, "the maintenance job is done: the database is free again")

            before = service.requests_received
            with tracer.start_as_current_span("check stock"):
                answer = check_stock(url, number, client)
                sent = service.requests_received - before
                write_error = record_answer(outcomes, number, answer)
                log.info("call %d: %s", number, answer)
            answers.append(answer)
            view.watch_new_breakers()
            view.record(
                "http",
                number + 1,
                _classify(not answer.endswith(" 200"), rejected=sent == 0, retried=sent > 1),
            )
            write = _classify(
                write_error is not None,
                rejected=isinstance(write_error, CircuitOpenError),
                retried=False,
            )
            writes[write] += 1
            view.record("db", number + 1, write)
            view.draw()
            time.sleep(arguments.interval)
    database_lock.release()
    return answers, writes


# --------------------------------------------------------------------------- the summary


def status_url(prometheus_url: str | None) -> str | None:
    """Where ``/status`` is served when ``OTEL_RESILIENCE_HEALTH_ENABLED=true``, else None."""
    if os.environ.get("OTEL_RESILIENCE_HEALTH_ENABLED", "").strip().lower() != "true":
        return None
    port = os.environ.get("OTEL_RESILIENCE_HEALTH_PORT", "prometheus").strip().lower()
    if port.isdigit():
        host = os.environ.get("OTEL_RESILIENCE_HEALTH_HOST", "localhost").strip()
        return f"http://{host}:{port}/status"
    if prometheus_url is not None:
        return prometheus_url.rsplit("/", 1)[0] + "/status"
    return "http://localhost:9465/status"


def print_summary(
    arguments: argparse.Namespace,
    answers: list[str],
    writes: dict[Outcome, int],
    counted: list[tuple[str, int]],
    where: str,
    service: FlakyService,
    view: LiveView,
) -> None:
    """What happened, in numbers the distribution kept, then where to look for more."""
    print()
    print("What happened")
    print(
        f"  {arguments.calls} calls, counted in {where}: "
        + ", ".join(f"{count} x {answer}" for answer, count in counted)
    )
    rejected = sum(1 for answer in answers if "CircuitOpen" in answer)
    sent = arguments.calls - rejected
    print(
        f"  the inventory service received {service.requests_received} requests for the "
        f"{sent} calls that were sent: the rest were retries, with backoff; "
        f"{rejected} calls were rejected at once by an open breaker"
    )
    print(
        f"  database writes: {writes['ok']} recorded, {writes['failed']} failed, "
        f"{writes['rejected']} rejected at once"
    )
    for breaker in default_registry().breakers():
        stats = breaker.stats
        print(
            f"  breaker {breaker.name}: {breaker.state}; {stats.successes} successes, "
            f"{stats.failures} failures, {stats.rejections} rejected; "
            f"opened {_times(breaker.transition_counts().get('open', 0))}"
        )
    breakers = default_registry().breakers()
    if arguments.dsn is None and not any(b.name.startswith("sqlite") for b in breakers):
        print("  (no SQLite breaker: set OTEL_RESILIENCE_DISABLED=none to see one)")
    print("  transitions:")
    for at, event in view.transitions:
        print(
            f"  {at:5.1f} s  breaker {event.breaker}: "
            f"{event.from_state} -> {event.to_state} ({event.reason})"
        )


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def print_where_to_look(prometheus_url: str | None, exporters: dict[str, tuple[str, ...]]) -> None:
    print()
    print("Where to look")
    chosen = ", ".join(
        f"{signal}={'+'.join(names) or 'none'}" for signal, names in exporters.items()
    )
    print(f"  exporters: {chosen}")
    if prometheus_url is None:
        print("  no Prometheus endpoint in this process (see the warning above, if any)")
    else:
        print(f"  metrics: {prometheus_url}; the demo's series there now:")
        wanted = (
            "resilience_circuit_breaker_state",
            "resilience_circuit_breaker_calls_total",
            "resilience_circuit_breaker_transitions_total",
            "resilience_retry_attempts_total",
            "http_client_request_duration_seconds_count",
            "db_client_operation_duration_seconds_count",
        )
        try:
            for line in scrape(prometheus_url, wanted):
                print(f"    {line}")
        except OSError as error:
            print(f"    (could not read it: {error})")
    status = status_url(prometheus_url)
    if status is not None:
        print(f"  status: {status}  (also /healthz and /readyz)")
    else:
        print(
            "  status: set OTEL_RESILIENCE_HEALTH_ENABLED=true to serve /status, /healthz, /readyz"
        )
    log_file = os.environ.get("OTEL_RESILIENCE_LOG_FILE")
    if log_file and "file" in os.environ.get("OTEL_RESILIENCE_LOG_OUTPUTS", ""):
        for handler in logging.getLogger().handlers:
            handler.flush()
        print(f"  logs, each with its trace id: {log_file}; the last few:")
        for line in last_lines(log_file, 3, "trace="):
            print(f"    {line}")
    elif os.environ.get("OTEL_RESILIENCE_LOG_FORMAT", "none") in ("json", "human"):
        print("  logs, each with its trace id: on standard error")
    else:
        print("  logs: set OTEL_RESILIENCE_LOG_FORMAT=human (or json) to see them with trace ids")
    print(
        "  traces, metrics and logs in a collector: docker compose -f collector/compose.yaml up,"
        " then run again with OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317"
    )
    print(
        "  the endpoints close when the demo ends; keep them up with --linger SECONDS "
        "(make demo DEMO_ARGS='--linger 300')"
    )
    if prometheus_url is not None:
        print(
            "  point Prometheus at that endpoint, "
            "or set OTEL_EXPORTER_OTLP_ENDPOINT for a collector"
        )


def linger(seconds: float, prometheus_url: str | None) -> None:
    """Keep the process, and so its endpoints, alive for a scraper; Ctrl-C ends it early."""
    if seconds <= 0:
        return
    where = prometheus_url or status_url(prometheus_url)
    doing = f"serving metrics at {where}" if where else "staying up for the exporters"
    print(f"{doing} for {seconds:g} s more (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        time.sleep(seconds)


# --------------------------------------------------------------------------- main


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=80, help="how many calls to make (80)")
    parser.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="run for about this long instead: as many calls as fit at --interval",
    )
    parser.add_argument("--interval", type=float, default=0.12, help="seconds between calls (0.12)")
    parser.add_argument(
        "--dsn", help="record answers in this PostgreSQL database instead of a SQLite file"
    )
    parser.add_argument(
        "--linger",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep serving metrics and status this long after the run, for a scraper",
    )
    parser.add_argument(
        "--view",
        choices=("auto", "live", "plain"),
        default="auto",
        help="redraw in place (live), print lines (plain), or live on a terminal (auto)",
    )
    arguments = parser.parse_args()
    if arguments.calls < 1 or arguments.interval < 0:
        parser.error("--calls must be at least 1 and --interval not negative")
    if arguments.duration is not None:
        if not arguments.duration > 0:
            parser.error("--duration must be a positive number of seconds")
        # Each call takes its interval plus, measured here, about 20 ms of its own.
        arguments.calls = max(1, round(arguments.duration / (arguments.interval + 0.02)))
    return arguments


def main() -> int:
    arguments = parse_arguments()
    telemetry = installed_telemetry()
    if telemetry is None:
        print("otel-resilience is not active: run this under `opentelemetry-instrument`.")
        return 1

    live = arguments.view == "live" or (arguments.view == "auto" and stdout_is_terminal())
    view = LiveView(sys.stdout, total_calls=arguments.calls, live=live)
    if live and not logging.getLogger().handlers:
        # Nothing configured logging (no OTEL_RESILIENCE_LOG_FORMAT, no OTLP logs): Python
        # would print warnings to the terminal, through the board. The board shows what
        # they say; `make demo` keeps them, with trace ids, in a file.
        logging.getLogger().addHandler(logging.NullHandler())
    kind: Literal["sqlite", "postgresql"] = "postgresql" if arguments.dsn else "sqlite"
    with (
        tempfile.TemporaryDirectory(prefix="otel-resilience-demo-") as directory,
        FlakyService() as service,
        open_outcome_log(arguments.dsn, Path(directory)) as outcomes,
    ):
        outcomes.connection.execute(f"CREATE TABLE {outcomes.table} (number INTEGER, outcome TEXT)")
        target = arguments.dsn or str(Path(directory) / "outcomes.db")
        database_lock = DatabaseLock(kind, target, outcomes.table)
        default_registry().get(service.url)  # so the view shows it from the start
        view.watch_new_breakers()
        try:
            answers, writes = run_calls(arguments, service, outcomes, database_lock, view)
        finally:
            database_lock.release()
        view.finish()
        counted = count_answers(outcomes)
        print_summary(arguments, answers, writes, counted, outcomes.where, service, view)
    print_where_to_look(telemetry.prometheus_url, telemetry.exporters)
    linger(arguments.linger, telemetry.prometheus_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
