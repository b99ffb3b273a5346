"""The status report: who is running, how healthy it is, its breakers, checks and metrics.

One report is one consistent reading: the breakers are snapshotted once and the breaker
check is judged from that same snapshot, so the list and the verdict never disagree.
Building a report never raises; a part that cannot be read is reported as such.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from otel_resilience._version import __version__
from otel_resilience.breaker._breaker import CircuitBreaker, live_breakers
from otel_resilience.health._breakers import BreakerSnapshot, breaker_check, snapshot_breakers
from otel_resilience.health._checks import CheckReport, HealthChecks, default_checks, one_line
from otel_resilience.health._exports import ExportOutcomes, export_outcomes
from otel_resilience.health._identity import ServiceIdentity, process_uptime, service_identity
from otel_resilience.health._log_drops import LogDropWatch
from otel_resilience.health._status import CheckResult, HealthStatus, worst
from otel_resilience.sdk.settings import HealthSettings, current_settings

__all__ = ["HealthEvaluation", "MetricsSnapshot", "StatusReporter", "health_report"]

_logger = logging.getLogger(__name__)

MetricsSnapshot = Callable[[], Mapping[str, Any]]

DISTRO_NAME = "otel-resilience"


def default_metrics_snapshot() -> Mapping[str, Any]:
    """``otel_resilience.metrics.snapshot()``, or ``{}`` where that module is not available."""
    try:
        module = importlib.import_module("otel_resilience.metrics")
    except ImportError:
        return {}
    snapshot = getattr(module, "snapshot", None)
    if not callable(snapshot):
        return {}
    result: Mapping[str, Any] = snapshot()
    return result


@dataclass(frozen=True, slots=True)
class HealthEvaluation:
    """The verdict and what it rests on."""

    status: HealthStatus
    breakers: tuple[BreakerSnapshot, ...]
    checks: tuple[CheckReport, ...]


def _inline_check(name: str, check: Callable[[], CheckResult]) -> CheckReport:
    """Run one of our own cheap checks on the calling thread; a bug in it degrades only."""
    began = time.perf_counter()
    try:
        result = check()
    except Exception as error:
        result = CheckResult.degraded(
            one_line(f"the built-in check raised {type(error).__name__}: {error}")
        )
    return CheckReport(name, result.status, result.detail, time.perf_counter() - began)


def _json_safe(value: Any) -> Any:
    """JSON has no infinity or NaN; ``null`` stands for them, as Prometheus' JSON API does."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


class StatusReporter:
    """Builds ``/readyz`` and ``/status`` answers from the breakers, checks and metrics.

    Every source is injectable (tests, programs embedding several); the defaults are the
    process's own: every live breaker, :func:`register_check`'s checks, the exporters'
    recorded results, the log writers' drops and ``otel_resilience.metrics.snapshot()``.
    """

    def __init__(
        self,
        settings: HealthSettings | None = None,
        *,
        checks: HealthChecks | None = None,
        breakers: Callable[[], Iterable[CircuitBreaker]] = live_breakers,
        metrics_snapshot: MetricsSnapshot | None = None,
        exports: ExportOutcomes | None = None,
        log_drops: LogDropWatch | None = None,
        identity: Callable[[], ServiceIdentity] = service_identity,
        uptime: Callable[[], float] = process_uptime,
    ) -> None:
        self.settings = settings if settings is not None else current_settings().health
        self._checks = checks if checks is not None else default_checks()
        self._breakers = breakers
        self._metrics_snapshot = (
            metrics_snapshot if metrics_snapshot is not None else default_metrics_snapshot
        )
        self._exports = exports if exports is not None else export_outcomes()
        self._log_drops = log_drops if log_drops is not None else LogDropWatch()
        self._identity = identity
        self._uptime = uptime

    def evaluate(self) -> HealthEvaluation:
        """Run every check (the registered ones concurrently) and judge the whole."""
        try:
            snapshots = tuple(snapshot_breakers(self._breakers()))
            critical = self.settings.critical_breakers
            breakers = _inline_check("circuit_breakers", lambda: breaker_check(snapshots, critical))
        except Exception as error:
            snapshots = ()
            breakers = _inline_check("circuit_breakers", _raising(error))
        reports = (
            breakers,
            _inline_check("exporters", self._exports.check),
            _inline_check("log_queue", self._log_drops.check),
            *self._run_registered(),
        )
        return HealthEvaluation(worst([r.status for r in reports]), snapshots, reports)

    def _run_registered(self) -> list[CheckReport]:
        try:
            return self._checks.run(self.settings.check_timeout)
        except Exception as error:  # a bug of ours; the checks themselves never raise here
            return [_inline_check("checks", _raising(error))]

    def readiness(self) -> tuple[HealthStatus, dict[str, Any]]:
        """The verdict and the ``/readyz`` body: status and checks."""
        evaluation = self.evaluate()
        body = {
            "status": evaluation.status.value,
            "checks": [report.as_dict() for report in evaluation.checks],
        }
        return evaluation.status, body

    def report(self) -> dict[str, Any]:
        """The ``/status`` document (JSON-ready: no infinities, no NaN)."""
        evaluation = self.evaluate()
        try:
            identity = self._identity()
        except Exception:
            _logger.debug("The service's identity could not be read", exc_info=True)
            identity = ServiceIdentity("unknown_service", None)
        return {
            "service": identity.name,
            "version": identity.version,
            "distro": {"name": DISTRO_NAME, "version": __version__},
            "uptime_seconds": round(self._uptime(), 3),
            "status": evaluation.status.value,
            "breakers": [snapshot.as_dict() for snapshot in evaluation.breakers],
            "checks": [report.as_dict() for report in evaluation.checks],
            "metrics": self._metrics(),
        }

    def _metrics(self) -> Any:
        try:
            return _json_safe(self._metrics_snapshot())
        except Exception:
            _logger.debug("The metrics snapshot could not be taken", exc_info=True)
            return {}


def _raising(error: Exception) -> Callable[[], CheckResult]:
    def check() -> CheckResult:
        raise error

    return check


_default_reporter: StatusReporter | None = None


def health_report() -> dict[str, Any]:
    """The process's status report, as ``/status`` serves it (see the README)."""
    global _default_reporter  # noqa: PLW0603 - one per process, created on first use
    if _default_reporter is None:
        _default_reporter = StatusReporter()
    return _default_reporter.report()
