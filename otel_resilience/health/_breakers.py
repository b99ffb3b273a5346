"""The circuit breakers as a health report sees them: one consistent snapshot, one check.

An open breaker means calls to one endpoint are being refused, so the program is
``degraded``; it is ``down`` only when that endpoint is one it cannot work without, named
by ``OTEL_RESILIENCE_HEALTH_CRITICAL_BREAKERS`` (patterns matched as for
``OTEL_RESILIENCE_BREAKER_EXCLUDED``: the whole breaker name or its host).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from otel_resilience.breaker._breaker import CircuitBreaker
from otel_resilience.breaker._registry import _matches
from otel_resilience.health._status import CheckResult

__all__ = ["BreakerSnapshot", "breaker_check", "snapshot_breakers"]

# States in which a breaker refuses calls (a half-open one admits only its trial calls).
_REFUSING = frozenset({"open", "forced_open", "half_open"})
# Of those, the ones that make a critical breaker "down": half-open is recovering.
_UNAVAILABLE = frozenset({"open", "forced_open"})
_LISTED_IN_DETAIL = 5


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """One breaker's state and counts, read once per report."""

    name: str
    state: str
    failure_rate: float
    slow_call_rate: float
    calls: int
    successes: int
    failures: int
    rejections: int
    ignored: int
    slow_calls: int
    window_calls: int
    consecutive_failures: int
    seconds_until_next_trial: float | None
    """``None`` when forced open: no trial comes until someone resets it."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "failure_rate": round(self.failure_rate, 6),
            "slow_call_rate": round(self.slow_call_rate, 6),
            "calls": self.calls,
            "successes": self.successes,
            "failures": self.failures,
            "rejections": self.rejections,
            "ignored": self.ignored,
            "slow_calls": self.slow_calls,
            "window_calls": self.window_calls,
            "consecutive_failures": self.consecutive_failures,
            "seconds_until_next_trial": (
                None
                if self.seconds_until_next_trial is None
                else round(self.seconds_until_next_trial, 3)
            ),
        }


def _snapshot(breaker: CircuitBreaker) -> BreakerSnapshot:
    state = breaker.state  # an open breaker whose wait is over turns half-open here
    stats = breaker.stats
    until = breaker.seconds_until_trial()
    return BreakerSnapshot(
        name=breaker.name,
        state=state,
        failure_rate=stats.failure_rate,
        slow_call_rate=stats.slow_call_rate,
        calls=stats.calls,
        successes=stats.successes,
        failures=stats.failures,
        rejections=stats.rejections,
        ignored=stats.ignored,
        slow_calls=stats.slow,
        window_calls=stats.window_calls,
        consecutive_failures=stats.consecutive_failures,
        seconds_until_next_trial=until if math.isfinite(until) else None,
    )


def snapshot_breakers(breakers: Iterable[CircuitBreaker]) -> list[BreakerSnapshot]:
    """Snapshots by name; a breaker whose name repeats (two registries) is listed twice."""
    return sorted((_snapshot(breaker) for breaker in breakers), key=lambda s: s.name)


def is_critical(name: str, patterns: Sequence[str]) -> bool:
    """Whether breaker ``name`` matches one of the critical ``patterns``."""
    return any(_matches(pattern, name) for pattern in patterns)


def breaker_check(snapshots: Sequence[BreakerSnapshot], critical: Sequence[str]) -> CheckResult:
    """``down`` if a critical breaker is open, ``degraded`` if any refuses calls, else ok."""
    refusing = [s for s in snapshots if s.state in _REFUSING]
    if not refusing:
        return CheckResult.ok(f"{len(snapshots)} breaker(s), none open")
    critical_open = [
        s for s in refusing if s.state in _UNAVAILABLE and is_critical(s.name, critical)
    ]
    shown = critical_open or refusing
    listed = ", ".join(f"{s.name} ({s.state})" for s in shown[:_LISTED_IN_DETAIL])
    if len(shown) > _LISTED_IN_DETAIL:
        listed += f" and {len(shown) - _LISTED_IN_DETAIL} more"
    if critical_open:
        return CheckResult.down(f"critical breaker(s) open: {listed}")
    return CheckResult.degraded(f"{len(refusing)} of {len(snapshots)} breaker(s) open: {listed}")
