"""The health vocabulary: three statuses and what a check returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CheckResult", "HealthStatus", "worst"]


class HealthStatus(str, enum.Enum):
    """How well the process can do its work, from best to worst.

    ``degraded`` means it serves, with something impaired (an open breaker on a
    non-critical endpoint, telemetry that cannot be exported); ``down`` means it should
    not be sent traffic, and ``/readyz`` answers 503.
    """

    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"

    @property
    def severity(self) -> int:
        """0, 1, 2: comparable, so that a report takes the worst of its checks."""
        return _SEVERITY[self]


_SEVERITY = {HealthStatus.OK: 0, HealthStatus.DEGRADED: 1, HealthStatus.DOWN: 2}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one health check found: a status and one line a person can act on."""

    status: HealthStatus
    detail: str = ""

    @classmethod
    def ok(cls, detail: str = "") -> CheckResult:
        return cls(HealthStatus.OK, detail)

    @classmethod
    def degraded(cls, detail: str) -> CheckResult:
        return cls(HealthStatus.DEGRADED, detail)

    @classmethod
    def down(cls, detail: str) -> CheckResult:
        return cls(HealthStatus.DOWN, detail)


def worst(statuses: list[HealthStatus]) -> HealthStatus:
    """The most severe of ``statuses``; ``ok`` when there are none."""
    return max(statuses, key=_SEVERITY.__getitem__, default=HealthStatus.OK)
