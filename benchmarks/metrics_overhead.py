"""What ``otel_resilience.metrics`` costs per update, per scrape and per series, next to peers.

Every figure is measured in the same run as the peers' and printed with the ratio, then
checked against the targets of the issue that asked for the helpers:

1. Updates (µs per update, one thread; each figure is the best of several repeats of a
   tight loop, the instruments called through bound methods as a program would):
   - a bound counter child: ours ``labels(...).inc()`` result kept, against
     prometheus_client's cached child ``inc()``. Target: ours <= prometheus_client's.
   - a counter update with a two-label mapping: ours ``add(1, {"a":..., "b":...})``,
     against the OpenTelemetry SDK's ``Counter.add`` with the same two attributes on a
     provider with a reader. Target: ours at least 10x cheaper.
     prometheus_client's ``labels(a, b).inc()`` is printed for information.
   - a histogram record: ours (bound series ``record``) against prometheus_client's
     ``Histogram.observe`` (a label-less histogram). Target: ours <= prometheus_client's.
     A timer's ``with`` block and the SDK's ``Histogram.record`` with two attributes are
     printed for information.
2. A Prometheus scrape of 10,000 counter series (ms, best of several): ours renders the
   registry (what ``/metrics`` adds to the SDK's part; a whole GET of the endpoint, with every
   registry of the process and HTTP on loopback, is printed for information), prometheus_client's
   ``generate_latest`` with created series disabled (its fastest), and the OpenTelemetry
   Prometheus reader's ``generate_latest``. Target: ours under 25 ms and faster than both.
3. The OTLP path for the same 10,000 series (ms): collect, encode to protobuf and
   serialise; ours from the registry, the SDK's from an ``InMemoryMetricReader``.
   Target: ours no slower than the SDK's.
4. Memory per counter series (bytes, tracemalloc growth over 10,000 series), ours,
   prometheus_client's and the SDK's, reported side by side.

How to run, from the repository root (about a minute on 2 cores)::

    .venv/bin/python benchmarks/metrics_overhead.py
    .venv/bin/python benchmarks/metrics_overhead.py --quick   # a few seconds, noisier

The exit status is 0 whatever the results; read the PASS/FAIL summary at the end.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData, ResourceMetrics
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram

from otel_resilience.metrics import MetricRegistry
from otel_resilience.metrics._otlp import registry_scope_metrics
from otel_resilience.metrics._prometheus_text import render_registries

SERIES = 10_000


def per_call_us(function: Callable[[], Any], calls: int, repeats: int) -> float:
    """Best of ``repeats`` loops of ``calls`` calls, in µs per call, loop cost removed."""

    def loop(body: Callable[[], Any]) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            body()
        return time.perf_counter() - started

    def nothing() -> None:
        return None

    best = min(loop(function) - loop(nothing) for _ in range(repeats))
    return max(best, 0.0) / calls * 1e6


def best_ms(function: Callable[[], Any], repeats: int) -> float:
    """Best of ``repeats`` runs of ``function``, in ms."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings) * 1e3


def sdk_provider() -> tuple[MeterProvider, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader]), reader


def updates(calls: int, repeats: int) -> dict[str, float]:
    """Section 1: µs per update."""
    figures: dict[str, float] = {}
    registry = MetricRegistry("bench.updates", cardinality_limit=100)
    prometheus = CollectorRegistry()
    provider, _ = sdk_provider()
    meter = provider.get_meter("bench")
    attributes = {"route": "/checkout", "code": "200"}

    ours_counter = registry.counter("bench.requests", labels=("route", "code"))
    ours_bound = ours_counter.labels(route="/checkout", code="200")
    prom_counter = PromCounter("bench_requests", "", ["route", "code"], registry=prometheus)
    prom_child = prom_counter.labels("/checkout", "200")
    sdk_counter = meter.create_counter("bench.requests")

    ours_histogram = registry.histogram("bench.latency", unit="s").labels()
    ours_timer = registry.timer("bench.timed").labels()
    prom_histogram = PromHistogram("bench_latency_seconds", "", registry=prometheus)
    sdk_histogram = meter.create_histogram("bench.latency", unit="s")

    inc_bound, inc_child = ours_bound.inc, prom_child.inc
    add_mapping, sdk_add = ours_counter.add, sdk_counter.add
    prom_labels = prom_counter.labels
    record, observe, sdk_record = (
        ours_histogram.record,
        prom_histogram.observe,
        sdk_histogram.record,
    )

    def ours_timed() -> None:
        with ours_timer.time():
            pass

    cases: dict[str, Callable[[], Any]] = {
        "bound counter: ours": inc_bound,
        "bound counter: prometheus_client child": inc_child,
        "two-label mapping: ours add": lambda: add_mapping(1, attributes),
        "two-label mapping: OTel SDK Counter.add": lambda: sdk_add(1, attributes),
        "two labels: prometheus_client labels(a, b).inc()": lambda: prom_labels(
            "/checkout", "200"
        ).inc(),
        "histogram: ours record": lambda: record(0.042),
        "histogram: prometheus_client observe": lambda: observe(0.042),
        "histogram: OTel SDK record, two attributes": lambda: sdk_record(0.042, attributes),
        "timer block: ours": ours_timed,
    }
    for _ in range(2):  # two interleaved rounds: the better figure of each
        for name, function in cases.items():
            figure = per_call_us(function, calls, repeats)
            figures[name] = min(figures.get(name, figure), figure)
    provider.shutdown()
    return figures


def scrapes(repeats: int) -> dict[str, float]:
    """Section 2: ms per scrape of SERIES counter series."""
    registry = MetricRegistry("bench.scrape", cardinality_limit=SERIES * 2)
    ours = registry.counter("bench.requests", unit="{request}")
    prometheus = CollectorRegistry()
    prometheus_counter = PromCounter("bench_requests", "", ["route", "code"], registry=prometheus)
    from prometheus_client import disable_created_metrics, enable_created_metrics

    for index in range(SERIES):
        ours.add(index, {"route": f"/route/{index // 5}", "code": str(200 + index % 5)})
    # Before the OpenTelemetry reader below exists: it registers itself in prometheus_client's
    # global registry, which /metrics serves too, and would add its 10,000 series.
    http_figure = _http_scrape_ms(repeats)

    reader_registry = CollectorRegistry()
    reader = PrometheusMetricReader()
    reader_registry.register(reader._collector)
    provider = MeterProvider(metric_readers=[reader])
    sdk_counter = provider.get_meter("bench").create_counter("bench.requests", unit="{request}")
    for index in range(SERIES):
        route, code = f"/route/{index // 5}", str(200 + index % 5)
        prometheus_counter.labels(route, code).inc(index)
        sdk_counter.add(index, {"route": route, "code": code})

    render_registries([registry])  # the first render builds each series' label text once
    figures = {"ours": best_ms(lambda: render_registries([registry]).encode(), repeats)}
    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        figures["prometheus_client, created disabled"] = best_ms(
            lambda: generate_latest(prometheus), repeats
        )
    finally:
        enable_created_metrics()  # type: ignore[no-untyped-call]
    figures["OTel Prometheus reader"] = best_ms(lambda: generate_latest(reader_registry), repeats)
    figures["ours, whole /metrics over HTTP (for information)"] = http_figure
    provider.shutdown()
    return figures


def _http_scrape_ms(repeats: int) -> float:
    """A GET of the real endpoint: the SDK's part, every registry, HTTP, on loopback."""
    import urllib.request

    from otel_resilience.sdk._prometheus import start_prometheus_endpoint

    endpoint = start_prometheus_endpoint("127.0.0.1", 0)
    assert endpoint is not None
    provider = MeterProvider(metric_readers=[endpoint.reader])  # as the configurator does

    def get() -> bytes:
        with urllib.request.urlopen(endpoint.url, timeout=10) as response:
            return bytes(response.read())

    try:
        get()
        return best_ms(get, repeats)
    finally:
        endpoint.close()
        provider.shutdown()


def otlp(repeats: int) -> dict[str, float]:
    """Section 3: ms to collect, encode and serialise SERIES counter series."""
    resource = Resource.create({"service.name": "bench"})
    registry = MetricRegistry("bench.otlp", cardinality_limit=SERIES * 2)
    ours = registry.counter("bench.requests", unit="{request}")
    provider, reader = sdk_provider()
    sdk_counter = provider.get_meter("bench").create_counter("bench.requests", unit="{request}")
    for index in range(SERIES):
        attributes = {"route": f"/route/{index // 5}", "code": str(200 + index % 5)}
        ours.add(index, attributes)
        sdk_counter.add(index, attributes)

    def ours_path() -> bytes:
        data = MetricsData(
            resource_metrics=[
                ResourceMetrics(
                    resource=resource,
                    scope_metrics=registry_scope_metrics([registry]),
                    schema_url="",
                )
            ]
        )
        return encode_metrics(data).SerializeToString()

    def sdk_path() -> bytes:
        data = reader.get_metrics_data()
        assert data is not None
        return encode_metrics(data).SerializeToString()

    figures = {"ours": best_ms(ours_path, repeats), "OTel SDK": best_ms(sdk_path, repeats)}
    provider.shutdown()
    return figures


def memory_per_series() -> dict[str, float]:
    """Section 4: bytes per counter series."""
    labels = [(f"/route/{index // 5}", str(200 + index % 5)) for index in range(SERIES)]
    mappings = [{"route": route, "code": code} for route, code in labels]
    figures: dict[str, float] = {}

    def measure(name: str, create: Callable[[], Callable[[int], None]]) -> None:
        gc.collect()
        tracemalloc.start()
        add = create()
        before = tracemalloc.get_traced_memory()[0]
        for index in range(SERIES):
            add(index)
        gc.collect()
        figures[name] = (tracemalloc.get_traced_memory()[0] - before) / SERIES
        tracemalloc.stop()

    keep: list[Any] = []

    def ours() -> Callable[[int], None]:
        counter = MetricRegistry("bench.memory", cardinality_limit=SERIES * 2).counter("m")
        keep.append(counter)
        return lambda index: counter.add(1, mappings[index])

    def prometheus_client() -> Callable[[int], None]:
        counter = PromCounter("m", "", ["route", "code"], registry=CollectorRegistry())
        keep.append(counter)
        return lambda index: counter.labels(*labels[index]).inc()

    def sdk() -> Callable[[int], None]:
        provider, _ = sdk_provider()
        counter = provider.get_meter("bench").create_counter("m")
        keep.append(provider)
        return lambda index: counter.add(1, mappings[index])

    measure("ours", ours)
    measure("prometheus_client", prometheus_client)
    measure("OTel SDK", sdk)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, noisier figures")
    options = parser.parse_args()
    calls, repeats = (20_000, 3) if options.quick else (200_000, 7)

    results: list[tuple[str, bool]] = []

    print("1. Updates, µs per update (one thread)")
    update = updates(calls, repeats)
    for name, figure in update.items():
        print(f"   {name:<52} {figure:6.3f}")
    bound = update["bound counter: ours"] / update["bound counter: prometheus_client child"]
    mapping = (
        update["two-label mapping: OTel SDK Counter.add"] / update["two-label mapping: ours add"]
    )
    observe = update["histogram: ours record"] / update["histogram: prometheus_client observe"]
    print(f"   bound counter, ours / prometheus_client child: {bound:.2f}x (target <= 1)")
    print(f"   two-label mapping, SDK / ours: {mapping:.1f}x cheaper (target >= 10)")
    print(f"   per update with a mapping: {1 / update['two-label mapping: ours add']:.2f} M/s")
    print(f"   histogram record, ours / prometheus_client observe: {observe:.2f}x (target <= 1)")
    results += [
        ("bound counter at most prometheus_client's child", bound <= 1.0),
        ("two-label update >= 10x cheaper than the SDK", mapping >= 10.0),
        ("histogram record at most prometheus_client's observe", observe <= 1.0),
    ]

    print(f"\n2. Prometheus scrape of {SERIES:,} counter series, ms")
    scrape = scrapes(repeats)
    for name, figure in scrape.items():
        print(f"   {name:<52} {figure:7.1f}")
    fastest_peer = min(
        scrape["prometheus_client, created disabled"], scrape["OTel Prometheus reader"]
    )
    print(f"   ours / fastest peer: {scrape['ours'] / fastest_peer:.2f}x")
    results.append(
        ("scrape under 25 ms and faster than both peers", scrape["ours"] < min(25.0, fastest_peer))
    )

    print(f"\n3. OTLP collect + encode + serialise of {SERIES:,} series, ms")
    otlp_figures = otlp(repeats)
    for name, figure in otlp_figures.items():
        print(f"   {name:<52} {figure:7.1f}")
    otlp_ratio = otlp_figures["ours"] / otlp_figures["OTel SDK"]
    print(f"   ours / SDK: {otlp_ratio:.2f}x (target <= 1)")
    results.append(("OTLP path no slower than the SDK's", otlp_ratio <= 1.0))

    print(f"\n4. Memory per counter series (tracemalloc over {SERIES:,} series), bytes")
    for name, figure in memory_per_series().items():
        print(f"   {name:<52} {figure:7.0f}")

    print("\nSummary")
    for name, passed in results:
        print(f"   {'PASS' if passed else 'FAIL'}  {name}")


if __name__ == "__main__":
    main()
