"""Registries as OpenTelemetry metric data, for the push exporters (OTLP, console).

The SDK of this version has no metric-producer hook, so the reader that drives a push
exporter is extended instead: on every collection it asks the SDK for its instruments'
data, as any reader does, and adds one scope of data points per registry, built straight
from the series (no aggregation storage, no per-point attribute copies). The exporter then
sees one batch, under the provider's resource, whatever produced it.

Data are cumulative: each point carries the sums since the series began (or since the
process forked). A reader that prefers delta temporality for counters or histograms still
gets cumulative points from the registries, with one warning; the collector's
``cumulativetodelta`` processor converts them for backends that need it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

from opentelemetry.sdk.metrics import Counter as SdkCounter
from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_resilience._compat import temporality_preferences
from otel_resilience.metrics import _instruments as instruments
from otel_resilience.metrics._registry import AnyInstrument, MetricRegistry, all_registries

__all__ = ["RegistryMetricReader", "registry_scope_metrics"]

_logger = logging.getLogger("otel_resilience.metrics")
_CUMULATIVE = AggregationTemporality.CUMULATIVE


def _metric(instrument: AnyInstrument, now: int) -> Metric | None:
    data: Sum | Gauge | Histogram
    if isinstance(instrument, instruments.Histogram):
        points: list[HistogramDataPoint] = []
        for series in instrument.series():
            counts, total, minimum, maximum = series.state()
            count = sum(counts)
            if count == 0:
                continue
            points.append(
                HistogramDataPoint(
                    attributes=series.attributes,
                    start_time_unix_nano=series.start_time_unix_nano,
                    time_unix_nano=now,
                    count=count,
                    sum=total,
                    bucket_counts=counts,
                    explicit_bounds=instrument.buckets,
                    min=minimum,
                    max=maximum,
                )
            )
        if not points:
            return None
        data = Histogram(data_points=points, aggregation_temporality=_CUMULATIVE)
    elif isinstance(instrument, instruments.Counter | instruments.Gauge):
        numbers = [
            NumberDataPoint(
                attributes=series.attributes,
                start_time_unix_nano=series.start_time_unix_nano,
                time_unix_nano=now,
                value=series.value,
            )
            for series in instrument.series()
        ]
        if not numbers:
            return None
        data = (
            Sum(data_points=numbers, aggregation_temporality=_CUMULATIVE, is_monotonic=True)
            if isinstance(instrument, instruments.Counter)
            else Gauge(data_points=numbers)
        )
    elif isinstance(instrument, instruments._ObservableInstrument):
        observed = [
            NumberDataPoint(
                attributes=attributes,
                start_time_unix_nano=_PROCESS_START,
                time_unix_nano=now,
                value=value,
            )
            for value, attributes in instrument.observe()
        ]
        if not observed:
            return None
        data = (
            Sum(data_points=observed, aggregation_temporality=_CUMULATIVE, is_monotonic=True)
            if isinstance(instrument, instruments.ObservableCounter)
            else Gauge(data_points=observed)
        )
    else:
        return None
    return Metric(
        name=instrument.name, description=instrument.description, unit=instrument.unit, data=data
    )


_PROCESS_START = time.time_ns()


def registry_scope_metrics(registries: Iterable[MetricRegistry]) -> list[ScopeMetrics]:
    """One scope of cumulative data per registry that has any."""
    now = time.time_ns()
    scopes: list[ScopeMetrics] = []
    for registry in registries:
        metrics = [
            metric
            for metric in (_metric(instrument, now) for instrument in registry.instruments())
            if metric is not None
        ]
        if metrics:
            scope = InstrumentationScope(registry.scope, registry.version or None)
            scopes.append(ScopeMetrics(scope=scope, metrics=metrics, schema_url=""))
    return scopes


def _merged(
    sdk_data: MetricsData | None, ours: list[ScopeMetrics], resource: Resource
) -> MetricsData | None:
    if not ours:
        return sdk_data
    if sdk_data is None or not sdk_data.resource_metrics:
        return MetricsData(
            resource_metrics=[
                ResourceMetrics(
                    resource=resource, scope_metrics=ours, schema_url=resource.schema_url
                )
            ]
        )
    first, *rest = sdk_data.resource_metrics
    combined = ResourceMetrics(
        resource=first.resource,
        scope_metrics=_one_per_scope([*first.scope_metrics, *ours]),
        schema_url=first.schema_url,
    )
    return MetricsData(resource_metrics=[combined, *rest])


def _one_per_scope(scopes: list[ScopeMetrics]) -> list[ScopeMetrics]:
    """Merge entries of one scope: the OTLP encoder keys scopes by value, so a second entry
    for a scope the SDK also uses (``otel_resilience``, the retry counter's meter) would
    replace the first and drop its metrics."""
    merged: dict[InstrumentationScope, ScopeMetrics] = {}
    for scope_metrics in scopes:
        found = merged.get(scope_metrics.scope)
        merged[scope_metrics.scope] = (
            scope_metrics
            if found is None
            else ScopeMetrics(
                scope=found.scope,
                metrics=[*found.metrics, *scope_metrics.metrics],
                schema_url=found.schema_url,
            )
        )
    return list(merged.values())


class RegistryMetricReader(PeriodicExportingMetricReader):
    """A periodic reader whose batches also carry the registries' instruments."""

    def __init__(
        self,
        exporter: MetricExporter,
        resource: Resource,
        registries: Callable[[], Iterable[MetricRegistry]] = all_registries,
        **options: Any,
    ) -> None:
        super().__init__(exporter, **options)
        self._resource = resource
        self._registries = registries
        # Keyed by the SDK's private instrument classes, subclasses of the public ones.
        preferences = temporality_preferences(self).items()
        if any(
            issubclass(kind, SdkCounter | SdkHistogram) and temporality is not _CUMULATIVE
            for kind, temporality in preferences
        ):
            _logger.warning(
                "this metric exporter prefers delta temporality; otel_resilience.metrics "
                "instruments are exported cumulative (the SDK's own instruments follow the "
                "preference)"
            )

    # ``collect`` is marked final for type checkers, but the SDK of the pinned versions has
    # no other hook that sees a collection when none of its own instruments has data.
    def collect(self, timeout_millis: float = 10_000) -> None:  # type: ignore[misc]
        """Collect the SDK's instruments and the registries', and export them together."""
        collect_sdk = cast(Callable[..., "MetricsData | None"] | None, self._collect)
        if collect_sdk is None:  # not registered with a provider yet: the SDK's warning
            super().collect(timeout_millis=timeout_millis)
            return
        sdk_data = collect_sdk(self, timeout_millis=timeout_millis)
        try:
            ours = registry_scope_metrics(self._registries())
        except Exception as error:  # fail-safe: the SDK's own metrics still go out
            _logger.warning(
                "otel_resilience.metrics could not be collected (%s: %s); exporting the "
                "SDK's instruments only",
                type(error).__name__,
                error,
            )
            ours = []
        data = _merged(sdk_data, ours, self._resource)
        if data is not None:
            self._receive_metrics(data, timeout_millis=timeout_millis)
