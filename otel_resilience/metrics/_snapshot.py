"""Every current value as plain data, and its JSON: metrics without a backend.

The schema (also in the README), one object per registry under ``scopes``::

    {"scopes": [{"name": "otel_resilience.metrics", "version": "",
                 "metrics": [{"name": "app.jobs", "type": "counter", "unit": "{job}",
                              "description": "...",
                              "points": [{"attributes": {"queue": "mail"}, "value": 3}]},
                             {"name": "app.job.duration", "type": "histogram", "unit": "s",
                              "description": "...",
                              "points": [{"attributes": {}, "count": 2, "sum": 0.3,
                                          "min": 0.1, "max": 0.2,
                                          "explicit_bounds": [0.005, ...],
                                          "bucket_counts": [0, ...]}]}]}]}

``type`` is ``counter`` (monotonic sums), ``gauge`` or ``histogram``; bucket counts are per
bucket, not cumulative, with one more count than bounds (values above the last bound), as
in OTLP; ``min``/``max`` are ``null`` before the first value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import orjson

import otel_resilience.metrics._instruments as instruments
from otel_resilience.metrics._registry import AnyInstrument, MetricRegistry, all_registries

__all__ = ["snapshot", "snapshot_json"]

_TYPES = {
    "counter": "counter",
    "observable_counter": "counter",
    "gauge": "gauge",
    "observable_gauge": "gauge",
    "histogram": "histogram",
}


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _points(instrument: AnyInstrument) -> list[dict[str, Any]]:
    if isinstance(instrument, instruments.Histogram):
        points = []
        for series in instrument.series():
            counts, total, minimum, maximum = series.state()
            points.append(
                {
                    "attributes": dict(series.attributes),
                    "count": sum(counts),
                    "sum": total,
                    "min": _finite_or_none(minimum),
                    "max": _finite_or_none(maximum),
                    "explicit_bounds": list(instrument.buckets),
                    "bucket_counts": counts,
                }
            )
        return points
    if isinstance(instrument, instruments.Counter | instruments.Gauge):
        return [
            {"attributes": dict(series.attributes), "value": series.value}
            for series in instrument.series()
        ]
    if isinstance(instrument, instruments._ObservableInstrument):
        return [
            {"attributes": dict(attributes), "value": value}
            for value, attributes in instrument.observe()
        ]
    return []


def snapshot(registries: Iterable[MetricRegistry] | None = None) -> dict[str, Any]:
    """All current values of ``registries`` (default: every registry) as plain data."""
    return {
        "scopes": [
            {
                "name": registry.scope,
                "version": registry.version,
                "metrics": [
                    {
                        "name": instrument.name,
                        "type": _TYPES[instrument.kind],
                        "unit": instrument.unit,
                        "description": instrument.description,
                        "points": _points(instrument),
                    }
                    for instrument in registry.instruments()
                ],
            }
            for registry in (all_registries() if registries is None else registries)
        ]
    }


def snapshot_json(registries: Iterable[MetricRegistry] | None = None) -> bytes:
    """:func:`snapshot` as UTF-8 JSON; attribute values of other types are written as text."""
    return orjson.dumps(snapshot(registries), default=str)
