"""Per-call overhead of the unsampled call: ours and upstream's instrumentors, no trace kept.

Why
---

Production services often sample a small share of traces, or none: most requests then make
no span the exporter sees, yet every one of them still goes through the instrumentation.
What an instrumentor costs on that path is the price of being installed at all. The other
overhead benchmarks (``http_overhead.py``, ``db_overhead.py``) measure recording spans; this
one measures the dropped ones.

What is measured
----------------

The SDK is the one ``_overhead_harness.make_telemetry`` builds (a ``TracerProvider`` with a
``BatchSpanProcessor`` feeding a span-counting exporter, and a ``MeterProvider`` whose reader
is the one our configurator installs, so metrics are still recorded as under the launcher),
with one difference: its sampler is ``ParentBased(TraceIdRatioBased(0.0))``, which drops
every trace that has no sampled parent. It is set the way a deployment sets it,
``OTEL_TRACES_SAMPLER=parentbased_traceidratio`` and ``OTEL_TRACES_SAMPLER_ARG=0``, before
the provider is made, and the provider's sampler is checked to be that one before anything
is measured. No request here has a parent, so every span is dropped at its start.

Microseconds of this process's CPU time per call, for three clients: ``requests`` (GET
through one ``requests.Session``) and httpx sync (GET through one ``httpx.Client``) against a
keep-alive HTTP/1.1 server on 127.0.0.1 in a subprocess (``http_overhead.py``'s server when
that script imports; else a small one of this script's own, ``--serve``), and ``psycopg``
(``cursor.execute("SELECT 1")`` then ``fetchone()`` on an autocommit connection to the local
PostgreSQL, ``--dsn``). Each client runs in four configurations:

``bare``
    no instrumentation;
``upstream``
    the OpenTelemetry instrumentors (``RequestsInstrumentor``, ``HTTPXClientInstrumentor``,
    ``PsycopgInstrumentor``) in their default configuration;
``ours``
    otel-resilience's instrumentors as a user gets them: the endpoint's circuit breaker on
    and retries armed (``resilience=True``; retries as the ``OTEL_RESILIENCE_RETRY_*``
    settings say, with 2 put back if the environment turns them off), which is their
    default for these three libraries;
``floor``
    the least an instrumentor that propagates the trace context can do, on the seam the
    products hook (``requests.sessions.Session.send``, ``httpx.HTTPTransport.handle_request``,
    ``psycopg.Cursor.execute``): start a CLIENT span, which the sampler drops, make it
    current while the call runs, ``opentelemetry.propagate.inject`` the trace context into
    the outgoing request's headers (HTTP only: a database call has no headers), end the
    span. No attributes, no histogram, no breaker. Both products pay this much: a
    propagating instrumentor must start the span to have a context to inject, and the
    injected ``traceparent`` header (sent even for a dropped trace, with its sampled flag
    off, so that the server drops it too) is then one more header the HTTP library
    processes and sends: a cost in the library, not in the instrumentor, and a sizeable
    share of either product's overhead on a request that is otherwise cheap.

``database`` is added to ``OTEL_SEMCONV_STABILITY_OPT_IN`` before any instrumentor is
instrumented, as ``db_overhead.py`` does: without it upstream's psycopg instrumentor records
no duration histogram, and would be compared doing less than ours. The HTTP conventions are
left as the environment has them (unset: upstream emits the old ``http.client.duration``).

The blocks, rounds and their rotating order, the calibration on the bare client and the
switchboard that instruments one configuration at a time and checks that the originals are
back afterwards are the harness's (see its docstring). The figures are medians over rounds:
µs per call and the overhead of each configuration over ``bare`` in the same round.

For information, the sampler's decision alone, without a call around it:
``tracer.start_span(...)`` then ``end()`` of a span the sampler drops (a trace id drawn,
the sampler asked, a non-recording span made), measured in its own blocks after the rounds,
the median over them; and the same plus one histogram point recorded through the SDK.

Checks: with this sampler, no span may reach the exporter, for either product (a benchmark
that measured recording spans by mistake would compare the wrong thing, silently); the
duration histograms must still hold one point per call, which shows that each instrumentor
was active and recording its metrics while its spans were dropped; and ours' breakers, by
their ``resilience.circuit_breaker.calls`` metric, must have counted every call made under
ours (and psycopg's every connect), which shows that resilience was on.

Target (the issue that asked for it): ours' overhead <= 0.25 x upstream's, per client, in
CPU time, in the same run, stated beyond the SDK's own floor (the project's rule where the
SDK is on the path): the judged ratio is (ours - floor) / (upstream - floor), each the
median over rounds of that round's difference, with a 90% bootstrap interval over the
rounds. The raw ratio ours / upstream is printed beside it, for information; the floor's
overhead too. On a shared machine the CPU time of the same work drifts by tens of percent,
so read the interval, not only the median. The exit status is 0 whatever the results.

How to run
----------

From the repository root, with PostgreSQL listening as ``--dsn`` says::

    .venv/bin/python benchmarks/unsampled_overhead.py            # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/unsampled_overhead.py --quick    # about 20 s, noisier
    .venv/bin/python benchmarks/unsampled_overhead.py --profile psycopg   # cProfile of ours
    .venv/bin/python benchmarks/unsampled_overhead.py --instructions requests   # callgrind

``--profile CLIENT`` runs 10,000 calls of that client under ``--profile-config`` (default
``ours``), with the same sampler, in cProfile, and prints our own functions
(``otel_resilience``), then the top functions by own and by cumulative time; cProfile
inflates call-heavy code, so read it for where the time goes, not for how much.

``--instructions [CLIENT ...]`` counts instructions per call with callgrind instead of CPU
time, as ``http_overhead.py --instructions`` does and with the harness's child runner: each
(client, configuration) runs in a child process under ``valgrind --tool=callgrind`` at
100 and at 300 calls, and the difference of the two totals over 200 is one call's
instructions, start-up and warm-up cancelling out. Deterministic to a fraction of a
percent where CPU time varies by tens (for HTTP; psycopg's counts move by tens of
thousands between runs, bare 45k then 69k per call: how often the driver polls the socket
before PostgreSQL's answer is there depends on timing); blind to cache misses and the
kernel. It prints the same figures and ratios as the CPU table (no interval: there is
nothing to resample); about 10 minutes for the three clients (needs ``valgrind``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import gc
import http.server
import os
import select
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import requests
from _overhead_harness import (
    INSTRUCTION_COUNTS,
    Bench,
    BlockRunner,
    Configuration,
    Elapsed,
    Results,
    Settings,
    Suite,
    Telemetry,
    _collected,
    add_profile_arguments,
    argument_parser,
    armed_retries,
    chosen_settings,
    floor_instruments,
    instructions_child,
    machine,
    make_telemetry,
    mode,
    print_measurements,
    print_notes,
    profile,
    ratio_interval,
    resilience_on,
    table,
    unwrap,
    version,
)
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.metrics.export import NumberDataPoint
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

TARGET_RATIO = 0.25
"""Ours' overhead over bare, at most this times upstream's, when the sampler drops the call."""
SAMPLER_VARIABLES = {
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0",
}
EXPECTED_SAMPLER: Sampler = ParentBased(TraceIdRatioBased(0.0))
SEMCONV_VARIABLE = "OTEL_SEMCONV_STABILITY_OPT_IN"
DEFAULT_DSN = "host=127.0.0.1 dbname=test user=postgres"
STATEMENT = "SELECT 1"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"

CLIENTS = ("requests", "httpx-sync", "psycopg")
FAMILY = {"requests": "requests", "httpx-sync": "httpx", "psycopg": "psycopg"}
WARMUP_CALLS = 20
HTTP_DURATION = ("http.client.request.duration", "http.client.duration")
DB_DURATION = "db.client.operation.duration"
FLOOR_HISTOGRAM = "benchmark.floor.duration"
FLOOR_LABEL = "sampler-floor"
PROPAGATION_FLOOR_SCOPE = "benchmark.propagation_floor"
BREAKER_CALLS = "resilience.circuit_breaker.calls"
BREAKER_NAME = "resilience.circuit_breaker.name"
BREAKER_CLIENTS = {"http://": ("requests", "httpx-sync"), "postgresql://": ("psycopg",)}
"""Ours' breakers by the scheme their names start with, and the clients each guards."""

FULL = Settings(rounds=45, block_seconds=0.08, calibration=200)
QUICK = Settings(rounds=9, block_seconds=0.05, calibration=100)


@dataclass(frozen=True)
class FloorSettings:
    """How the sampler floor is measured: ``blocks`` blocks of ``calls`` spans each."""

    blocks: int
    calls: int


FULL_FLOOR = FloorSettings(blocks=15, calls=10_000)
QUICK_FLOOR = FloorSettings(blocks=7, calls=5_000)


def drop_every_trace() -> None:
    """Make the SDK's ``TracerProvider()`` build the sampler a deployment would, from its
    environment; before :func:`make_telemetry`, which takes no sampler of its own."""
    os.environ.update(SAMPLER_VARIABLES)


def opt_in_database_semconv() -> None:
    """Put ``database`` into ``OTEL_SEMCONV_STABILITY_OPT_IN``, keeping what else it says.

    opentelemetry-instrumentation reads the variable once, at the first ``instrument()`` of
    any instrumentor in the process: this must run before that.
    """
    given = [part.strip() for part in os.environ.get(SEMCONV_VARIABLE, "").split(",")]
    given = [part for part in given if part]
    if not any(part.startswith("database") for part in given):
        os.environ[SEMCONV_VARIABLE] = ",".join([*given, "database"])


def checked_sampler(telemetry: Telemetry) -> str:
    """The provider's sampler, described; exits if it would keep any trace."""
    description = telemetry.tracer_provider.sampler.get_description()
    if description != EXPECTED_SAMPLER.get_description():
        sys.exit(f"the tracer provider samples with {description}, not the ratio-0 sampler")
    return description


# --- the HTTP server ---------------------------------------------------------------------------


class _FixedResponseHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET on a keep-alive connection with ``RESPONSE``, in one write."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.wfile.write(RESPONSE)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a line per request would cost the server more than the answer."""


def serve() -> None:
    """``--serve``: print the port, answer until standard input closes (the parent went)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FixedResponseHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()


@contextlib.contextmanager
def own_server() -> Iterator[str]:
    """A URL of this script's ``--serve`` in a subprocess: its CPU is not this process's."""
    command = [sys.executable, os.path.abspath(__file__), "--serve"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if ready else ""
        if not line.strip().isdigit():
            raise RuntimeError(f"the server subprocess did not start (said {line!r})")
        yield f"http://127.0.0.1:{int(line)}/items?id=1"
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def http_server() -> tuple[contextlib.AbstractContextManager[str], str]:
    """``http_overhead.py``'s server subprocess if that script imports, else this one's.

    ``http_overhead`` imports parts of the core that are being moved; a failed import
    costs this benchmark nothing but the server's provenance, said in the header.
    """
    try:
        import http_overhead
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        return own_server(), f"this script's own (http_overhead.py cannot be imported: {reason})"
    return http_overhead.running_server("process"), "http_overhead.py's, in a subprocess"


# --- the floor instrumentors ------------------------------------------------------------------

Hook = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


def propagating_hook(tracer: trace.Tracer, *, headers: bool) -> Hook:
    """A ``wrapt`` wrapper doing what any instrumentor that propagates context must do.

    The span is started (the sampler drops it), made current around the call and ended,
    with ``attach``/``detach`` rather than ``start_as_current_span``: the floor is the
    cheapest way to do it, not a convenient one. With ``headers``, the call's first argument
    is the outgoing request (``requests``' ``PreparedRequest``, ``httpx.Request``), whose
    headers get the trace context: ``traceparent`` with the sampled flag off, then sent.
    """
    client = trace.SpanKind.CLIENT
    attach, detach = context.attach, context.detach
    set_span_in_context, inject = trace.set_span_in_context, propagate.inject

    if headers:

        def http_hook(
            wrapped: Any, instance: Any, args: tuple[Any, ...], kw: dict[str, Any]
        ) -> Any:
            request = args[0]
            span = tracer.start_span(request.method, kind=client)
            token = attach(set_span_in_context(span))
            try:
                inject(request.headers)
                return wrapped(*args, **kw)
            finally:
                detach(token)
                span.end()

        return http_hook

    def call_hook(wrapped: Any, instance: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
        span = tracer.start_span("execute", kind=client)
        token = attach(set_span_in_context(span))
        try:
            return wrapped(*args, **kw)
        finally:
            detach(token)
            span.end()

    return call_hook


class _PropagationFloor:
    """The ``floor`` configuration's instrumentor: :func:`propagating_hook` on ``hooks``."""

    hooks: tuple[tuple[type, str], ...] = ()
    headers = True

    def instrument(self, **kwargs: Any) -> None:
        import wrapt

        tracer = trace.get_tracer(
            PROPAGATION_FLOOR_SCOPE, tracer_provider=kwargs["tracer_provider"]
        )
        for owner, name in self.hooks:
            wrapt.wrap_function_wrapper(owner, name, propagating_hook(tracer, headers=self.headers))

    def uninstrument(self, **kwargs: Any) -> None:
        for owner, name in self.hooks:
            unwrap(owner, name)


class RequestsFloor(_PropagationFloor):
    hooks = ((requests.Session, "send"),)


class HttpxFloor(_PropagationFloor):
    """The sync transport only: the async one is not measured here."""

    hooks = ((httpx.HTTPTransport, "handle_request"),)


class PsycopgFloor(_PropagationFloor):
    """``Cursor.execute``, which ours wraps too (upstream swaps the cursor class at connect)."""

    hooks = ((psycopg.Cursor, "execute"),)
    headers = False


def checked_propagation(telemetry: Telemetry) -> str:
    """What the floor injects under a dropped span; exits if it injects no ``traceparent``
    (the floor would then leave out the header every propagating instrumentor adds)."""
    tracer = trace.get_tracer(PROPAGATION_FLOOR_SCOPE, tracer_provider=telemetry.tracer_provider)
    span = tracer.start_span("GET", kind=trace.SpanKind.CLIENT)
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    span.end()
    if "traceparent" not in carrier:
        sys.exit(f"the global propagator injects no traceparent under a dropped span: {carrier}")
    return ", ".join(f"{name}: {value}" for name, value in carrier.items())


# --- configurations ----------------------------------------------------------------------------

UPSTREAM = {
    "requests": ("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
    "httpx": ("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
    "psycopg": ("opentelemetry.instrumentation.psycopg", "PsycopgInstrumentor"),
}
OURS = {
    "requests": ("otel_resilience_instrumentation_requests", "RequestsInstrumentor"),
    "httpx": ("otel_resilience_instrumentation_httpx", "HTTPXClientInstrumentor"),
    "psycopg": ("otel_resilience_instrumentation_psycopg", "PsycopgInstrumentor"),
}
FLOOR = {
    "requests": ("__main__", "RequestsFloor"),
    "httpx": ("__main__", "HttpxFloor"),
    "psycopg": ("__main__", "PsycopgFloor"),
}
"""The floor's instrumentors, loaded by the switchboard from this script (run as a file)."""
CONFIGURATIONS = (
    Configuration("bare", {}),
    Configuration("floor", FLOOR),
    Configuration("upstream", UPSTREAM),
    Configuration("ours", OURS, resilience_on),
)
JUDGED = ("bare", "floor", "upstream", "ours")
"""The configurations the target table needs measured."""
PSYCOPG_HOOKS: dict[str, tuple[object, str]] = {
    "psycopg.connect": (psycopg, "connect"),
    **{
        f"psycopg.{owner.__name__}.{name}": (owner, name)
        for owner, name in (
            (psycopg.Connection, "connect"),
            (psycopg.AsyncConnection, "connect"),
            (psycopg.Connection, "commit"),
            (psycopg.Connection, "rollback"),
            (psycopg.AsyncConnection, "commit"),
            (psycopg.AsyncConnection, "rollback"),
            (psycopg.Cursor, "execute"),
            (psycopg.Cursor, "executemany"),
            (psycopg.ServerCursor, "execute"),
            (psycopg.AsyncCursor, "execute"),
            (psycopg.AsyncCursor, "executemany"),
            (psycopg.AsyncServerCursor, "execute"),
        )
    },
}
HOOKS: dict[str, tuple[object, str]] = {
    "requests.Session.send": (requests.Session, "send"),
    "httpx.HTTPTransport.handle_request": (httpx.HTTPTransport, "handle_request"),
    "httpx.AsyncHTTPTransport.handle_async_request": (
        httpx.AsyncHTTPTransport,
        "handle_async_request",
    ),
    **PSYCOPG_HOOKS,
}
"""Every place either product's instrumentors hook: each is checked to be back after a block."""

SUITE = Suite(
    clients=CLIENTS,
    family=FAMILY,
    configurations=CONFIGURATIONS,
    hooks=HOOKS,
    family_hooks={
        "requests": ("requests.Session.send",),
        "httpx": (
            "httpx.HTTPTransport.handle_request",
            "httpx.AsyncHTTPTransport.handle_async_request",
        ),
        "psycopg": tuple(PSYCOPG_HOOKS),
    },
    our_histogram_scope="otel_resilience.instrumentation.http",
    duration_histograms=(*HTTP_DURATION, DB_DURATION),
    warmup=WARMUP_CALLS,
    calibrate_on="bare",
    minimum_count=50,
    unit="call",
    units="calls",
    per_unit_header="µs/call",
    per_block_header="calls/block",
    done="made",
    points="duration",
    histogram_label="duration histogram",
    decimals=2,
    untraced={
        (configuration.name, client): "the sampler drops every trace"
        for configuration in CONFIGURATIONS
        for client in CLIENTS
    },
)

DURATION_SCOPES = {
    ("ours", "requests"): "otel_resilience.instrumentation.http",
    ("ours", "httpx-sync"): "otel_resilience.instrumentation.http",
    ("ours", "psycopg"): "otel_resilience.instrumentation.db",
    ("upstream", "requests"): "opentelemetry.instrumentation.requests",
    ("upstream", "httpx-sync"): "opentelemetry.instrumentation.httpx",
    ("upstream", "psycopg"): "opentelemetry.instrumentation.psycopg",
}
"""The instrumentation scope whose duration histogram holds a (configuration, client)'s calls:
ours records every HTTP adapter's in one scope, and every database adapter's in another."""


# --- the clients -------------------------------------------------------------------------------


def make_runners(url: str, dsn: str) -> dict[str, BlockRunner]:
    """A block runner per client: a fresh session, client or connection per block, made
    after instrumenting, so that either hooking style is covered."""

    def requests_block(warmup: int, count: int) -> Elapsed:
        with requests.Session() as session:
            session.trust_env = False  # no proxy from the environment: 127.0.0.1 only
            for _ in range(warmup):
                session.get(url).raise_for_status()
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(count):
                session.get(url)
            elapsed = time.perf_counter() - started, time.process_time() - cpu_started
            session.get(url).raise_for_status()
        return elapsed

    def httpx_block(warmup: int, count: int) -> Elapsed:
        with httpx.Client(trust_env=False) as client:
            for _ in range(warmup):
                client.get(url).raise_for_status()
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(count):
                client.get(url)
            elapsed = time.perf_counter() - started, time.process_time() - cpu_started
            client.get(url).raise_for_status()
        return elapsed

    def psycopg_block(warmup: int, count: int) -> Elapsed:
        with psycopg.connect(dsn, autocommit=True) as connection:
            cursor = connection.cursor()
            for _ in range(warmup):
                cursor.execute(STATEMENT)
                cursor.fetchone()
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(count):
                cursor.execute(STATEMENT)
                cursor.fetchone()
            elapsed = time.perf_counter() - started, time.process_time() - cpu_started
            cursor.execute(STATEMENT)
            row = cursor.fetchone()
        if row != (1,):
            raise RuntimeError(f"psycopg: {STATEMENT} returned {row!r}")
        return elapsed

    return {"requests": requests_block, "httpx-sync": httpx_block, "psycopg": psycopg_block}


def postgresql_version(dsn: str) -> str | None:
    """The server's version, or None with a note if it cannot be reached."""
    try:
        with psycopg.connect(dsn, connect_timeout=5) as connection:
            number = connection.info.server_version
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        print(f"note: psycopg skipped: {dsn!r} cannot be reached ({reason})")
        return None
    return f"{number // 10000}.{number % 10000}"


# --- the floor ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplerFloor:
    """CPU µs per call, medians over blocks."""

    span: float
    """``start_span()`` + ``end()`` of a dropped span."""
    span_and_histogram: float
    """The same and one SDK histogram point."""
    spans_started: int
    """Dropped spans the floor made, which the exporter must not see either."""


def measure_floor(telemetry: Telemetry, settings: FloorSettings) -> SamplerFloor:
    """The sampler's decision alone, then with a histogram point; blocks alternate."""
    providers = {
        "tracer_provider": telemetry.tracer_provider,
        "meter_provider": telemetry.meter_provider,
    }
    tracer, histogram = floor_instruments(providers, FLOOR_HISTOGRAM)
    attributes = {"http.request.method": "GET", "server.address": "127.0.0.1"}
    client = trace.SpanKind.CLIENT
    perf_counter = time.perf_counter
    probe = tracer.start_span("GET", kind=client, attributes=attributes)
    kept = probe.is_recording() or probe.get_span_context().trace_flags.sampled
    probe.end()  # after the question: an ended span says it is not recording
    if kept:
        sys.exit("the floor's span was kept: the sampler is not dropping traces")

    def spans_only(calls: int) -> float:
        started = time.process_time()
        for _ in range(calls):
            tracer.start_span("GET", kind=client, attributes=attributes).end()
        return time.process_time() - started

    def spans_and_points(calls: int) -> float:
        started = time.process_time()
        for _ in range(calls):
            began = perf_counter()
            span = tracer.start_span("GET", kind=client, attributes=attributes)
            histogram.record(perf_counter() - began, attributes)
            span.end()
        return time.process_time() - started

    telemetry.exporter.label = FLOOR_LABEL
    spans_only(1000)
    spans_and_points(1000)
    span_samples, point_samples = [], []
    for _ in range(settings.blocks):
        gc.collect()
        span_samples.append(spans_only(settings.calls) / settings.calls * 1e6)
        point_samples.append(spans_and_points(settings.calls) / settings.calls * 1e6)
    telemetry.flush()
    return SamplerFloor(
        statistics.median(span_samples),
        statistics.median(point_samples),
        spans_started=1 + 2 * (1000 + settings.blocks * settings.calls),
    )


# --- reporting ---------------------------------------------------------------------------------


def beyond(minuend: Sequence[float], subtrahend: Sequence[float]) -> list[float]:
    """Per round: one configuration's overhead minus another's, measured in the same round."""
    return [a - b for a, b in zip(minuend, subtrahend, strict=True)]


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf")


def judgement(judged: float) -> str:
    return "PASS" if judged <= TARGET_RATIO else "FAIL"


TARGET_HEADERS = [
    "client",
    "bare",
    "floor +",
    "ours +",
    "upstream +",
    "ours/upstream",
    "ours-floor",
    "upstream-floor",
    "beyond floor",
]


def print_targets(results: Results, clients: Sequence[str], floor: SamplerFloor) -> None:
    print(
        f"\nTarget: ours' overhead beyond the floor <= {TARGET_RATIO} x upstream's when the "
        "sampler drops the call, per client, in CPU µs per call: judged on (ours - floor) / "
        "(upstream - floor), each the median over rounds of that round's difference (90% "
        "interval: where it falls in 90% of bootstrap resamples of the rounds); "
        "ours/upstream, the raw ratio of the overheads over bare, for information"
    )
    rows = []
    for client in clients:
        if not all(results.has(name, client) for name in JUDGED):
            rows.append([client, *[""] * (len(TARGET_HEADERS) - 1), "", "SKIP"])
            continue
        bare = statistics.median(results.samples("cpu", "bare", client))
        overheads = {name: results.overheads("cpu", name, client) for name in JUDGED[1:]}
        floor_over, ours, upstream = (
            statistics.median(overheads[name]) for name in ("floor", "ours", "upstream")
        )
        ours_beyond = beyond(overheads["ours"], overheads["floor"])
        upstream_beyond = beyond(overheads["upstream"], overheads["floor"])
        judged = ratio(statistics.median(ours_beyond), statistics.median(upstream_beyond))
        low, high = ratio_interval(ours_beyond, upstream_beyond)
        rows.append(
            [
                client,
                f"{bare:,.1f}",
                f"{floor_over:,.2f}",
                f"{ours:,.2f}",
                f"{upstream:,.2f}",
                f"{ratio(ours, upstream):.2f}x",
                f"{statistics.median(ours_beyond):,.2f}",
                f"{statistics.median(upstream_beyond):,.2f}",
                f"{judged:.2f}x",
                f"{low:.2f}-{high:.2f}",
                judgement(judged),
            ]
        )
    print(table([*TARGET_HEADERS, "90% interval", "result"], rows))
    print(
        "µs per call: bare; overhead over bare in the same round (+) of the floor (span "
        "dropped, made current, trace context injected), ours and upstream; ours-floor and "
        "upstream-floor: what each adds beyond the floor"
    )
    print(
        f"Sampler decision alone, for information: start_span() + end() of a dropped span "
        f"{floor.span:.2f} µs; with one SDK histogram point, {floor.span_and_histogram:.2f} µs"
    )


def breaker_calls(telemetry: Telemetry) -> dict[str, int]:
    """Calls per circuit breaker, by its ``resilience.circuit_breaker.calls`` metric (every
    outcome), as the last collection read it: ours' breakers were on if they counted."""
    calls: dict[str, int] = {}
    data = telemetry.metrics.data
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name != BREAKER_CALLS:
                    continue
                for point in metric.data.data_points:
                    if isinstance(point, NumberDataPoint):
                        name = str(point.attributes.get(BREAKER_NAME) if point.attributes else "")
                        calls[name] = calls.get(name, 0) + int(point.value)
    return calls


def print_checks(
    results: Results, telemetry: Telemetry, floor: SamplerFloor, sampler: str, injected: str
) -> None:
    """No span exported, for either product; yet one duration point per call, and ours'
    breakers counting every call: the instrumentors were active, their spans dropped."""
    print(f"\nChecks (sampler: {sampler})")
    print(f"  the floor injects under a dropped span: {injected}")
    spans: dict[str, int] = {}
    for (label, _), count in telemetry.exporter.counts.items():
        configuration = label.split("/", 1)[0]
        spans[configuration] = spans.get(configuration, 0) + count
    made = {
        name: sum(
            calls for (configuration, _), calls in results.sent.items() if configuration == name
        )
        for name in ("ours", "upstream", "floor")
    }
    exported = sum(spans.values())
    verdict = (
        "ok: no span reached the exporter"
        if exported == 0
        else "WRONG: spans were recorded, so this measured recording spans"
    )
    print(
        f"  spans exported: ours {spans.get('ours', 0):,} for {made['ours']:,} calls, upstream "
        f"{spans.get('upstream', 0):,} for {made['upstream']:,} calls, the floor "
        f"{spans.get('floor', 0):,} for {made['floor']:,} calls, the sampler decision "
        f"{spans.get(FLOOR_LABEL, 0):,} for {floor.spans_started:,} spans started ({verdict})"
    )
    for (label, scope), count in sorted(telemetry.exporter.counts.items()):
        print(f"    {label}: {count:,} spans of {scope}")
    seen = telemetry.collect(SUITE.duration_histograms)
    expected: dict[str, int] = {}
    for key, scope in DURATION_SCOPES.items():
        expected[scope] = expected.get(scope, 0) + results.sent.get(key, 0)
    for scope, calls in sorted(expected.items()):
        if calls == 0:
            continue
        points = seen.duration_points.get(scope, 0)
        verdict = "ok" if points == calls else "MISMATCH"
        print(f"  duration points of {scope}: {points:,} for {calls:,} calls ({verdict})")
    counted = breaker_calls(telemetry)
    for prefix, clients in BREAKER_CLIENTS.items():
        # psycopg's breaker also guards each block's connect
        under_ours = sum(
            results.sent.get(("ours", client), 0)
            + (results.connections.get(("ours", client), 0) if prefix != "http://" else 0)
            for client in clients
        )
        if under_ours == 0:
            continue
        breakers = [name for name in counted if name.startswith(prefix)]
        total = sum(counted[name] for name in breakers)
        verdict = "ok" if total == under_ours else "MISMATCH"
        print(
            f"  breaker calls of {', '.join(breakers) or prefix + '...'}: {total:,}; "
            f"under ours {under_ours:,} ({verdict})"
        )
    print("Metrics recorded, per instrumentation scope")
    for scope, names in sorted(seen.names.items()):
        print(f"  {scope}: {', '.join(sorted(names))}")


def print_header(measured: str, server: str) -> None:
    """``measured``: the mode line's start, how the figures are taken."""
    retry = armed_retries()
    print("The unsampled call: otel-resilience vs the upstream OpenTelemetry instrumentors")
    print(
        f"{machine()} (load average {os.getloadavg()[0]:.1f} at the start); requests "
        f"{version('requests')}, httpx {version('httpx')}, psycopg {version('psycopg')}, "
        f"PostgreSQL {server}, opentelemetry-sdk {version('opentelemetry-sdk')}, upstream "
        f"instrumentations {version('opentelemetry-instrumentation-requests')} / "
        f"{version('opentelemetry-instrumentation-httpx')} / "
        f"{version('opentelemetry-instrumentation-psycopg')}"
    )
    sampler = ", ".join(f"{name}={value}" for name, value in SAMPLER_VARIABLES.items())
    print(
        f"{measured}; sampler: {sampler}; "
        f"{SEMCONV_VARIABLE}={os.environ.get(SEMCONV_VARIABLE, '')!r}; ours: breakers on, "
        f"retries armed (max_retries={retry.max_retries}, budget {retry.budget_ratio:g}, "
        f"jitter {retry.jitter})"
    )


# --- entry points ------------------------------------------------------------------------------


def reachable_clients(dsn: str) -> tuple[list[str], str]:
    server = postgresql_version(dsn)
    if server is None:
        return [client for client in CLIENTS if client != "psycopg"], "unreachable"
    return list(CLIENTS), server


def benchmark(arguments: argparse.Namespace) -> None:
    settings = chosen_settings(arguments, FULL, QUICK)
    floor_settings = QUICK_FLOOR if arguments.quick else FULL_FLOOR
    clients, database = reachable_clients(arguments.dsn)
    print_header(mode(SUITE, settings, quick=arguments.quick), database)
    started = time.perf_counter()
    telemetry = make_telemetry()
    sampler = checked_sampler(telemetry)
    injected = checked_propagation(telemetry)
    server, provenance = http_server()
    print(f"HTTP server: {provenance}", flush=True)
    with server as url:
        bench = Bench(SUITE, telemetry, make_runners(url, arguments.dsn), clients)
        bench.run(settings)
    floor = measure_floor(telemetry, floor_settings)
    print_notes(bench.switchboard)
    print_measurements(SUITE, bench.results, settings, bench.clients)
    print_targets(bench.results, bench.clients, floor)
    print_checks(bench.results, telemetry, floor, sampler, injected)
    telemetry.shutdown()
    print(f"\nTotal time: {time.perf_counter() - started:.1f} s")


def run_profile(arguments: argparse.Namespace) -> None:
    """cProfile of one client under one configuration, with the ratio-0 sampler."""
    telemetry = make_telemetry()
    checked_sampler(telemetry)
    server, provenance = http_server()
    print(f"HTTP server: {provenance}")
    try:
        with server as url:
            profile(
                SUITE,
                telemetry,
                make_runners(url, arguments.dsn)[arguments.profile],
                client=arguments.profile,
                configuration_name=arguments.profile_config,
                count=arguments.profile_count,
                warmup_count=1000,
                our_code=True,
            )
    finally:
        telemetry.shutdown()


def callgrind_total(job: tuple[str, str, int], url: str, dsn: str) -> int | None:
    """Instructions of one child run under callgrind; None if the configuration was skipped."""
    client, configuration, count = job
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        os.path.abspath(__file__),
        "--dsn",
        dsn,
        "--instructions-child",
        client,
        configuration,
    ]
    environment = {**os.environ, "INSTRUCTIONS_COUNT": str(count), "INSTRUCTIONS_URL": url}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if "skipped:" in done.stdout:
        return None
    total = _collected(done.stderr)
    if total is None:
        raise RuntimeError(f"callgrind run {job} failed: {done.stderr[-2000:]}")
    return total


def print_instruction_counts(
    totals: Mapping[tuple[str, str, int], int | None], clients: Sequence[str]
) -> None:
    few, many = INSTRUCTION_COUNTS
    print(
        f"\nInstructions per call (callgrind), the sampler dropping every trace; + = overhead "
        f"over bare; target: (ours - floor) / (upstream - floor) <= {TARGET_RATIO:g} "
        "(beyond floor); ours/upstream, the raw ratio, for information"
    )
    rows = []
    for client in clients:
        per_call: dict[str, float] = {}
        for configuration in JUDGED:
            low, high = totals[client, configuration, few], totals[client, configuration, many]
            if low is not None and high is not None:
                per_call[configuration] = (high - low) / (many - few)
        if len(per_call) < len(JUDGED):
            rows.append([client, *[""] * (len(TARGET_HEADERS) - 1), "SKIP"])
            continue
        bare = per_call["bare"]
        floor, ours, upstream = (per_call[name] - bare for name in ("floor", "ours", "upstream"))
        judged = ratio(ours - floor, upstream - floor)
        rows.append(
            [
                client,
                f"{bare:,.0f}",
                f"{floor:,.0f}",
                f"{ours:,.0f}",
                f"{upstream:,.0f}",
                f"{ratio(ours, upstream):.2f}x",
                f"{ours - floor:,.0f}",
                f"{upstream - floor:,.0f}",
                f"{judged:.2f}x",
                judgement(judged),
            ]
        )
    print(table([*TARGET_HEADERS, "result"], rows))


def run_instructions(arguments: argparse.Namespace) -> None:
    """``--instructions``: callgrind's instructions per call, bare / floor / ours / upstream."""
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install -y valgrind)")
        return
    reachable, database = reachable_clients(arguments.dsn)
    clients = [client for client in arguments.instructions if client in reachable]
    few, many = INSTRUCTION_COUNTS
    print_header(f"mode: instructions (callgrind, {few} and {many} calls per run)", database)
    started = time.perf_counter()
    print(f"injected under a dropped span: {checked_propagation(make_telemetry())}")
    jobs = [
        (client, configuration, count)
        for client in clients
        for configuration in JUDGED
        for count in INSTRUCTION_COUNTS
    ]
    server, provenance = http_server()
    print(f"HTTP server: {provenance}")
    print(
        f"callgrind: {len(jobs)} runs of {' and '.join(map(str, INSTRUCTION_COUNTS))} calls, "
        "two at a time",
        flush=True,
    )
    with server as url, concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda job: callgrind_total(job, url, arguments.dsn), jobs)
        totals = dict(zip(jobs, results, strict=True))
    print_instruction_counts(totals, clients)
    print(f"\nTotal time: {time.perf_counter() - started:.1f} s")


def run_instructions_child(arguments: argparse.Namespace) -> None:
    """One callgrind run: the harness's child runner with this script's SDK and clients."""
    client, configuration = arguments.instructions_child
    telemetry = make_telemetry()
    checked_sampler(telemetry)
    runner = make_runners(os.environ["INSTRUCTIONS_URL"], arguments.dsn)[client]
    instructions_child(SUITE, telemetry, runner, client=client, configuration=configuration)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--dsn", default=DEFAULT_DSN, help=f"PostgreSQL to run against (default: {DEFAULT_DSN})"
    )
    add_profile_arguments(parser, SUITE, default=10_000)
    parser.add_argument(
        "--instructions",
        nargs="*",
        choices=CLIENTS,
        help="count instructions per call with callgrind instead (all clients by default; "
        "about 10 minutes for the three)",
    )
    parser.add_argument("--instructions-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.serve:
        serve()
        return
    drop_every_trace()  # before the tracer provider is made
    opt_in_database_semconv()  # before any instrumentor is instrumented
    if arguments.instructions_child:
        run_instructions_child(arguments)
    elif arguments.instructions is not None:
        arguments.instructions = arguments.instructions or list(CLIENTS)
        run_instructions(arguments)
    elif arguments.profile:
        run_profile(arguments)
    else:
        benchmark(arguments)


if __name__ == "__main__":
    main()
