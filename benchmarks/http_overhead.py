"""Per-request overhead of our HTTP instrumentations, next to the upstream OpenTelemetry ones.

What is measured
----------------

Microseconds per request against a local keep-alive HTTP/1.1 server on 127.0.0.1 (a fixed
tiny response with ``Content-Length``), for three clients: ``requests`` (one
``requests.Session``), httpx sync (one ``httpx.Client``) and httpx async (one
``httpx.AsyncClient``), each in four configurations measured in the same run:

``bare``
    no instrumentation at all;
``upstream``
    opentelemetry-instrumentation-requests / -httpx (a client span and the duration
    histogram);
``ours``
    otel-resilience's instrumentors: span, duration histogram, the endpoint's circuit
    breaker and retries armed (``resilience=True``; retries as the
    ``OTEL_RESILIENCE_RETRY_*`` settings say, by default up to 2 per idempotent request,
    with 2 put back if the environment turns them off);
``ours-telemetry``
    ours with breakers and retries off (``resilience=False``), i.e. doing upstream's job
    only: for information, it shows what the resilience part costs and is in no target.

Every configuration gets the same real SDK: a ``TracerProvider`` with a
``BatchSpanProcessor`` feeding an exporter that counts and discards the spans (so span
processing costs what it does in production, minus the network), and a ``MeterProvider``
with an ``InMemoryMetricReader`` (collected once, at the end). Both are passed to
``instrument()`` as ``tracer_provider=`` / ``meter_provider=`` and are also the global
providers, which the breakers' and retries' own instruments use. Instrumentors are
singletons, so a configuration is instrumented before its blocks and uninstrumented after
them, and the originals (``Session.send``, ``HTTPTransport.handle_request``,
``AsyncHTTPTransport.handle_async_request``) are checked to be back in place; the upstream
and our instrumentors are never active at the same time.

A block is one fresh session or client (created after instrumenting, so either hooking
style is covered), 20 warm-up requests (which open the keep-alive connection), then ``n``
timed requests; ``n`` is calibrated per client on the bare client so that a block takes
about 0.3 s (0.08 s with ``--quick``). Blocks run in rounds: every configuration and client
once per round, in an order that rotates from round to round, so that machine noise is
spread over all of them. The figures are medians over rounds: µs per request, and the
overhead of each configuration over ``bare`` measured in the same round. The cyclic GC
stays enabled (as in production); the span queue is flushed between blocks, outside the
timing. Spans exported and histogram points are checked against the requests sent.

Target (the HTTP instrumentations issue): for each client, ours' overhead <= 0.5 x the
upstream instrumentor's overhead, in the same run, while doing more. PASS/FAIL is printed
per client; a client whose instrumentor cannot be loaded is skipped with a note (the httpx
instrumentor may not exist yet).

The server: a subprocess, not a thread
--------------------------------------

A server thread in the benchmark's process shares the client's GIL. Measured on the 2-core
development machine, full runs one after the other (``--server thread``, then the default
``--server process``): the in-process server made every bare request slower (requests
303 vs 294 µs, httpx sync 274 vs 238, httpx async 645 vs 591) and the overheads noisier
(interquartile ranges of ours' overhead 79/66/54 µs vs 29/23/34 µs), while the
ours/upstream ratios stayed within that noise (0.93/0.69/0.85 vs 1.03/0.71/0.79). A remote
server takes nothing from the client's process, so the server is a subprocess (this same
script with ``--serve``, a thread per keep-alive connection answering one fixed response)
on the other core: the figures then hold the client's own work and the loopback round trip
only. ``--server thread`` is kept to repeat the comparison.

How to run
----------

From the repository root::

    .venv/bin/python benchmarks/http_overhead.py            # about 85 s on 2 cores
    .venv/bin/python benchmarks/http_overhead.py --quick    # about 15 s, noisier
    .venv/bin/python benchmarks/http_overhead.py --profile requests   # cProfile of ours

``--profile CLIENT`` (``requests``, ``httpx-sync``, ``httpx-async``) runs 5,000 requests of
that client under ``--profile-config`` (default ``ours``) in cProfile and prints the top
functions by own and by cumulative time; cProfile inflates call-heavy code, so read it for
where the time goes, not for how much.

``OTEL_SEMCONV_STABILITY_OPT_IN`` is left as the environment has it: unset, the upstream
instrumentors emit the old HTTP conventions (``http.client.duration`` in ms); set it to
``http`` for the stable ones, which are what ours emits. The exit status is 0 whatever the
results; read the PASS/FAIL lines at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import gc
import importlib
import os
import platform
import pstats
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Protocol

import httpx
import requests
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_resilience._http_client import endpoint_key
from otel_resilience._registry import default_registry
from otel_resilience.config import RetrySettings, current_settings

CLIENTS = ("requests", "httpx-sync", "httpx-async")
FAMILY = {"requests": "requests", "httpx-sync": "httpx", "httpx-async": "httpx"}
WARMUP_REQUESTS = 20
TARGET_RATIO = 0.5
DURATION_HISTOGRAMS = ("http.client.request.duration", "http.client.duration")
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


@dataclass(frozen=True)
class Settings:
    """How long and how often to measure."""

    rounds: int
    block_seconds: float
    warmup_block_requests: int = 200


FULL = Settings(rounds=15, block_seconds=0.3)
QUICK = Settings(rounds=7, block_seconds=0.08, warmup_block_requests=100)


# --- the server ------------------------------------------------------------------------------


def _content_length(head: bytes) -> int:
    start = head.lower().find(b"\r\ncontent-length:")
    if start < 0:
        return 0
    value = head[start + 17 :].split(b"\r\n", 1)[0]
    return int(value.strip() or b"0")


def _serve_connection(connection: socket.socket) -> None:
    """Answer every request on one keep-alive connection with ``RESPONSE``."""
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    with connection:
        while True:
            try:
                chunk = connection.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while (end := buffer.find(b"\r\n\r\n")) >= 0:
                total = end + 4 + _content_length(buffer[:end])
                if len(buffer) < total:
                    break
                buffer = buffer[total:]
                try:
                    connection.sendall(RESPONSE)
                except OSError:
                    return


def _accept_forever(listener: socket.socket) -> None:
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:  # the listener was closed
            return
        threading.Thread(target=_serve_connection, args=(connection,), daemon=True).start()


def _listen() -> socket.socket:
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    threading.Thread(target=_accept_forever, args=(listener,), daemon=True).start()
    return listener


def serve() -> None:
    """``--serve``: print the port, answer until standard input closes (the parent went)."""
    listener = _listen()
    print(listener.getsockname()[1], flush=True)
    sys.stdin.read()
    listener.close()


@contextlib.contextmanager
def running_server(mode: str) -> Iterator[str]:
    """The base URL of a server in a thread of this process or in a subprocess."""
    if mode == "thread":
        listener = _listen()
        try:
            yield f"http://127.0.0.1:{listener.getsockname()[1]}/items?id=1"
        finally:
            listener.close()
        return
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


# --- the SDK -----------------------------------------------------------------------------------


class CountingExporter(SpanExporter):
    """Discards spans, counting them per (block label, instrumentation scope)."""

    def __init__(self) -> None:
        self.label = ""
        self.counts: Counter[tuple[str, str]] = Counter()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        label = self.label
        for span in spans:
            scope = span.instrumentation_scope
            self.counts[label, scope.name if scope is not None else "?"] += 1
        return SpanExportResult.SUCCESS


@dataclass
class Telemetry:
    """The real SDK every configuration is measured with."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    reader: InMemoryMetricReader
    exporter: CountingExporter

    def flush(self) -> None:
        if not self.tracer_provider.force_flush(timeout_millis=30_000):
            raise RuntimeError("the span processor did not flush in 30 s")

    def duration_points(self) -> Counter[str]:
        """Requests recorded in the duration histograms, per instrumentation scope."""
        points: Counter[str] = Counter()
        data = self.reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data is not None else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name not in DURATION_HISTOGRAMS:
                        continue
                    for point in metric.data.data_points:
                        if isinstance(point, HistogramDataPoint):
                            points[scope_metrics.scope.name] += point.count
        return points


def make_telemetry() -> Telemetry:
    exporter = CountingExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider, meter_provider, reader, exporter)


class _SdkFloorInstrumentor:
    """The least any SDK-based instrumentation costs: one span and one histogram point.

    It wraps the same three hooks as ours, starts and ends a CLIENT span (current while the
    request is sent, so it is what a propagator would inject) and records the duration with
    the low-cardinality attributes, and does nothing else: no URL parsing, no semantic
    convention helpers, no propagation, no breaker, no retry. What ``upstream`` and
    ``ours`` add beyond it is their own code's cost; the SDK's share is the same in both.
    """

    hooks: tuple[tuple[type, str], ...] = ()

    def instrument(self, **kwargs: Any) -> None:
        import wrapt

        tracer = trace.get_tracer("benchmark.sdk_floor", tracer_provider=kwargs["tracer_provider"])
        histogram = metrics.get_meter(
            "benchmark.sdk_floor", meter_provider=kwargs["meter_provider"]
        ).create_histogram("http.client.request.duration", unit="s")
        attributes = {"http.request.method": "GET", "server.address": "127.0.0.1"}

        def sync_hook(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            started = time.perf_counter()
            with tracer.start_as_current_span("GET", kind=trace.SpanKind.CLIENT):
                response = wrapped(*args, **kw)
            histogram.record(time.perf_counter() - started, attributes)
            return response

        async def async_hook(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            started = time.perf_counter()
            with tracer.start_as_current_span("GET", kind=trace.SpanKind.CLIENT):
                response = await wrapped(*args, **kw)
            histogram.record(time.perf_counter() - started, attributes)
            return response

        for owner, name in self.hooks:
            hook = async_hook if name == "handle_async_request" else sync_hook
            wrapt.wrap_function_wrapper(owner, name, hook)

    def uninstrument(self, **kwargs: Any) -> None:
        for owner, name in self.hooks:
            setattr(owner, name, vars(owner)[name].__wrapped__)


class SdkFloorRequests(_SdkFloorInstrumentor):
    hooks = ((requests.Session, "send"),)


class SdkFloorHttpx(_SdkFloorInstrumentor):
    hooks = (
        (httpx.HTTPTransport, "handle_request"),
        (httpx.AsyncHTTPTransport, "handle_async_request"),
    )


# --- configurations and instrumentors ----------------------------------------------------------


class Instrumentor(Protocol):
    """What the benchmark uses of an OpenTelemetry ``BaseInstrumentor``."""

    def instrument(self, **kwargs: Any) -> None: ...

    def uninstrument(self, **kwargs: Any) -> None: ...


def _no_options() -> dict[str, Any]:
    return {}


def armed_retries() -> RetrySettings:
    """The environment's retry settings, with retries on even if the environment says 0."""
    retry = current_settings().retry
    return retry if retry.max_retries > 0 else dataclasses.replace(retry, max_retries=2)


def _resilience_on() -> dict[str, Any]:
    return {"resilience": True, "retry": armed_retries()}


def _resilience_off() -> dict[str, Any]:
    return {"resilience": False}


@dataclass(frozen=True)
class Configuration:
    """An instrumentor per library family (none for bare), with extra instrument() options."""

    name: str
    instrumentors: Mapping[str, tuple[str, str]]
    options: Callable[[], dict[str, Any]] = _no_options


UPSTREAM = {
    "requests": ("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
    "httpx": ("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
}
OURS = {
    "requests": ("otel_resilience_instrumentation_requests", "RequestsInstrumentor"),
    "httpx": ("otel_resilience_instrumentation_httpx", "HTTPXClientInstrumentor"),
}
SDK_FLOOR = {
    "requests": ("__main__", "SdkFloorRequests"),
    "httpx": ("__main__", "SdkFloorHttpx"),
}
CONFIGURATIONS = (
    Configuration("bare", {}),
    Configuration("upstream", UPSTREAM),
    Configuration("ours", OURS, _resilience_on),
    Configuration("ours-telemetry", OURS, _resilience_off),
    Configuration("sdk-floor", SDK_FLOOR),
)
TARGETED = ("bare", "upstream", "ours")
OUR_HISTOGRAM_SCOPE = "otel_resilience.instrumentation.http"
OUR_SCOPE_PREFIX = "otel_resilience.instrumentation."


def _hooks() -> dict[str, object]:
    """The functions the instrumentors wrap, as the classes hold them now."""
    return {
        "requests.Session.send": vars(requests.Session)["send"],
        "httpx.HTTPTransport.handle_request": vars(httpx.HTTPTransport)["handle_request"],
        "httpx.AsyncHTTPTransport.handle_async_request": vars(httpx.AsyncHTTPTransport)[
            "handle_async_request"
        ],
    }


ORIGINAL_HOOKS = _hooks()


def load_instrumentor(module_name: str, class_name: str) -> Instrumentor | str:
    """The instrumentor, imported on first use, or why it cannot be had."""
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # a package being written may fail in any way
        return f"{module_name} cannot be imported ({type(error).__name__}: {error})"
    instrumentor_class = getattr(module, class_name, None)
    if instrumentor_class is None:
        return f"{module_name} has no {class_name}"
    instrumentor: Instrumentor = instrumentor_class()
    return instrumentor


class Switchboard:
    """Activates one configuration at a time; knows which (configuration, family) failed."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.active: list[Instrumentor] = []
        self.skipped: dict[tuple[str, str], str] = {}
        self._loaded: dict[tuple[str, str], Instrumentor | str] = {}

    def available(self, configuration: Configuration, client: str) -> bool:
        return (configuration.name, FAMILY[client]) not in self.skipped

    def _instrumentor(self, source: tuple[str, str]) -> Instrumentor | str:
        if source not in self._loaded:
            self._loaded[source] = load_instrumentor(*source)
        return self._loaded[source]

    def activate(self, configuration: Configuration) -> None:
        self.deactivate()
        providers = {
            "tracer_provider": self.telemetry.tracer_provider,
            "meter_provider": self.telemetry.meter_provider,
        }
        for family, source in configuration.instrumentors.items():
            key = (configuration.name, family)
            if key in self.skipped:
                continue
            instrumentor = self._instrumentor(source)
            if isinstance(instrumentor, str):
                self.skipped[key] = instrumentor
                continue
            try:
                instrumentor.instrument(**providers, **configuration.options())
            except Exception as error:
                self.skipped[key] = f"{source[0]}: instrument() raised {error!r}"
                with contextlib.suppress(Exception):
                    instrumentor.uninstrument()
                continue
            self.active.append(instrumentor)

    def deactivate(self) -> None:
        while self.active:
            self.active.pop().uninstrument()
        changed = [name for name, hook in _hooks().items() if hook is not ORIGINAL_HOOKS[name]]
        if changed:
            raise RuntimeError(f"uninstrument() left wrappers in place: {', '.join(changed)}")


# --- the clients -------------------------------------------------------------------------------

Elapsed = tuple[float, float]
"""Wall-clock seconds and this process's CPU seconds (all its threads) over a block."""
BlockRunner = Callable[[str, int, int], Elapsed]
"""(url, warm-up requests, timed requests) -> what the timed requests took."""


def requests_block(url: str, warmup: int, count: int) -> Elapsed:
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment: 127.0.0.1 only
        get = session.get
        for _ in range(warmup):
            get(url).raise_for_status()
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(count):
            get(url)
        elapsed = time.perf_counter() - started, time.process_time() - cpu_started
        get(url).raise_for_status()
    return elapsed


def httpx_block(url: str, warmup: int, count: int) -> Elapsed:
    with httpx.Client(trust_env=False) as client:
        get = client.get
        for _ in range(warmup):
            get(url).raise_for_status()
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(count):
            get(url)
        elapsed = time.perf_counter() - started, time.process_time() - cpu_started
        get(url).raise_for_status()
    return elapsed


async def _httpx_async_block(url: str, warmup: int, count: int) -> Elapsed:
    async with httpx.AsyncClient(trust_env=False) as client:
        get = client.get
        for _ in range(warmup):
            (await get(url)).raise_for_status()
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(count):
            await get(url)
        elapsed = time.perf_counter() - started, time.process_time() - cpu_started
        (await get(url)).raise_for_status()
    return elapsed


def make_runners(loop: asyncio.AbstractEventLoop) -> dict[str, BlockRunner]:
    def httpx_async_block(url: str, warmup: int, count: int) -> Elapsed:
        return loop.run_until_complete(_httpx_async_block(url, warmup, count))

    return {"requests": requests_block, "httpx-sync": httpx_block, "httpx-async": httpx_async_block}


# --- the measurement ---------------------------------------------------------------------------


@dataclass
class Results:
    """µs per request per (clock, configuration, client), one sample per round.

    ``clock`` is ``"cpu"`` (this process's CPU time, every thread: the client's own work,
    the span processor's thread and the GC, without the waits on the server) or ``"wall"``.
    """

    per_request: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    sent: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, configuration: str, client: str, samples: Mapping[str, float]) -> None:
        for clock, sample in samples.items():
            self.per_request.setdefault((clock, configuration, client), []).append(sample)

    def has(self, configuration: str, client: str) -> bool:
        return bool(self.per_request.get(("cpu", configuration, client)))

    def samples(self, clock: str, configuration: str, client: str) -> list[float]:
        return self.per_request[clock, configuration, client]

    def overheads(self, clock: str, configuration: str, client: str) -> list[float]:
        """Per round: µs per request of ``configuration`` minus bare's, same round."""
        pairs = zip(
            self.per_request[clock, configuration, client],
            self.per_request[clock, "bare", client],
            strict=True,
        )
        return [measured - bare for measured, bare in pairs]

    def overhead(self, clock: str, configuration: str, client: str) -> float:
        return statistics.median(self.overheads(clock, configuration, client))


def iqr(samples: Sequence[float]) -> float:
    if len(samples) < 2:
        return 0.0
    quartiles = statistics.quantiles(samples, n=4)
    return quartiles[2] - quartiles[0]


def rotated(items: Sequence[Any], shift: int) -> list[Any]:
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


class Bench:
    """Runs blocks of requests against one server under one configuration at a time."""

    def __init__(self, url: str, telemetry: Telemetry, runners: dict[str, BlockRunner]) -> None:
        self.url = url
        self.telemetry = telemetry
        self.runners = runners
        self.switchboard = Switchboard(telemetry)
        self.results = Results()

    def block(self, configuration: str, client: str, count: int) -> dict[str, float]:
        """µs per request over ``count`` timed requests, by the wall clock and in CPU time."""
        self.telemetry.exporter.label = f"{configuration}/{client}"
        gc.collect()
        wall, cpu = self.runners[client](self.url, WARMUP_REQUESTS, count)
        self.results.sent[configuration, client] += WARMUP_REQUESTS + count + 1
        self.telemetry.flush()
        return {"cpu": cpu / count * 1e6, "wall": wall / count * 1e6}

    def calibrate(self, settings: Settings) -> None:
        """Requests per block for each client, from the bare client's speed."""
        self.switchboard.deactivate()
        for client in CLIENTS:
            per_request = self.block("bare", client, settings.warmup_block_requests)["wall"]
            per_request = min(per_request, self.block("bare", client, 200)["wall"])
            self.results.counts[client] = max(50, round(settings.block_seconds * 1e6 / per_request))

    def run_round(self, settings: Settings, index: int, *, record: bool) -> None:
        for configuration in rotated(CONFIGURATIONS, index):
            self.switchboard.activate(configuration)
            try:
                for client in rotated(CLIENTS, index):
                    if not self.switchboard.available(configuration, client):
                        continue
                    count = self.results.counts[client] if record else WARMUP_REQUESTS * 5
                    per_request = self.block(configuration.name, client, count)
                    if record:
                        self.results.add(configuration.name, client, per_request)
            finally:
                self.switchboard.deactivate()

    def run(self, settings: Settings) -> Results:
        self.calibrate(settings)
        self.run_round(settings, 0, record=False)  # first use: imports, breakers, instruments
        for index in range(settings.rounds):
            self.run_round(settings, index, record=True)
            print(".", end="", flush=True)
        print()
        return self.results


# --- reporting ---------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Plain-text table: the first ``left`` columns and the last left-aligned, others right."""
    everything = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in everything) for i in range(len(headers))]
    last = len(headers) - 1
    lines = []
    for row in everything:
        cells = [
            cell.ljust(width) if i < left or i == last else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def print_measurements(results: Results, settings: Settings) -> None:
    for clock, title in (("cpu", "CPU µs"), ("wall", "wall-clock µs")):
        print(
            f"\n{title} per request, median of {settings.rounds} rounds (IQR); "
            "overhead = minus bare in the same round"
        )
        rows = []
        for client in CLIENTS:
            for configuration in CONFIGURATIONS:
                name = configuration.name
                if not results.has(name, client):
                    rows.append([client, name, "skipped", "", "", "", ""])
                    continue
                samples = results.samples(clock, name, client)
                overhead, spread = "", ""
                if name != "bare":
                    overhead = f"{results.overhead(clock, name, client):,.1f}"
                    spread = f"{iqr(results.overheads(clock, name, client)):,.1f}"
                rows.append(
                    [
                        client,
                        name,
                        f"{statistics.median(samples):,.1f}",
                        f"{iqr(samples):,.1f}",
                        overhead,
                        spread,
                        f"{results.counts[client]:,}",
                    ]
                )
        headers = ["client", "configuration", "µs/req", "IQR", "overhead µs", "IQR", "req/block"]
        print(table(headers, rows, left=2))


def print_targets(results: Results, skipped: Mapping[tuple[str, str], str]) -> None:
    print(
        f"\nTarget: ours' overhead <= {TARGET_RATIO} x upstream's, per client, in CPU time "
        "(the wall-clock ratio, noisier, for information)"
    )
    rows = []
    for client in CLIENTS:
        if not all(results.has(name, client) for name in TARGETED):
            reasons = [
                reason
                for (name, family), reason in skipped.items()
                if family == FAMILY[client] and name in TARGETED
            ]
            rows.append([client, "", "", "", "", "SKIP", "; ".join(reasons) or "not measured"])
            continue
        upstream = results.overhead("cpu", client=client, configuration="upstream")
        ours = results.overhead("cpu", client=client, configuration="ours")
        ratio = ours / upstream if upstream > 0 else float("inf")
        wall_upstream = results.overhead("wall", client=client, configuration="upstream")
        wall_ours = results.overhead("wall", client=client, configuration="ours")
        wall_ratio = wall_ours / wall_upstream if wall_upstream > 0 else float("inf")
        verdict = "PASS" if ours <= TARGET_RATIO * upstream else "FAIL"
        extra = []
        if results.has("ours-telemetry", client):
            telemetry_only = results.overhead("cpu", "ours-telemetry", client)
            extra.append(f"ours without breaker and retries: {telemetry_only:,.1f} µs")
        if results.has("sdk-floor", client):
            floor = results.overhead("cpu", "sdk-floor", client)
            extra.append(
                f"SDK floor (span + histogram only): {floor:,.1f} µs = "
                f"{floor / upstream if upstream > 0 else float('inf'):.2f}x upstream; beyond "
                f"it, ours {ours - floor:,.1f} vs upstream {upstream - floor:,.1f} µs"
            )
        rows.append(
            [
                client,
                f"{upstream:,.1f}",
                f"{ours:,.1f}",
                f"{ratio:.2f}x",
                f"{wall_ratio:.2f}x",
                verdict,
                "; ".join(extra),
            ]
        )
    headers = ["client", "upstream µs", "ours µs", "ours/upstream", "wall", "result", "note"]
    print(table(headers, rows))


def print_checks(results: Results, telemetry: Telemetry, url: str) -> None:
    """Spans, histogram points and the endpoint breaker's calls, against the requests sent."""
    print("\nConsistency (requests sent, incl. warm-up, vs spans exported and histogram points)")
    spans_by_scope: Counter[str] = Counter()
    for (_, scope), count in telemetry.exporter.counts.items():
        spans_by_scope[scope] += count
    for (configuration, client), sent in sorted(results.sent.items()):
        label = f"{configuration}/{client}"
        scopes = {s: c for (lbl, s), c in telemetry.exporter.counts.items() if lbl == label}
        spans = sum(scopes.values())
        expected = 0 if configuration == "bare" else sent
        verdict = "ok" if spans == expected and len(scopes) <= 1 else "MISMATCH"
        where = ", ".join(f"{scope}: {count:,}" for scope, count in scopes.items()) or "none"
        print(f"  {label}: {sent:,} requests, spans {where} ({verdict})")
    for scope, points in sorted(telemetry.duration_points().items()):
        # ours: one histogram scope for every HTTP adapter, one span scope per adapter
        spans = (
            sum(c for s, c in spans_by_scope.items() if s.startswith(OUR_SCOPE_PREFIX))
            if scope == OUR_HISTOGRAM_SCOPE
            else spans_by_scope[scope]
        )
        verdict = "ok" if points == spans else "MISMATCH"
        print(f"  histogram of {scope}: {points:,} points for {spans:,} spans ({verdict})")
    port = httpx.URL(url).port
    stats = default_registry().get(endpoint_key("http", "127.0.0.1", port)).stats
    through_ours = sum(sent for (name, _), sent in results.sent.items() if name == "ours")
    verdict = "ok" if stats.calls == stats.successes == through_ours else "MISMATCH"
    print(
        f"  breaker of the endpoint: {stats.calls:,} calls, {stats.successes:,} successes; "
        f"requests sent under ours: {through_ours:,} ({verdict}; ours-telemetry sends none "
        "through it)"
    )


def version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def print_header(arguments: argparse.Namespace, settings: Settings) -> None:
    retry = armed_retries()
    print("HTTP client overhead: otel-resilience vs the upstream OpenTelemetry instrumentors")
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"requests {version('requests')}, httpx {version('httpx')}, "
        f"opentelemetry-sdk {version('opentelemetry-sdk')}, upstream instrumentations "
        f"{version('opentelemetry-instrumentation-requests')} / "
        f"{version('opentelemetry-instrumentation-httpx')}"
    )
    print(
        f"mode: {'quick' if arguments.quick else 'full'} ({settings.rounds} rounds, blocks of "
        f"~{settings.block_seconds:g} s); server: {arguments.server}; upstream semconv: "
        f"OTEL_SEMCONV_STABILITY_OPT_IN={os.environ.get('OTEL_SEMCONV_STABILITY_OPT_IN', '')!r}"
        f"; ours: breakers on, retries armed (max_retries={retry.max_retries}, "
        f"budget {retry.budget_ratio:g}, jitter {retry.jitter})"
    )


def print_notes(skipped: Mapping[tuple[str, str], str]) -> None:
    for (configuration, family), reason in sorted(skipped.items()):
        print(f"note: {configuration} / {family} rows skipped: {reason}")


# --- entry points ------------------------------------------------------------------------------


def benchmark(arguments: argparse.Namespace) -> None:
    settings = QUICK if arguments.quick else FULL
    print_header(arguments, settings)
    sys.stdout.flush()
    started = time.perf_counter()
    telemetry = make_telemetry()
    loop = asyncio.new_event_loop()
    try:
        with running_server(arguments.server) as url:
            bench = Bench(url, telemetry, make_runners(loop))
            results = bench.run(settings)
    finally:
        loop.close()
    skipped = bench.switchboard.skipped
    print_notes(skipped)
    print_measurements(results, settings)
    print_targets(results, skipped)
    print_checks(results, telemetry, url)
    telemetry.tracer_provider.shutdown()
    telemetry.meter_provider.shutdown()
    print(f"\nTotal time: {time.perf_counter() - started:.1f} s")


def profile(arguments: argparse.Namespace) -> None:
    """cProfile of one client under one configuration; top functions by own time."""
    client: str = arguments.profile
    configuration = next(c for c in CONFIGURATIONS if c.name == arguments.profile_config)
    count: int = arguments.profile_requests
    telemetry = make_telemetry()
    loop = asyncio.new_event_loop()
    runners = make_runners(loop)
    switchboard = Switchboard(telemetry)
    try:
        with running_server(arguments.server) as url:
            switchboard.activate(configuration)
            if not switchboard.available(configuration, client):
                print(f"cannot profile: {switchboard.skipped[configuration.name, FAMILY[client]]}")
                return
            runners[client](url, WARMUP_REQUESTS, 500)
            profiler = cProfile.Profile()
            profiler.enable()
            elapsed, _ = runners[client](url, WARMUP_REQUESTS, count)
            profiler.disable()
            switchboard.deactivate()
    finally:
        loop.close()
    print(
        f"cProfile: {client} / {configuration.name}, {count:,} requests, "
        f"{elapsed / count * 1e6:,.1f} µs per request under the profiler"
    )
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shorter, noisier run")
    parser.add_argument(
        "--server",
        choices=("process", "thread"),
        default="process",
        help="where the local HTTP server runs (default: a subprocess; see the docstring)",
    )
    parser.add_argument("--profile", choices=CLIENTS, help="cProfile one client instead")
    parser.add_argument(
        "--profile-config",
        choices=[c.name for c in CONFIGURATIONS],
        default="ours",
        help="configuration to profile (default: ours)",
    )
    parser.add_argument("--profile-requests", type=int, default=5000, help="requests to profile")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.serve:
        serve()
    elif arguments.profile:
        profile(arguments)
    else:
        benchmark(arguments)


if __name__ == "__main__":
    main()
