"""Flush telemetry at exit within a fixed time budget.

The SDK's own exit hooks wait for every exporter: with a collector that accepts connections
and never answers, the OTLP/HTTP exporter holds the exit for about 15 s, and a program
restarted in a loop (a CLI, a cron job, a pre-fork worker) pays that each time. Here every
provider shuts down in its own daemon thread, all at once, and the exit waits for them at
most ``OTEL_RESILIENCE_SHUTDOWN_TIMEOUT`` seconds in total; what has not been sent by then is
reported once and dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from otel_resilience._fork import unlock_after_fork

__all__ = ["BoundedShutdown"]

_logger = logging.getLogger(__name__)


class BoundedShutdown:
    """A set of named shutdown steps run in parallel under one deadline."""

    def __init__(self, budget_seconds: float) -> None:
        self._budget_seconds = budget_seconds
        self._steps: list[tuple[str, Callable[[], object]]] = []
        self._done = False
        self._lock = threading.Lock()
        unlock_after_fork(self, "_lock")

    def add(self, name: str, step: Callable[[], object]) -> None:
        """Register ``step`` (e.g. a provider's ``shutdown``) under a name for the warning."""
        self._steps.append((name, step))

    def run(self) -> list[str]:
        """Run every step once; return the names of those still running at the deadline."""
        with self._lock:
            if self._done:
                return []
            self._done = True
        if self._budget_seconds <= 0:
            return [name for name, _ in self._steps]
        threads = [
            threading.Thread(
                target=self._run_step,
                args=(name, step),
                name=f"otel-resilience-{name}",
                daemon=True,
            )
            for name, step in self._steps
        ]
        deadline = time.monotonic() + self._budget_seconds
        try:
            for thread in threads:
                thread.start()
        except RuntimeError:  # Python 3.12 starts no thread once the interpreter is exiting
            return self._run_here(deadline)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        unfinished = [
            name
            for (name, _), thread in zip(self._steps, threads, strict=True)
            if thread.is_alive()
        ]
        if unfinished:
            _logger.warning(
                "Telemetry not flushed within %.3g s at exit (OTEL_RESILIENCE_SHUTDOWN_TIMEOUT); "
                "unsent %s dropped: is the collector reachable?",
                self._budget_seconds,
                ", ".join(unfinished),
            )
        return unfinished

    def _run_here(self, deadline: float) -> list[str]:
        """Each step in turn on this thread, while the deadline allows: without threads a
        hung step cannot be left behind, so the steps after it are given up."""
        unfinished = []
        for name, step in self._steps:
            if time.monotonic() < deadline:
                self._run_step(name, step)
            else:
                unfinished.append(name)
        return unfinished

    @staticmethod
    def _run_step(name: str, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception:  # fail-safe: a broken exporter must not turn exit into a traceback
            _logger.warning("Shutting down %s failed", name, exc_info=True)
