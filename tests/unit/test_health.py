"""Health checks and the status report without a server: registration, export outcomes, log
drops, timeouts.

What is served over HTTP is in tests/integration/test_health.py, what the launcher serves in
tests/launcher/test_health.py.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from fake_clock import FakeClock

from otel_resilience.health import (
    CheckResult,
    HealthStatus,
    health_report,
    register_check,
    unregister_check,
)
from otel_resilience.health._checks import HealthChecks
from otel_resilience.health._exports import (
    ExportOutcomes,
    record_export_outcomes,
)
from otel_resilience.health._log_drops import LogDropWatch


def check_named(document: dict[str, Any], name: str) -> dict[str, Any]:
    found = [check for check in document["checks"] if check["name"] == name]
    assert len(found) == 1, document["checks"]
    result: dict[str, Any] = found[0]
    return result


def test_invalid_registrations_are_refused_at_once() -> None:
    checks = HealthChecks()
    with pytest.raises(ValueError, match="non-empty name"):
        checks.register(" ", lambda: True)
    with pytest.raises(TypeError, match="callable"):
        checks.register("x", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        checks.register("x", lambda: True, timeout=0)


def test_the_process_wide_report_and_registration() -> None:
    register_check("test_health.process_wide", lambda: CheckResult.degraded("slow disk"))
    try:
        document = health_report()
        entry = check_named(document, "test_health.process_wide")
        assert (entry["status"], entry["detail"]) == ("degraded", "slow disk")
        assert document["distro"]["name"] == "otel-resilience"
        assert document["uptime_seconds"] >= 0
        assert isinstance(document["metrics"], dict)
        json.dumps(document)
    finally:
        assert unregister_check("test_health.process_wide")
    assert all(c["name"] != "test_health.process_wide" for c in health_report()["checks"])


def test_an_exporter_that_raises_is_recorded_and_the_error_passes_through() -> None:
    class Raising:
        def export(self, batch: object) -> object:
            raise OSError("collector gone")

    outcomes = ExportOutcomes()
    recorder = record_export_outcomes("logs", Raising(), outcomes)
    with pytest.raises(OSError, match="collector gone"):
        recorder.export([])
    (logs,) = outcomes.snapshot()
    assert (logs.consecutive_failures, logs.last_success, logs.last_error) == (
        1,
        None,
        "Raising raised OSError",
    )
    assert "never succeeded" in outcomes.check().detail


def test_log_drops_degrade_while_recent() -> None:
    clock = FakeClock()
    dropped = [0]
    watch = LogDropWatch(lambda: dropped[0], clock, recent_seconds=60)
    assert watch.check() == CheckResult.ok("no log records dropped")
    dropped[0] = 7
    result = watch.check()
    assert result.status is HealthStatus.DEGRADED
    assert result.detail.startswith("7 log record(s) dropped so far")
    clock.advance(30)
    assert watch.check().status is HealthStatus.DEGRADED
    clock.advance(31)
    assert watch.check() == CheckResult.ok("7 log record(s) dropped so far, none lately")
    dropped[0] = 8
    assert watch.check().status is HealthStatus.DEGRADED


def test_a_timeout_beyond_a_day_is_a_day_not_an_overflow() -> None:
    """``timeout=1e10`` once reached the thread's wait and overflowed: a slow, healthy check
    was reported down."""
    checks = HealthChecks()

    def slow_but_fine() -> CheckResult:
        threading.Event().wait(0.1)
        return CheckResult.ok()

    checks.register("slow", slow_but_fine, timeout=1e10)
    (report,) = checks.run(default_timeout=2.0)
    assert report.status is HealthStatus.OK, report.detail
