"""Histogram buckets for durations measured in seconds.

The SDK's default buckets (0, 5, 10, 25 ... 10000) were chosen for milliseconds; a duration
recorded in seconds falls into the first bucket and every percentile is lost. The stable
semantic conventions recommend the boundaries below for ``http.client.request.duration``,
``db.client.operation.duration`` and the like, so every histogram whose unit is ``s`` gets
them, unless its instrument asked for its own boundaries through the advisory parameter.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import Histogram
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from otel_resilience._compat import advised_bucket_boundaries

__all__ = ["SECONDS_BUCKETS", "duration_views"]

SECONDS_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)


class _SecondsBucketsUnlessAdvised(ExplicitBucketHistogramAggregation):
    """Semantic-convention buckets, yielding to boundaries the instrument itself advises."""

    def __init__(self) -> None:
        super().__init__(boundaries=SECONDS_BUCKETS)

    def _create_aggregation(self, instrument: Any, *args: Any, **kwargs: Any) -> Any:
        if advised_bucket_boundaries(instrument) is not None:
            return ExplicitBucketHistogramAggregation()._create_aggregation(
                instrument, *args, **kwargs
            )
        return super()._create_aggregation(instrument, *args, **kwargs)


def duration_views() -> list[View]:
    """Views that give every seconds histogram the semantic-convention boundaries."""
    return [
        View(
            instrument_type=Histogram,
            instrument_unit="s",
            aggregation=_SecondsBucketsUnlessAdvised(),
        )
    ]
