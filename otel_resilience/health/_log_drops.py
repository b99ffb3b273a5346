"""Whether the non-blocking log writers dropped records lately.

The writers only count drops (a full queue must never block the program), so this check
remembers the count it saw last and when it last grew: ``degraded`` while records were
dropped within the last minute, ``ok`` again once the writers keep up. It learns of drops
when it runs, so "lately" is measured from the report that first saw them; the first
report of a process that already dropped records counts them as recent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from otel_resilience._fork import unlock_after_fork
from otel_resilience.health._status import CheckResult

__all__ = ["RECENT_SECONDS", "LogDropWatch", "current_log_drops"]

RECENT_SECONDS = 60.0
"""Drops this recent make the check ``degraded``."""


def current_log_drops() -> int:
    """Records dropped by the current logging set-up's writers (0 without one)."""
    from otel_resilience.logs._setup import current_setup

    setup = current_setup()
    return 0 if setup is None else setup.dropped


class LogDropWatch:
    """Turns a cumulative drop count into "dropped recently" for the health check."""

    def __init__(
        self,
        dropped: Callable[[], int] = current_log_drops,
        clock: Callable[[], float] = time.monotonic,
        recent_seconds: float = RECENT_SECONDS,
    ) -> None:
        self._dropped = dropped
        self._clock = clock
        self._recent = recent_seconds
        self._lock = threading.Lock()
        unlock_after_fork(self, "_lock")
        self._seen = 0
        self._grew_at: float | None = None

    def check(self) -> CheckResult:
        count = self._dropped()
        now = self._clock()
        with self._lock:
            if count > self._seen:
                self._grew_at = now
            elif count < self._seen:  # a new logging set-up starts counting from 0
                self._grew_at = None if count == 0 else now
            self._seen = count
            grew_at = self._grew_at
        if grew_at is not None and now - grew_at < self._recent:
            return CheckResult.degraded(
                f"{count} log record(s) dropped so far, some in the last {self._recent:g}s: "
                "the log writers cannot keep up"
            )
        if count:
            return CheckResult.ok(f"{count} log record(s) dropped so far, none lately")
        return CheckResult.ok("no log records dropped")
