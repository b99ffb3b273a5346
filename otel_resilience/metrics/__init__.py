"""Application metrics cheap enough for any hot path, exported through OpenTelemetry.

Usage::

    from otel_resilience import metrics

    orders = metrics.counter("app.orders", unit="{order}", description="Orders placed")
    orders.add(1, {"channel": "web"})              # a label mapping: cached, no rebuild
    web = orders.labels(channel="web")             # or bind once, update many times
    web.inc()

    latency = metrics.timer("app.checkout.duration", description="Checkout time")
    with latency.time({"channel": "web"}):
        ...

    @latency                                        # sync or async functions
    async def checkout() -> None: ...

    queue = metrics.gauge("app.queue.depth", unit="{job}")
    queue.set(12)

Values reach every configured exporter: the Prometheus endpoint renders them directly
(names as the OpenTelemetry Prometheus exporter spells them: ``app_orders_total``), and the
OTLP and console exporters receive them in the same batches as the SDK's instruments.
:func:`snapshot` and :func:`snapshot_json` return them as plain data without any backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from otel_resilience.metrics._instruments import (
    Counter,
    Gauge,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    Observation,
    Timer,
)
from otel_resilience.metrics._registry import MetricRegistry, all_registries, default_registry
from otel_resilience.metrics._series import CounterSeries, GaugeSeries, HistogramSeries, Timing
from otel_resilience.metrics._snapshot import snapshot, snapshot_json

__all__ = [
    "Counter",
    "CounterSeries",
    "Gauge",
    "GaugeSeries",
    "Histogram",
    "HistogramSeries",
    "MetricRegistry",
    "ObservableCounter",
    "ObservableGauge",
    "Observation",
    "Timer",
    "Timing",
    "all_registries",
    "counter",
    "default_registry",
    "gauge",
    "histogram",
    "observable_counter",
    "observable_gauge",
    "snapshot",
    "snapshot_json",
    "timer",
]


def counter(
    name: str, *, unit: str = "", description: str = "", labels: Sequence[str] = ()
) -> Counter:
    """The default registry's counter called ``name``, created on first use."""
    return default_registry().counter(name, unit=unit, description=description, labels=labels)


def gauge(name: str, *, unit: str = "", description: str = "", labels: Sequence[str] = ()) -> Gauge:
    """The default registry's gauge called ``name``, created on first use."""
    return default_registry().gauge(name, unit=unit, description=description, labels=labels)


def histogram(
    name: str,
    *,
    unit: str = "",
    description: str = "",
    labels: Sequence[str] = (),
    buckets: Sequence[float] | None = None,
) -> Histogram:
    """The default registry's histogram called ``name``, created on first use."""
    return default_registry().histogram(
        name, unit=unit, description=description, labels=labels, buckets=buckets
    )


def timer(
    name: str,
    *,
    description: str = "",
    labels: Sequence[str] = (),
    buckets: Sequence[float] | None = None,
) -> Timer:
    """The default registry's timer (a histogram of seconds) called ``name``."""
    return default_registry().timer(name, description=description, labels=labels, buckets=buckets)


def observable_counter(
    name: str,
    callback: Callable[[], Iterable[Observation]],
    *,
    unit: str = "",
    description: str = "",
) -> ObservableCounter:
    """A default-registry counter whose values ``callback`` reports at collection time."""
    return default_registry().observable_counter(name, callback, unit=unit, description=description)


def observable_gauge(
    name: str,
    callback: Callable[[], Iterable[Observation]],
    *,
    unit: str = "",
    description: str = "",
) -> ObservableGauge:
    """A default-registry gauge whose values ``callback`` reports at collection time."""
    return default_registry().observable_gauge(name, callback, unit=unit, description=description)
