"""The instrumentations' call-duration histograms, recorded where they cost least.

Every instrumented call records one duration (``http.client.request.duration``,
``db.client.operation.duration``). Through the SDK's ``Histogram.record`` that costs about
10 µs a call (attribute copying, view matching, exemplar sampling), a sizeable share of what
an instrumentation adds to a call. When the meter provider the call would use is the one our
configurator installed, whose readers also export the metric registries (the Prometheus
endpoint renders them, push exporters receive them in the SDK's own batches), the histogram
lives in a registry instead (:mod:`otel_resilience.metrics`) and a record costs under 1 µs:
same name, unit, description, buckets, attributes and instrumentation scope, in the same
exports. What the registry does not do is sample exemplars; an SDK view configured for the
instrument does not apply to it either.

A meter provider of the program's own (passed to ``instrument(meter_provider=...)``, or
set as the global one) gets the registry too when one of its readers is a
``RegistryMetricReader``, and the SDK instrument otherwise, since no other reader knows of
the registries. The choice is made when an instrumentation is set up, which under
``opentelemetry-instrument`` is after the configurator has installed its providers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Protocol

from opentelemetry import metrics

from otel_resilience._version import __version__
from otel_resilience.metrics._registry import scoped_registry
from otel_resilience.sdk._views import SECONDS_BUCKETS

__all__ = ["DurationHistogram", "duration_histogram"]


class DurationHistogram(Protocol):
    """What the SDK's histogram and a registry's both provide."""

    def record(self, amount: float, attributes: Mapping[str, Any] | None = None, /) -> None:
        """Count one duration, in seconds, in the series of ``attributes``."""
        ...


def _exports_registries(meter_provider: metrics.MeterProvider | None) -> bool:
    """Whether ``meter_provider`` (``None``: the global one) exports the registries: it is
    the configurator's, or one of its readers is a
    :class:`~otel_resilience.metrics._otlp.RegistryMetricReader`."""
    # Imported here: the configurator's module brings the SDK and its exporters, which an
    # instrumentation used as a library, with a provider of its own, need not load.
    from otel_resilience.metrics._otlp import RegistryMetricReader
    from otel_resilience.sdk._installed import installed_telemetry

    provider = metrics.get_meter_provider() if meter_provider is None else meter_provider
    installed = installed_telemetry()
    if installed is not None and provider is installed.meter_provider:
        return True
    # The SDK's provider keeps its readers privately (the SDK is pinned below 1.46).
    readers = getattr(provider, "_metric_readers", ())
    return any(isinstance(reader, RegistryMetricReader) for reader in readers)


@functools.lru_cache(maxsize=16)
def _sdk_histogram(
    scope: str, name: str, description: str, meter_provider: metrics.MeterProvider | None
) -> metrics.Histogram:
    meter = metrics.get_meter(scope, __version__, meter_provider)
    return meter.create_histogram(
        name,
        unit="s",
        description=description,
        explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
    )


def duration_histogram(
    scope: str, name: str, description: str, meter_provider: metrics.MeterProvider | None
) -> DurationHistogram:
    """The histogram of seconds ``name`` under ``scope``, for ``meter_provider``.

    One per scope and name (and SDK meter provider): instrumentations sharing a scope share
    the instrument, as the SDK would otherwise warn about two same-named ones.
    """
    if _exports_registries(meter_provider):
        return scoped_registry(scope).histogram(
            name, unit="s", description=description, buckets=SECONDS_BUCKETS
        )
    return _sdk_histogram(scope, name, description, meter_provider)
