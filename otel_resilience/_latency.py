"""An endpoint's high-percentile latency, tracked in one float.

When no slow-call duration is configured, a breaker calls a call slow when it takes longer
than a multiple of the endpoint's own 99th-percentile latency. The percentile is estimated
with frugal streaming (Ma, Muthukrishnan and Sandler, 2013) in a multiplicative form: each
call moves the estimate up by a step when it was slower, down by a step 99 times smaller
when it was faster. The estimate settles where 1% of calls exceed it, follows a lasting
change in latency within a few hundred calls, costs one comparison and one multiplication
per call, and needs no memory beyond the estimate itself.
"""

from __future__ import annotations

__all__ = ["PercentileEstimate"]

_STEP = 0.05


class PercentileEstimate:
    """Streaming estimate of one quantile of positive durations."""

    __slots__ = ("_down", "_up", "samples", "value")

    def __init__(self, quantile: float = 0.99) -> None:
        self.value = 0.0
        self.samples = 0
        self._up = 1.0 + _STEP
        # Equilibrium: P(above) * up_step == P(below) * down_step, i.e. P(above) == 1 - q.
        self._down = 1.0 - _STEP * (1.0 - quantile) / quantile

    def add(self, duration: float) -> None:
        """Fold one observed duration into the estimate."""
        self.samples += 1
        value = self.value
        if value <= 0.0:
            self.value = duration
        elif duration > value:
            self.value = value * self._up
        else:
            self.value = value * self._down
