"""Per-operation overhead of our database instrumentations, next to the upstream OpenTelemetry ones.

What is measured
----------------

Microseconds per ``SELECT 1`` (the statement run and its one row fetched) for four
clients: ``sqlite3`` (``cursor.execute()`` then ``cursor.fetchone()``, one cursor of an
in-memory database), ``sqlite3-conn`` (the same through the connection's shortcut,
``connection.execute("SELECT 1").fetchone()``), ``psycopg2`` and ``psycopg`` (psycopg 3,
sync), both ``cursor.execute()`` then ``cursor.fetchone()`` on an autocommit connection to
a real PostgreSQL server (``--dsn``, by default ``host=127.0.0.1 dbname=test
user=postgres``). Each client runs in four configurations measured in the same run:

``bare``
    no instrumentation at all;
``upstream``
    opentelemetry-instrumentation-sqlite3 / -psycopg2 / -psycopg (a client span, and the
    ``db.client.operation.duration`` histogram: see below), ``enable_commenter`` off;
``ours``
    otel-resilience's instrumentors: span, duration histogram and the endpoint's circuit
    breaker (``resilience=True``, so armed for sqlite3 too, whose resilience is off by
    default; connection retries as the ``OTEL_RESILIENCE_RETRY_*`` settings say, with 2 put
    back if the environment turns them off; statements are retried only with
    ``OTEL_RESILIENCE_DB_RETRY_READ_ONLY``, left as the environment has it);
``sdk-floor``
    a minimal wrapper of the same hooks that starts and ends one SDK span and records one
    histogram point, nothing else (see :class:`SdkFloorSqlite3` and its siblings). What
    ``upstream`` and ``ours`` add beyond it is their own code's cost.

The upstream dbapi-based instrumentors record ``db.client.operation.duration`` only with
the stable database conventions, so this script puts ``database`` into
``OTEL_SEMCONV_STABILITY_OPT_IN`` before any instrumentor is imported (the setting is read
once per process, at the first ``instrument()``); the metric names each instrumentation
scope emitted are printed, and the upstream scopes are checked to have recorded that
histogram. Upstream's sqlite3 instrumentor wraps ``sqlite3.connect`` and returns a proxy
whose ``cursor()`` gives traced cursor proxies; everything else, the ``execute`` shortcut
included, goes to the real connection untraced. So ``sqlite3`` (the cursor) is the
client compared with upstream, and ``sqlite3-conn`` is shown for information: upstream
makes no span there (and the checks expect none), ours and the floor do. The psycopg2 and
psycopg upstream instrumentors hand the driver a traced ``cursor_factory`` instead. The
upstream sqlite3, psycopg2 and psycopg instrumentors take no ``meter_provider=``: they use
the global one, which is the same provider.

Every configuration gets the same real SDK: a ``TracerProvider`` with a
``BatchSpanProcessor`` feeding an exporter that counts and discards the spans (so span
processing costs what it does in production, minus the network), and a ``MeterProvider``
whose reader is the ``RegistryMetricReader`` our configurator installs for push exporters
(collected once, at the end): ours records its duration histogram in a metric registry,
as under the launcher; upstream's SDK instruments cost what they cost under any reader.
Both are passed to
``instrument()`` as ``tracer_provider=`` / ``meter_provider=`` and are also the global
providers, which the breakers' own instruments use. The span queue holds 65,536 spans
instead of 2,048: the processor's worker can miss a wake-up (it clears its event after
exporting, while ``emit`` only sets it when unset) and then sleeps its 5 s schedule delay,
and at tens of thousands of spans per second the default queue fills long before that
(a full run dropped a few hundred spans, caught by the checks). The cost of a span does
not depend on the queue's size. Instrumentors are singletons, so a
configuration is instrumented before its blocks and uninstrumented after them, and the
originals (``sqlite3.connect``, ``psycopg2.connect``, ``psycopg.connect``,
``psycopg.Connection.connect``, the psycopg cursors' ``execute``...) are checked to be back
in place; an ``instrument()`` that hooked nothing (a dependency conflict) is reported. The
upstream and our instrumentors are never active at the same time.

A block is one fresh connection (opened after instrumenting, so either hooking style is
covered) and one cursor, 50 warm-up operations, then ``n`` timed operations and a last one
whose row is checked. Statements are run as ``cursor.execute(...)`` in the loop, not
through a method bound once, because that is how programs call them (wrapt's and the
proxies' binding cost is part of the overhead). ``n`` is calibrated per client after a
warm-up round so that the slowest configuration's block takes about 0.3 s (0.08 s with
``--quick``): a bare sqlite3 ``SELECT 1`` costs well under a microsecond and an
instrumented one tens, so calibrating on the bare client as the HTTP benchmark does would
make the instrumented blocks last minutes. Blocks run in rounds: every configuration and
client once per round, client by client (the blocks compared close in time), in an order
that rotates from round to round, so that machine noise is spread over all of them. The
figures are medians over rounds: µs per operation, and the overhead of each configuration
over ``bare`` measured in the same round. The judged clock
is this process's CPU time (``time.process_time()``: the client's own work, the span
processor's thread and the GC, not the PostgreSQL server's, which runs in its own process
on the other core); the wall clock is shown beside it. The cyclic GC stays enabled (as in
production); the span queue is flushed between blocks, outside the timing. Spans exported,
duration points and our breakers' calls are checked against the operations run.

Target (the database instrumentations issue): for each client, ours' overhead <= 0.5 x the
upstream instrumentor's overhead, in CPU time, in the same run, while doing more. PASS/FAIL
is printed per client; a client whose instrumentor cannot be loaded or instrumented is
skipped with a note (our psycopg instrumentor may not exist yet), and so are the PostgreSQL
clients when the server cannot be reached. Measured on this machine some time ago (the
issue): a bare sqlite3 ``SELECT 1`` 0.46 µs; upstream adds ~25 µs with spans only, 33-43 µs
with the duration metric.

How to run
----------

From the repository root, with PostgreSQL listening as ``--dsn`` says::

    .venv/bin/python benchmarks/db_overhead.py            # about 90 s on 2 cores
    .venv/bin/python benchmarks/db_overhead.py --quick    # about 20 s, noisier
    .venv/bin/python benchmarks/db_overhead.py --profile sqlite3   # cProfile of ours

``--profile CLIENT`` runs 20,000 operations of that client under ``--profile-config``
(default ``ours``) in cProfile and prints our own functions (``otel_resilience``), then the
top functions by own and by cumulative time; cProfile inflates call-heavy code, so read it
for where the time goes, not for how much. The exit status is 0 whatever the results; read
the PASS/FAIL lines at the end.

The SDK, the switchboard, the rounds, the tables and the checks are shared with
``http_overhead.py``, in ``_overhead_harness.py`` next to this script; what is the
databases' is here.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from typing import Any

import psycopg
import psycopg2
import psycopg2.extensions
from _overhead_harness import (
    Bench,
    BlockRunner,
    Configuration,
    Elapsed,
    MetricsSeen,
    Results,
    Settings,
    Suite,
    Telemetry,
    add_profile_arguments,
    argument_parser,
    armed_retries,
    chosen_settings,
    floor_instruments,
    machine,
    make_telemetry,
    mode,
    profile,
    report,
    resilience_on,
    unwrap,
    version,
)
from opentelemetry import trace

from otel_resilience.breaker._registry import default_registry
from otel_resilience.instrumentation._db_client import database_key
from otel_resilience.sdk.settings import current_settings

CLIENTS = ("sqlite3", "sqlite3-conn", "psycopg2", "psycopg")
FAMILY = {
    "sqlite3": "sqlite3",
    "sqlite3-conn": "sqlite3",
    "psycopg2": "psycopg2",
    "psycopg": "psycopg",
}
POSTGRESQL_CLIENTS = ("psycopg2", "psycopg")
TARGETED_CLIENTS = ("sqlite3", "psycopg2", "psycopg")
UNTRACED = {("upstream", "sqlite3-conn"): "upstream does not trace connection.execute()"}
"""(configuration, client) pairs that by design make no span (the checks expect none)."""
DEFAULT_DSN = "host=127.0.0.1 dbname=test user=postgres"
STATEMENT = "SELECT 1"
WARMUP_OPERATIONS = 50
DURATION_HISTOGRAM = "db.client.operation.duration"
SEMCONV_VARIABLE = "OTEL_SEMCONV_STABILITY_OPT_IN"
SPAN_QUEUE = 1 << 16
"""The span processor's queue: a whole block's spans (see the docstring)."""

FULL = Settings(rounds=21, block_seconds=0.3, calibration=1000)
QUICK = Settings(rounds=7, block_seconds=0.08, calibration=300)


def opt_in_database_semconv() -> None:
    """Put ``database`` into ``OTEL_SEMCONV_STABILITY_OPT_IN``, keeping what else it says.

    Must run before the first ``instrument()`` of any instrumentor in this process: that is
    when opentelemetry-instrumentation reads the variable, once.
    """
    given = [part.strip() for part in os.environ.get(SEMCONV_VARIABLE, "").split(",")]
    given = [part for part in given if part]
    if not any(part.startswith("database") for part in given):
        os.environ[SEMCONV_VARIABLE] = ",".join([*given, "database"])


# --- the SDK floor -----------------------------------------------------------------------------


def _postgresql_attributes() -> dict[str, Any]:
    return {
        "db.system.name": "postgresql",
        "db.operation.name": "SELECT",
        "server.address": "127.0.0.1",
        "server.port": 5432,
    }


class _SdkFloor:
    """The least any SDK-based instrumentation costs: one span and one histogram point.

    Each subclass hooks the same place as ours (and as the drivers allow) and, around the
    driver's own ``execute``, starts a CLIENT span (not made current: ours does not either),
    runs the statement, records its duration and ends the span. Span name and attributes are
    constants (system, operation, server): no SQL parsing, no endpoint lookup, no breaker,
    no retry, no error handling beyond ending the span. The hook bodies are written out
    inline, with no helper call, to keep the floor a floor.
    """

    def instrument(self, **kwargs: Any) -> None:
        raise NotImplementedError

    def uninstrument(self, **kwargs: Any) -> None:
        raise NotImplementedError


class SdkFloorSqlite3(_SdkFloor):
    """``sqlite3.connect`` wrapped to pass ``factory=`` a ``sqlite3.Connection`` subclass.

    The subclass overrides ``execute`` (the connection's shortcut, which the C code runs
    without calling the cursor's ``execute``) and ``cursor()``, which makes cursors of a
    ``sqlite3.Cursor`` subclass overriding ``execute``: both traced, never twice.
    """

    def instrument(self, **kwargs: Any) -> None:
        import wrapt

        tracer, histogram = floor_instruments(kwargs, DURATION_HISTOGRAM)
        attributes = {
            "db.system.name": "sqlite",
            "db.namespace": ":memory:",
            "db.operation.name": "SELECT",
        }
        client = trace.SpanKind.CLIENT
        perf_counter = time.perf_counter

        class FloorCursor(sqlite3.Cursor):
            def execute(self, *args: Any, **kwargs: Any) -> Any:
                started = perf_counter()
                span = tracer.start_span("SELECT", kind=client, attributes=attributes)
                try:
                    return super().execute(*args, **kwargs)
                finally:
                    histogram.record(perf_counter() - started, attributes)
                    span.end()

        class FloorConnection(sqlite3.Connection):
            def cursor(self, *args: Any, **kwargs: Any) -> Any:
                return super().cursor(FloorCursor)

            def execute(self, *args: Any, **kwargs: Any) -> Any:
                started = perf_counter()
                span = tracer.start_span("SELECT", kind=client, attributes=attributes)
                try:
                    return super().execute(*args, **kwargs)
                finally:
                    histogram.record(perf_counter() - started, attributes)
                    span.end()

        def connect(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            return wrapped(*args, **{**kw, "factory": FloorConnection})

        wrapt.wrap_function_wrapper(sqlite3, "connect", connect)

    def uninstrument(self, **kwargs: Any) -> None:
        unwrap(sqlite3, "connect")


class SdkFloorPsycopg2(_SdkFloor):
    """``psycopg2.connect`` wrapped to pass ``connection_factory=`` a connection subclass.

    Its ``cursor_factory`` is a ``psycopg2.extensions.cursor`` subclass overriding
    ``execute``: psycopg2's types are C, so subclasses through its factories are the hook.
    """

    def instrument(self, **kwargs: Any) -> None:
        import wrapt

        tracer, histogram = floor_instruments(kwargs, DURATION_HISTOGRAM)
        attributes = _postgresql_attributes()
        client = trace.SpanKind.CLIENT
        perf_counter = time.perf_counter

        class FloorCursor(psycopg2.extensions.cursor):
            def execute(self, *args: Any, **kwargs: Any) -> Any:
                started = perf_counter()
                span = tracer.start_span("SELECT", kind=client, attributes=attributes)
                try:
                    return super().execute(*args, **kwargs)
                finally:
                    histogram.record(perf_counter() - started, attributes)
                    span.end()

        class FloorConnection(psycopg2.extensions.connection):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.cursor_factory = FloorCursor

        def connect(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            return wrapped(*args, **{**kw, "connection_factory": FloorConnection})

        wrapt.wrap_function_wrapper(psycopg2, "connect", connect)

    def uninstrument(self, **kwargs: Any) -> None:
        unwrap(psycopg2, "connect")


class SdkFloorPsycopg(_SdkFloor):
    """``psycopg.Cursor.execute`` wrapped in place with wrapt (psycopg 3 is Python code)."""

    def instrument(self, **kwargs: Any) -> None:
        import wrapt

        tracer, histogram = floor_instruments(kwargs, DURATION_HISTOGRAM)
        attributes = _postgresql_attributes()
        client = trace.SpanKind.CLIENT
        perf_counter = time.perf_counter

        def execute(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            started = perf_counter()
            span = tracer.start_span("SELECT", kind=client, attributes=attributes)
            try:
                return wrapped(*args, **kw)
            finally:
                histogram.record(perf_counter() - started, attributes)
                span.end()

        wrapt.wrap_function_wrapper(psycopg.Cursor, "execute", execute)

    def uninstrument(self, **kwargs: Any) -> None:
        unwrap(psycopg.Cursor, "execute")


# --- configurations ----------------------------------------------------------------------------


def _commenter_off() -> dict[str, Any]:
    return {"enable_commenter": False}


UPSTREAM = {
    "sqlite3": ("opentelemetry.instrumentation.sqlite3", "SQLite3Instrumentor"),
    "psycopg2": ("opentelemetry.instrumentation.psycopg2", "Psycopg2Instrumentor"),
    "psycopg": ("opentelemetry.instrumentation.psycopg", "PsycopgInstrumentor"),
}
OURS = {
    "sqlite3": ("otel_resilience_instrumentation_sqlite3", "SQLite3Instrumentor"),
    "psycopg2": ("otel_resilience_instrumentation_psycopg2", "Psycopg2Instrumentor"),
    "psycopg": ("otel_resilience_instrumentation_psycopg", "PsycopgInstrumentor"),
}
SDK_FLOOR = {
    "sqlite3": ("__main__", "SdkFloorSqlite3"),
    "psycopg2": ("__main__", "SdkFloorPsycopg2"),
    "psycopg": ("__main__", "SdkFloorPsycopg"),
}
CONFIGURATIONS = (
    Configuration("bare", {}),
    Configuration("upstream", UPSTREAM, _commenter_off),
    Configuration("ours", OURS, resilience_on),
    Configuration("sdk-floor", SDK_FLOOR),
)
HOOKS: dict[str, tuple[object, str]] = {
    "sqlite3.connect": (sqlite3, "connect"),
    "sqlite3.dbapi2.connect": (sqlite3.dbapi2, "connect"),
    "psycopg2.connect": (psycopg2, "connect"),
    "psycopg.connect": (psycopg, "connect"),
    **{
        f"psycopg.{owner.__name__}.{name}": (owner, name)
        for owner, name in (
            (psycopg.Connection, "connect"),
            (psycopg.AsyncConnection, "connect"),
            (psycopg.Cursor, "execute"),
            (psycopg.Cursor, "executemany"),
            (psycopg.ServerCursor, "execute"),
            (psycopg.AsyncCursor, "execute"),
            (psycopg.AsyncCursor, "executemany"),
            (psycopg.AsyncServerCursor, "execute"),
        )
    },
}
"""The places the instrumentors hook: (module or class, attribute), by name."""

SUITE = Suite(
    clients=CLIENTS,
    family=FAMILY,
    configurations=CONFIGURATIONS,
    hooks=HOOKS,
    family_hooks={
        "sqlite3": ("sqlite3.connect", "sqlite3.dbapi2.connect"),
        "psycopg2": ("psycopg2.connect",),
        "psycopg": tuple(name for name in HOOKS if name.startswith("psycopg.")),
    },
    our_histogram_scope="otel_resilience.instrumentation.db",
    duration_histograms=(DURATION_HISTOGRAM,),
    warmup=WARMUP_OPERATIONS,
    calibrate_on="slowest",
    minimum_count=100,
    unit="operation",
    units="operations",
    per_unit_header="µs/op",
    per_block_header="ops/block",
    done="run",
    points="duration",
    histogram_label=DURATION_HISTOGRAM,
    decimals=2,
    targeted_clients=TARGETED_CLIENTS,
    untraced=UNTRACED,
)


# --- the clients -------------------------------------------------------------------------------

# A block runner (``BlockRunner``) opens one connection per block and runs
# ``warm-up + timed + 1`` operations (the last one's row checked). Each statement is
# ``cursor.execute(...)`` in the loop: the attribute lookup and binding (a wrapt or proxy
# method for some configurations) are part of what a program pays.


def _check(row: object, client: str) -> None:
    if row != (1,):
        raise RuntimeError(f"{client}: SELECT 1 returned {row!r}")


def _cursor_block(cursor: Any, client: str, warmup: int, count: int) -> Elapsed:
    """``execute()`` then ``fetchone()`` on ``cursor``: warm-up, timed, one checked."""
    for _ in range(warmup):
        cursor.execute(STATEMENT)
        cursor.fetchone()
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(count):
        cursor.execute(STATEMENT)
        cursor.fetchone()
    elapsed = time.perf_counter() - started, time.process_time() - cpu_started
    cursor.execute(STATEMENT)
    _check(cursor.fetchone(), client)
    return elapsed


def sqlite3_block(warmup: int, count: int) -> Elapsed:
    connection = sqlite3.connect(":memory:")
    try:
        return _cursor_block(connection.cursor(), "sqlite3", warmup, count)
    finally:
        connection.close()


def sqlite3_connection_block(warmup: int, count: int) -> Elapsed:
    connection = sqlite3.connect(":memory:")
    try:
        for _ in range(warmup):
            connection.execute(STATEMENT).fetchone()
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(count):
            connection.execute(STATEMENT).fetchone()
        elapsed = time.perf_counter() - started, time.process_time() - cpu_started
        _check(connection.execute(STATEMENT).fetchone(), "sqlite3-conn")
    finally:
        connection.close()
    return elapsed


def make_runners(dsn: str) -> dict[str, BlockRunner]:
    def psycopg2_block(warmup: int, count: int) -> Elapsed:
        connection = psycopg2.connect(dsn)
        try:
            connection.autocommit = True
            return _cursor_block(connection.cursor(), "psycopg2", warmup, count)
        finally:
            connection.close()

    def psycopg_block(warmup: int, count: int) -> Elapsed:
        with psycopg.connect(dsn, autocommit=True) as connection:
            return _cursor_block(connection.cursor(), "psycopg", warmup, count)

    return {
        "sqlite3": sqlite3_block,
        "sqlite3-conn": sqlite3_connection_block,
        "psycopg2": psycopg2_block,
        "psycopg": psycopg_block,
    }


def postgresql_server(dsn: str) -> str:
    """The server's version, or raises if it cannot be reached (before any instrumentation)."""
    connection = psycopg2.connect(dsn, connect_timeout=5)
    try:
        version = connection.server_version
    finally:
        connection.close()
    return f"{version // 10000}.{version % 10000}"


# --- reporting ---------------------------------------------------------------------------------


def print_database_checks(
    results: Results, telemetry: Telemetry, seen: MetricsSeen, dsn: str
) -> None:
    """Metric names per scope, upstream's duration histogram, our breakers' calls."""
    span_scopes = {scope for _, scope in telemetry.exporter.counts}
    print("Metrics emitted, per instrumentation scope")
    for scope, names in sorted(seen.names.items()):
        print(f"  {scope}: {', '.join(sorted(names))}")
    for family, (module, _) in UPSTREAM.items():
        if module not in span_scopes:
            continue
        ok = DURATION_HISTOGRAM in seen.names.get(module, set())
        verdict = "ok" if ok else f"MISSING: is {SEMCONV_VARIABLE}=database set in time?"
        print(f"  upstream {family} records {DURATION_HISTOGRAM}: {verdict}")
    parameters = psycopg2.extensions.parse_dsn(dsn)
    port = int(parameters.get("port") or 5432)
    keys = {
        "sqlite3": database_key("sqlite", None, None, ":memory:"),
        "psycopg2": database_key(
            "postgresql", parameters.get("host"), port, parameters.get("dbname")
        ),
    }
    keys["psycopg"] = keys["psycopg2"]
    for key in sorted(set(keys.values())):
        families = [family for family, k in keys.items() if k == key]
        through_ours = [
            (results.sent[name, client], results.connections[name, client])
            for (name, client) in results.sent
            if name == "ours" and FAMILY[client] in families
        ]
        if not through_ours:
            continue
        operations = sum(sent for sent, _ in through_ours)
        connections = sum(connected for _, connected in through_ours)
        stats = default_registry().get(key).stats
        expected = operations + connections
        verdict = "ok" if stats.calls == stats.successes == expected else "MISMATCH"
        print(
            f"  breaker {key}: {stats.calls:,} calls, {stats.successes:,} successes; under "
            f"ours {operations:,} operations + {connections:,} connections ({verdict})"
        )


def print_header(arguments: argparse.Namespace, settings: Settings, server: str) -> None:
    retry = armed_retries()
    print("Database client overhead: otel-resilience vs the upstream OpenTelemetry instrumentors")
    print(
        f"{machine()} (load average {os.getloadavg()[0]:.1f} at the start); SQLite "
        f"{sqlite3.sqlite_version}, psycopg2 {version('psycopg2-binary')}, psycopg "
        f"{version('psycopg')} (libpq {psycopg.pq.version()}), PostgreSQL {server}, "
        f"opentelemetry-sdk {version('opentelemetry-sdk')}, upstream instrumentations "
        f"{version('opentelemetry-instrumentation-sqlite3')} / "
        f"{version('opentelemetry-instrumentation-psycopg2')} / "
        f"{version('opentelemetry-instrumentation-psycopg')}"
    )
    print(
        f"{mode(SUITE, settings, quick=arguments.quick)}; upstream semconv: "
        f"{SEMCONV_VARIABLE}={os.environ.get(SEMCONV_VARIABLE, '')!r}; ours: breakers on, "
        f"connection retries armed (max_retries={retry.max_retries}, budget "
        f"{retry.budget_ratio:g}, jitter {retry.jitter}), statement retries "
        f"{'on' if current_settings().db_retry_read_only else 'off'}"
    )


# --- entry points ------------------------------------------------------------------------------


def reachable_clients(dsn: str) -> tuple[list[str], str]:
    """The clients to run and the PostgreSQL server's version (or why it is left out)."""
    try:
        return list(CLIENTS), postgresql_server(dsn)
    except psycopg2.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        print(f"note: PostgreSQL clients skipped: {dsn!r} cannot be reached ({reason})")
        return [c for c in CLIENTS if c not in POSTGRESQL_CLIENTS], "unreachable"


def benchmark(arguments: argparse.Namespace) -> None:
    settings = chosen_settings(arguments, FULL, QUICK)
    clients, server = reachable_clients(arguments.dsn)
    print_header(arguments, settings, server)
    sys.stdout.flush()
    started = time.perf_counter()
    telemetry = make_telemetry(SPAN_QUEUE)
    bench = Bench(SUITE, telemetry, make_runners(arguments.dsn), clients)
    bench.run(settings)
    seen = report(SUITE, bench, settings)
    print_database_checks(bench.results, telemetry, seen, arguments.dsn)
    telemetry.shutdown()
    print(f"\nTotal time: {time.perf_counter() - started:.1f} s")


def run_profile(arguments: argparse.Namespace) -> None:
    """cProfile of one client under one configuration; our functions, then the top ones."""
    telemetry = make_telemetry(SPAN_QUEUE)
    try:
        profile(
            SUITE,
            telemetry,
            make_runners(arguments.dsn)[arguments.profile],
            client=arguments.profile,
            configuration_name=arguments.profile_config,
            count=arguments.profile_count,
            warmup_count=2000,
            our_code=True,
        )
    finally:
        telemetry.tracer_provider.shutdown()


def main(argv: Sequence[str] | None = None) -> None:
    opt_in_database_semconv()  # before any instrumentor is imported or instrumented
    parser = argument_parser(__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--dsn", default=DEFAULT_DSN, help=f"PostgreSQL to run against (default: {DEFAULT_DSN})"
    )
    add_profile_arguments(parser, SUITE, default=20_000)
    arguments = parser.parse_args(argv)
    if arguments.profile:
        run_profile(arguments)
    else:
        benchmark(arguments)


if __name__ == "__main__":
    main()
