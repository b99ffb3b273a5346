"""What the instrumentation overhead benchmarks share: the SDK, the switchboard, the rounds.

``http_overhead.py`` and ``db_overhead.py`` measure the same thing for different libraries:
µs per call (a request, an operation) of each client in several configurations (bare,
upstream, ours, the SDK floor...), in rotating rounds, judged as ours' overhead over bare
against upstream's. A script describes itself in a :class:`Suite` (its clients, their
library families, its configurations, the hooks its instrumentors wrap, its wording) and
brings its own block runners, SDK floor instrumentors, header and library-specific checks;
everything else is here:

* :func:`make_telemetry`: the real SDK (a ``BatchSpanProcessor`` feeding a
  :class:`CountingExporter`, a ``MeterProvider`` whose reader is the one our configurator
  installs for push exporters, ``RegistryMetricReader``, which also exports the metric
  registries: so ours records its duration histograms where it does under the launcher,
  and upstream's SDK instruments cost exactly what they cost under any reader), also set
  as the global providers;
* :class:`Switchboard`: instruments one configuration at a time (instrumentors loaded on
  first use, a failure to load or instrument skips that configuration for the family with
  a note, an ``instrument()`` that hooked nothing too) and checks after ``uninstrument()``
  that every hook holds its original again;
* :class:`Bench`: calibrates the block sizes (on the bare client, or on the slowest
  configuration: :attr:`Suite.calibrate_on`), then runs rounds in rotating order;
  :class:`Results` holds one sample per round and clock, and the overheads against bare in
  the same round;
* the report: measurement tables, the target table with the SDK-floor note, the span and
  duration-histogram checks; and the ``--profile`` cProfile runner.

Not a script: the benchmarks run as files (``python benchmarks/http_overhead.py``), which
puts ``benchmarks/`` first on ``sys.path``, so they import this module by its plain name.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import cProfile
import dataclasses
import gc
import importlib
import math
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import types
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal, Protocol

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_resilience.metrics._otlp import RegistryMetricReader
from otel_resilience.sdk.settings import RetrySettings, current_settings

TARGET_RATIO = 0.5
TARGETED = ("bare", "upstream", "ours")
"""The configurations a target needs measured."""
OUR_SCOPE_PREFIX = "otel_resilience.instrumentation."
FLOOR_SCOPE = "benchmark.sdk_floor"


@dataclass(frozen=True)
class Settings:
    """How long and how often to measure."""

    rounds: int
    block_seconds: float
    calibration: int
    """Calls per calibration block (see :meth:`Bench.run`)."""


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
class MetricsSeen:
    """What the metric reader holds: metric names and duration points per scope."""

    names: dict[str, set[str]] = field(default_factory=dict)
    duration_points: Counter[str] = field(default_factory=Counter)


@dataclass
class Telemetry:
    """The real SDK every configuration is measured with."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    reader: RegistryMetricReader
    metrics: KeptMetrics
    exporter: CountingExporter

    def flush(self) -> None:
        if not self.tracer_provider.force_flush(timeout_millis=30_000):
            raise RuntimeError("the span processor did not flush in 30 s")

    def collect(self, duration_histograms: Collection[str]) -> MetricsSeen:
        """Metric names per instrumentation scope, and calls in the duration histograms."""
        seen = MetricsSeen()
        self.reader.collect()
        data = self.metrics.data
        for resource_metrics in data.resource_metrics if data is not None else ():
            for scope_metrics in resource_metrics.scope_metrics:
                scope = scope_metrics.scope.name
                for metric in scope_metrics.metrics:
                    seen.names.setdefault(scope, set()).add(metric.name)
                    if metric.name not in duration_histograms:
                        continue
                    for point in metric.data.data_points:
                        if isinstance(point, HistogramDataPoint):
                            seen.duration_points[scope] += point.count
        return seen

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


class KeptMetrics(MetricExporter):
    """Keeps the last batch the reader exported (cumulative: every point so far)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: MetricsData | None = None

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.data = metrics_data
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Nothing to release."""


def make_telemetry(span_queue: int | None = None) -> Telemetry:
    """The SDK, also set as the global providers; ``span_queue`` None: the SDK's default."""
    exporter = CountingExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=span_queue))
    kept = KeptMetrics()
    # Collected when the report asks (an infinite interval starts no export thread).
    reader = RegistryMetricReader(kept, Resource.create(), export_interval_millis=math.inf)
    meter_provider = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider, meter_provider, reader, kept, exporter)


def floor_instruments(
    kwargs: Mapping[str, Any], histogram: str
) -> tuple[trace.Tracer, metrics.Histogram]:
    """The SDK floor's tracer and duration histogram, from ``instrument()``'s providers."""
    tracer = trace.get_tracer(FLOOR_SCOPE, tracer_provider=kwargs["tracer_provider"])
    meter = metrics.get_meter(FLOOR_SCOPE, meter_provider=kwargs["meter_provider"])
    return tracer, meter.create_histogram(histogram, unit="s")


def unwrap(owner: object, name: str) -> None:
    """Put back what a ``wrapt.wrap_function_wrapper(owner, name, ...)`` wrapped."""
    setattr(owner, name, vars(owner)[name].__wrapped__)


# --- configurations and instrumentors ----------------------------------------------------------


class Instrumentor(Protocol):
    """What the benchmark uses of an OpenTelemetry ``BaseInstrumentor``."""

    def instrument(self, **kwargs: Any) -> None: ...

    def uninstrument(self, **kwargs: Any) -> None: ...


def no_options() -> dict[str, Any]:
    return {}


def armed_retries() -> RetrySettings:
    """The environment's retry settings, with retries on even if the environment says 0."""
    retry = current_settings().retry
    return retry if retry.max_retries > 0 else dataclasses.replace(retry, max_retries=2)


def resilience_on() -> dict[str, Any]:
    return {"resilience": True, "retry": armed_retries()}


@dataclass(frozen=True)
class Configuration:
    """An instrumentor per library family (none for bare), with extra instrument() options."""

    name: str
    instrumentors: Mapping[str, tuple[str, str]]
    options: Callable[[], dict[str, Any]] = no_options


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


Elapsed = tuple[float, float]
"""Wall-clock seconds and this process's CPU seconds (all its threads) over a block."""
BlockRunner = Callable[[int, int], Elapsed]
"""(warm-up calls, timed calls) -> what the timed calls took; one more call ends the block."""


@dataclass(frozen=True)
class Suite:
    """What one benchmark script measures, and the words its tables use for it."""

    clients: tuple[str, ...]
    family: Mapping[str, str]
    """The library family of each client: instrumentors are per family."""
    configurations: tuple[Configuration, ...]
    hooks: Mapping[str, tuple[object, str]]
    """The places the instrumentors hook, by name: (module or class, attribute)."""
    family_hooks: Mapping[str, Sequence[str]]
    """The hooks an instrumentor of each family must change (or it "hooked nothing")."""
    our_histogram_scope: str
    """The scope of our duration histogram, shared by all our adapters of these libraries."""
    duration_histograms: tuple[str, ...]
    warmup: int
    """Calls at the start of every block, before the timed ones."""
    calibrate_on: Literal["bare", "slowest"]
    """What a block's size is set from: the bare client's speed, or the slowest configuration's."""
    minimum_count: int
    """The fewest timed calls in a block."""
    unit: str
    """One call, in words: "request", "operation"."""
    units: str
    per_unit_header: str
    """Measurement table headers: "µs/req", "req/block"."""
    per_block_header: str
    done: str
    """What the checks say of the calls: "sent", "run"."""
    points: str
    """What the checks call the histogram's points: "histogram", "duration"."""
    histogram_label: str
    """What a duration histogram check line calls the histogram."""
    decimals: int
    """Decimals in the measurement tables."""
    targeted_clients: tuple[str, ...] = ()
    """Clients with a target; the others get an INFO row. Empty: all of them."""
    untraced: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(configuration, client) pairs that by design make no span (the checks expect none)."""

    def configuration(self, name: str) -> Configuration:
        return next(c for c in self.configurations if c.name == name)

    def targeted(self, client: str) -> bool:
        return not self.targeted_clients or client in self.targeted_clients


class Switchboard:
    """Activates one configuration at a time; knows which (configuration, family) failed.

    Made before anything is instrumented: it takes the hooks as they are then for the
    originals that every ``deactivate()`` checks are back.
    """

    def __init__(self, telemetry: Telemetry, suite: Suite) -> None:
        self.telemetry = telemetry
        self.suite = suite
        self.active: list[Instrumentor] = []
        self.skipped: dict[tuple[str, str], str] = {}
        self.repaired: dict[str, str] = {}
        """Hooks an ``uninstrument()`` put back as a bound method (restored here): by whom."""
        self.current = "bare"
        self.original_hooks = self.hooks()
        self._loaded: dict[tuple[str, str], Instrumentor | str] = {}

    def hooks(self) -> dict[str, object]:
        """The functions the instrumentors wrap, as the modules and classes hold them now."""
        return {label: vars(owner)[name] for label, (owner, name) in self.suite.hooks.items()}

    def available(self, configuration: Configuration, client: str) -> bool:
        return (configuration.name, self.suite.family[client]) not in self.skipped

    def skip(self, configuration: str, client: str, reason: str) -> None:
        self.skipped.setdefault((configuration, self.suite.family[client]), reason)

    def _instrumentor(self, source: tuple[str, str]) -> Instrumentor | str:
        if source not in self._loaded:
            self._loaded[source] = load_instrumentor(*source)
        return self._loaded[source]

    def activate(self, configuration: Configuration) -> None:
        self.deactivate()
        self.current = configuration.name
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
            before = self.hooks()
            try:
                # A BaseInstrumentor with a dependency conflict only logs and does nothing.
                instrumentor.instrument(
                    **providers, **configuration.options(), raise_exception_on_conflict=True
                )
            except Exception as error:
                self.skipped[key] = f"{source[0]}: instrument() raised {error!r}"
                with contextlib.suppress(Exception):
                    instrumentor.uninstrument()
                continue
            self.active.append(instrumentor)
            after = self.hooks()
            if all(after[name] is before[name] for name in self.suite.family_hooks[family]):
                self.skipped[key] = f"{source[0]}: instrument() hooked nothing"

    def deactivate(self) -> None:
        while self.active:
            self.active.pop().uninstrument()
        now = self.hooks()
        changed = [label for label, hook in now.items() if hook is not self.original_hooks[label]]
        for label in list(changed):
            original, restored = self.original_hooks[label], now[label]
            if (
                isinstance(original, classmethod)
                and isinstance(restored, types.MethodType)
                and restored.__func__ is original.__func__
            ):
                # Upstream psycopg's unwrap() reads the classmethod through the class and puts
                # back the method it binds: it works for that class only. Put it right.
                owner, name = self.suite.hooks[label]
                setattr(owner, name, original)
                self.repaired[label] = self.current
                changed.remove(label)
        if changed:
            raise RuntimeError(f"uninstrument() left wrappers in place: {', '.join(changed)}")


# --- the measurement ---------------------------------------------------------------------------


@dataclass
class Results:
    """µs per call per (clock, configuration, client), one sample per round.

    ``clock`` is ``"cpu"`` (this process's CPU time, every thread: the client's own work,
    the span processor's thread and the GC, without the waits on the server) or ``"wall"``.
    """

    per_call: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    sent: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Calls per (configuration, client), warm-up and calibration included."""
    connections: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Blocks per (configuration, client): each opens one session, client or connection."""

    def add(self, configuration: str, client: str, samples: Mapping[str, float]) -> None:
        for clock, sample in samples.items():
            self.per_call.setdefault((clock, configuration, client), []).append(sample)

    def discard(self, configuration: str, client: str) -> None:
        for clock in ("cpu", "wall"):
            self.per_call.pop((clock, configuration, client), None)

    def has(self, configuration: str, client: str) -> bool:
        return bool(self.per_call.get(("cpu", configuration, client)))

    def samples(self, clock: str, configuration: str, client: str) -> list[float]:
        return self.per_call[clock, configuration, client]

    def overheads(self, clock: str, configuration: str, client: str) -> list[float]:
        """Per round: µs per call of ``configuration`` minus bare's, same round."""
        pairs = zip(
            self.per_call[clock, configuration, client],
            self.per_call[clock, "bare", client],
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
    """Runs blocks of calls under one configuration at a time."""

    def __init__(
        self,
        suite: Suite,
        telemetry: Telemetry,
        runners: Mapping[str, BlockRunner],
        clients: Sequence[str],
    ) -> None:
        self.suite = suite
        self.telemetry = telemetry
        self.runners = runners
        self.clients = list(clients)
        self.switchboard = Switchboard(telemetry, suite)
        self.results = Results()

    def block(self, configuration: str, client: str, count: int) -> dict[str, float] | None:
        """µs per call over ``count`` timed calls, by the wall clock and in CPU time.

        ``None`` if an instrumented block failed: that configuration is then skipped for
        the client's family (an instrumentor being written may break on first use).
        """
        warmup = self.suite.warmup
        self.telemetry.exporter.label = f"{configuration}/{client}"
        gc.collect()
        try:
            wall, cpu = self.runners[client](warmup, count)
        except Exception as error:
            if configuration == "bare":
                raise
            self.switchboard.skip(configuration, client, f"a {client} block raised {error!r}")
            for other in self.clients:
                if self.suite.family[other] == self.suite.family[client]:
                    self.results.discard(configuration, other)
            self.telemetry.flush()
            return None
        self.results.sent[configuration, client] += warmup + count + 1
        self.results.connections[configuration, client] += 1
        self.telemetry.flush()
        return {"cpu": cpu / count * 1e6, "wall": wall / count * 1e6}

    def _bare_wall(self, client: str, count: int) -> float:
        per_call = self.block("bare", client, count)
        assert per_call is not None  # a bare block raises rather than be skipped
        return per_call["wall"]

    def run_round(self, index: int, counts: Mapping[str, int], *, record: bool) -> dict[str, float]:
        """One block per configuration and client; the slowest µs per call per client.

        Client by client, each client's configurations back to back: the blocks whose
        difference is the overhead run within a second of each other. On a shared machine
        the cost of the same work shifts by a quarter for seconds at a time (seen: a bare
        requests block at 380 µs, then 560 µs a second later), and a round that measured
        all clients under one configuration before the next put seconds between them.
        """
        slowest = dict.fromkeys(self.clients, 0.0)
        for client in rotated(self.clients, index):
            for configuration in rotated(self.suite.configurations, index):
                if not self.switchboard.available(configuration, client):
                    continue
                self.switchboard.activate(configuration)
                try:
                    per_call = self.block(configuration.name, client, counts[client])
                finally:
                    self.switchboard.deactivate()
                if per_call is None:
                    continue
                slowest[client] = max(slowest[client], per_call["wall"])
                if record:
                    self.results.add(configuration.name, client, per_call)
        return slowest

    def run(self, settings: Settings) -> Results:
        """Calibrate the blocks so that they take ``settings.block_seconds``, then measure.

        On ``"bare"``: before anything is instrumented, two bare blocks per client
        (``settings.calibration`` calls, then 200), the faster counts; then a round of
        short blocks for first use (imports, breakers, instruments). On ``"slowest"``: that
        first-use round (a quarter of ``settings.calibration`` calls per block), then a
        round of ``settings.calibration`` calls per block, the slowest configuration counts.
        """
        if self.suite.calibrate_on == "bare":
            self.switchboard.deactivate()
            basis = {
                client: min(
                    self._bare_wall(client, settings.calibration), self._bare_wall(client, 200)
                )
                for client in self.clients
            }
            first = dict.fromkeys(self.clients, self.suite.warmup * 5)
            self.run_round(0, first, record=False)
        else:
            first = dict.fromkeys(self.clients, settings.calibration // 4)
            self.run_round(0, first, record=False)
            calibration = dict.fromkeys(self.clients, settings.calibration)
            basis = self.run_round(1, calibration, record=False)
        for client in self.clients:
            self.results.counts[client] = max(
                self.suite.minimum_count,
                round(settings.block_seconds * 1e6 / (basis[client] or 1.0)),
            )
        for index in range(settings.rounds):
            self.run_round(index, self.results.counts, record=True)
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


def version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    """The header's start: Python and the machine."""
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    )


def mode(suite: Suite, settings: Settings, *, quick: bool) -> str:
    """The header's mode line, up to its first semicolon."""
    basis = " on the slowest configuration" if suite.calibrate_on == "slowest" else ""
    return (
        f"mode: {'quick' if quick else 'full'} ({settings.rounds} rounds, blocks of "
        f"~{settings.block_seconds:g} s{basis})"
    )


def print_notes(switchboard: Switchboard) -> None:
    for (configuration, family), reason in sorted(switchboard.skipped.items()):
        print(f"note: {configuration} / {family} rows skipped: {reason}")
    for label, configuration in sorted(switchboard.repaired.items()):
        print(
            f"note: {configuration}'s uninstrument() put back {label} as a bound method, not "
            "the classmethod; the benchmark restored the original after each of its blocks"
        )


def print_measurements(
    suite: Suite, results: Results, settings: Settings, clients: Sequence[str]
) -> None:
    digits = suite.decimals
    for clock, title in (("cpu", "CPU µs"), ("wall", "wall-clock µs")):
        print(
            f"\n{title} per {suite.unit}, median of {settings.rounds} rounds (IQR); "
            "overhead = minus bare in the same round"
        )
        rows = []
        for client in clients:
            for configuration in suite.configurations:
                name = configuration.name
                if not results.has(name, client):
                    rows.append([client, name, "skipped", "", "", "", ""])
                    continue
                samples = results.samples(clock, name, client)
                overhead, spread = "", ""
                if name != "bare":
                    overhead = f"{results.overhead(clock, name, client):,.{digits}f}"
                    spread = f"{iqr(results.overheads(clock, name, client)):,.{digits}f}"
                rows.append(
                    [
                        client,
                        name,
                        f"{statistics.median(samples):,.{digits}f}",
                        f"{iqr(samples):,.{digits}f}",
                        overhead,
                        spread,
                        f"{results.counts[client]:,}",
                    ]
                )
        headers = [
            "client",
            "configuration",
            suite.per_unit_header,
            "IQR",
            "overhead µs",
            "IQR",
            suite.per_block_header,
        ]
        print(table(headers, rows, left=2))


def _notes(results: Results, client: str, ours: float, upstream: float | None) -> str:
    """The target row's note: ours without resilience, the SDK floor, when measured."""
    notes = []
    if results.has("ours-telemetry", client):
        telemetry_only = results.overhead("cpu", "ours-telemetry", client)
        notes.append(f"ours without breaker and retries: {telemetry_only:,.1f} µs")
    if results.has("sdk-floor", client):
        floor = results.overhead("cpu", "sdk-floor", client)
        if upstream is None:
            notes.append(
                f"SDK floor (span + histogram only): {floor:,.1f} µs; "
                f"beyond it, ours {ours - floor:,.1f} µs"
            )
        else:
            notes.append(
                f"SDK floor (span + histogram only): {floor:,.1f} µs = "
                f"{floor / upstream if upstream > 0 else float('inf'):.2f}x upstream; beyond "
                f"it, ours {ours - floor:,.1f} vs upstream {upstream - floor:,.1f} µs"
            )
    return "; ".join(notes)


def ratio_interval(
    ours: Sequence[float], upstream: Sequence[float], *, resamples: int = 2000
) -> tuple[float, float]:
    """A 90% bootstrap interval of median(ours) / median(upstream) over rounds.

    Rounds are resampled whole (ours' and upstream's overheads of one round together), with
    a fixed seed, so the same samples give the same interval: how far the judged ratio
    could move on another run of the same length on the same machine.
    """
    generator = random.Random(20261127)
    rounds = len(ours)
    ratios = []
    for _ in range(resamples):
        picked = [generator.randrange(rounds) for _ in range(rounds)]
        theirs = statistics.median(upstream[index] for index in picked)
        if theirs > 0:
            ratios.append(statistics.median(ours[index] for index in picked) / theirs)
    if len(ratios) < 20:
        return math.nan, math.nan
    ratios.sort()
    return ratios[int(0.05 * len(ratios))], ratios[int(0.95 * len(ratios)) - 1]


def print_targets(
    suite: Suite,
    results: Results,
    skipped: Mapping[tuple[str, str], str],
    clients: Sequence[str],
) -> None:
    print(
        f"\nTarget: ours' overhead <= {TARGET_RATIO} x upstream's, per client, in CPU time "
        "(90% interval: where the ratio falls in 90% of bootstrap resamples of the rounds; "
        "the wall-clock ratio, noisier, for information)"
    )
    rows = []
    for client in clients:
        if not suite.targeted(client):
            if results.has("ours", client):
                ours = results.overhead("cpu", "ours", client)
                parts = (
                    suite.untraced.get(("upstream", client), ""),
                    _notes(results, client, ours, None),
                )
                note = "; ".join(part for part in parts if part)
                rows.append([client, "-", f"{ours:,.1f}", "-", "-", "-", "INFO", note])
            continue
        if not all(results.has(name, client) for name in TARGETED):
            reasons = [
                reason
                for (name, family), reason in skipped.items()
                if family == suite.family[client] and name in TARGETED
            ]
            rows.append([client, "", "", "", "", "", "SKIP", "; ".join(reasons) or "not measured"])
            continue
        upstream = results.overhead("cpu", client=client, configuration="upstream")
        ours = results.overhead("cpu", client=client, configuration="ours")
        ratio = ours / upstream if upstream > 0 else float("inf")
        wall_upstream = results.overhead("wall", client=client, configuration="upstream")
        wall_ours = results.overhead("wall", client=client, configuration="ours")
        wall_ratio = wall_ours / wall_upstream if wall_upstream > 0 else float("inf")
        low, high = ratio_interval(
            results.overheads("cpu", "ours", client), results.overheads("cpu", "upstream", client)
        )
        verdict = "PASS" if ours <= TARGET_RATIO * upstream else "FAIL"
        rows.append(
            [
                client,
                f"{upstream:,.1f}",
                f"{ours:,.1f}",
                f"{ratio:.2f}x",
                f"{low:.2f}-{high:.2f}",
                f"{wall_ratio:.2f}x",
                verdict,
                _notes(results, client, ours, upstream),
            ]
        )
    headers = [
        "client",
        "upstream µs",
        "ours µs",
        "ours/upstream",
        "90% interval",
        "wall",
        "result",
        "note",
    ]
    print(table(headers, rows))


def print_checks(suite: Suite, results: Results, telemetry: Telemetry) -> MetricsSeen:
    """Spans per block label and duration points per scope, against the calls made.

    Returns what the metric reader holds and leaves the script's own checks to it.
    """
    print(
        f"\nConsistency ({suite.units} {suite.done}, incl. warm-up, vs spans exported and "
        f"{suite.points} points)"
    )
    spans_by_scope: Counter[str] = Counter()
    for (_, scope), count in telemetry.exporter.counts.items():
        spans_by_scope[scope] += count
    for (configuration, client), sent in sorted(results.sent.items()):
        label = f"{configuration}/{client}"
        scopes = {s: c for (lbl, s), c in telemetry.exporter.counts.items() if lbl == label}
        spans = sum(scopes.values())
        untraced = configuration == "bare" or (configuration, client) in suite.untraced
        expected = 0 if untraced else sent
        verdict = "ok" if spans == expected and len(scopes) <= 1 else "MISMATCH"
        where = ", ".join(f"{scope}: {count:,}" for scope, count in scopes.items()) or "none"
        print(f"  {label}: {sent:,} {suite.units}, spans {where} ({verdict})")
    seen = telemetry.collect(suite.duration_histograms)
    for scope, points in sorted(seen.duration_points.items()):
        # ours: one histogram scope for every adapter of these libraries, one span scope each
        spans = (
            sum(c for s, c in spans_by_scope.items() if s.startswith(OUR_SCOPE_PREFIX))
            if scope == suite.our_histogram_scope
            else spans_by_scope[scope]
        )
        verdict = "ok" if points == spans else "MISMATCH"
        print(
            f"  {suite.histogram_label} of {scope}: {points:,} points for {spans:,} spans "
            f"({verdict})"
        )
    return seen


def report(suite: Suite, bench: Bench, settings: Settings) -> MetricsSeen:
    """Notes, measurement tables, the target table and the common checks, after a run."""
    print_notes(bench.switchboard)
    print_measurements(suite, bench.results, settings, bench.clients)
    print_targets(suite, bench.results, bench.switchboard.skipped, bench.clients)
    return print_checks(suite, bench.results, bench.telemetry)


# --- profiling and arguments -------------------------------------------------------------------


def profile(
    suite: Suite,
    telemetry: Telemetry,
    runner: BlockRunner,
    *,
    client: str,
    configuration_name: str,
    count: int,
    warmup_count: int,
    our_code: bool = False,
) -> None:
    """cProfile ``count`` calls of one client under one configuration, after a warm-up block.

    Prints the top functions by own and by cumulative time; with ``our_code``, first our own
    functions (``otel_resilience``) by own time.
    """
    configuration = suite.configuration(configuration_name)
    switchboard = Switchboard(telemetry, suite)
    switchboard.activate(configuration)
    try:
        if not switchboard.available(configuration, client):
            reason = switchboard.skipped[configuration.name, suite.family[client]]
            print(f"cannot profile: {reason}")
            return
        runner(suite.warmup, warmup_count)
        profiler = cProfile.Profile()
        profiler.enable()
        elapsed, _ = runner(suite.warmup, count)
        profiler.disable()
    finally:
        switchboard.deactivate()
    print(
        f"cProfile: {client} / {configuration.name}, {count:,} {suite.units}, "
        f"{elapsed / count * 1e6:,.1f} µs per {suite.unit} under the profiler"
    )
    if our_code:
        print("\nOur own code (otel_resilience), by own time:")
        ours = pstats.Stats(profiler, stream=sys.stdout)
        ours.sort_stats("tottime").print_stats("otel_resilience", 25)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)


# --- instruction counts ------------------------------------------------------------------------

INSTRUCTION_COUNTS = (100, 300)
"""Calls in the two runs whose difference gives the instructions of one call."""


def instructions_child(
    suite: Suite, telemetry: Telemetry, runner: BlockRunner, *, client: str, configuration: str
) -> None:
    """One run under callgrind (``--instructions-child``): the warm-up and ``count`` calls of
    one client in one configuration, then the span export, all counted by callgrind."""
    count = int(os.environ["INSTRUCTIONS_COUNT"])
    chosen = suite.configuration(configuration)
    switchboard = Switchboard(telemetry, suite)
    switchboard.activate(chosen)
    try:
        if not switchboard.available(chosen, client):
            print(f"skipped: {switchboard.skipped[chosen.name, suite.family[client]]}")
            return
        runner(suite.warmup, count)
        telemetry.flush()
    finally:
        switchboard.deactivate()


def _collected(stderr: str) -> int | None:
    """The ``Collected : N`` total that callgrind prints at exit."""
    for line in stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1].strip())
    return None


def instruction_counts(suite: Suite, child_command: Sequence[str], clients: Sequence[str]) -> None:
    """Instructions per call, by callgrind, for bare, upstream and ours; the ratio and verdict.

    Each (client, configuration) runs twice under ``valgrind --tool=callgrind``, with
    :data:`INSTRUCTION_COUNTS` calls; the difference of the two totals over the difference
    of the counts is one call's instructions, start-up and warm-up cancelling out. Counts
    are deterministic to a fraction of a percent, where CPU time on a shared machine
    varies by tens of percent between runs; they leave out what instructions do not show
    (cache misses, the kernel). Two runs at a time, one per core.
    """
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install -y valgrind)")
        return
    jobs = [
        (client, configuration, count)
        for client in clients
        for configuration in TARGETED
        for count in INSTRUCTION_COUNTS
    ]

    def run(job: tuple[str, str, int]) -> int | None:
        client, configuration, count = job
        command = [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            *child_command,
            "--instructions-child",
            client,
            configuration,
        ]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "INSTRUCTIONS_COUNT": str(count)},
            check=False,
        )
        if "skipped:" in done.stdout:
            return None
        total = _collected(done.stderr)
        if total is None:
            raise RuntimeError(f"callgrind run {job} failed: {done.stderr[-2000:]}")
        return total

    print(
        f"callgrind: {len(jobs)} runs of {' and '.join(map(str, INSTRUCTION_COUNTS))} "
        f"{suite.units}, two at a time",
        flush=True,
    )
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        totals = dict(zip(jobs, pool.map(run, jobs), strict=True))
    few, many = INSTRUCTION_COUNTS
    print(
        f"\nInstructions per {suite.unit} (callgrind); overhead = configuration minus bare; "
        f"target: ours' overhead <= {TARGET_RATIO:g} x upstream's"
    )
    print(
        f"{'client':<14}{'bare':>12}{'upstream +':>14}{'ours +':>12}{'ours/upstream':>15}  result"
    )
    for client in clients:
        per_call: dict[str, float | None] = {}
        for configuration in TARGETED:
            low, high = totals[client, configuration, few], totals[client, configuration, many]
            per_call[configuration] = (
                None if low is None or high is None else (high - low) / (many - few)
            )
        bare, upstream, ours = (per_call[name] for name in TARGETED)
        if bare is None or upstream is None or ours is None:
            print(f"{client:<14}  skipped (a configuration is not available)")
            continue
        ratio = (ours - bare) / (upstream - bare)
        print(
            f"{client:<14}{bare:>12,.0f}{upstream - bare:>14,.0f}{ours - bare:>12,.0f}"
            f"{ratio:>14.2f}x  {'PASS' if ratio <= TARGET_RATIO else 'FAIL'}"
        )


def argument_parser(description: str | None) -> argparse.ArgumentParser:
    """The parser with ``--quick`` and ``--rounds``; the script adds its own, then
    :func:`add_profile_arguments`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="shorter, noisier run")
    parser.add_argument(
        "--rounds",
        type=_positive,
        help="rounds to run instead of the mode's (more rounds: a narrower interval)",
    )
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def chosen_settings(arguments: argparse.Namespace, full: Settings, quick: Settings) -> Settings:
    """The mode's settings (``--quick`` or full), with ``--rounds`` if given."""
    settings = quick if arguments.quick else full
    if arguments.rounds is not None:
        settings = dataclasses.replace(settings, rounds=arguments.rounds)
    return settings


def add_profile_arguments(parser: argparse.ArgumentParser, suite: Suite, default: int) -> None:
    """``--profile CLIENT``, ``--profile-config`` and ``--profile-<units>`` (``profile_count``)."""
    parser.add_argument("--profile", choices=suite.clients, help="cProfile one client instead")
    parser.add_argument(
        "--profile-config",
        choices=[c.name for c in suite.configurations],
        default="ours",
        help="configuration to profile (default: ours)",
    )
    parser.add_argument(
        f"--profile-{suite.units}",
        dest="profile_count",
        metavar=f"PROFILE_{suite.units.upper()}",
        type=int,
        default=default,
        help=f"{suite.units} to profile",
    )
