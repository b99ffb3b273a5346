"""The exit budget: steps run in parallel, and a hung one is abandoned at the deadline."""

from __future__ import annotations

import logging
import threading

import pytest

from otel_resilience.sdk._shutdown import BoundedShutdown


def test_every_step_runs_once_in_parallel() -> None:
    both_started = threading.Barrier(2, timeout=5)
    ran: list[str] = []

    def step(name: str) -> None:
        both_started.wait()  # only passes if the two steps run at the same time
        ran.append(name)

    shutdown = BoundedShutdown(budget_seconds=10)
    shutdown.add("traces", lambda: step("traces"))
    shutdown.add("metrics", lambda: step("metrics"))
    assert shutdown.run() == []
    assert sorted(ran) == ["metrics", "traces"]
    assert shutdown.run() == []  # a second call (atexit and an explicit one) does nothing
    assert len(ran) == 2


def test_a_hung_step_is_reported_and_abandoned(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    shutdown = BoundedShutdown(budget_seconds=0.2)
    shutdown.add("logs", release.wait)
    shutdown.add("traces", lambda: None)
    try:
        assert shutdown.run() == ["logs"]
    finally:
        release.set()
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "OTEL_RESILIENCE_SHUTDOWN_TIMEOUT" in record.getMessage()
    assert "logs" in record.getMessage()


def test_a_failing_step_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> None:
        raise RuntimeError("exporter bug")

    shutdown = BoundedShutdown(budget_seconds=5)
    shutdown.add("metrics", broken)
    assert shutdown.run() == []
    assert any("metrics" in r.getMessage() for r in caplog.records)


def test_zero_budget_skips_the_flush() -> None:
    called = threading.Event()
    shutdown = BoundedShutdown(budget_seconds=0)
    shutdown.add("traces", called.set)
    assert shutdown.run() == ["traces"]
    assert not called.is_set()
