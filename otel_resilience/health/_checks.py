"""Health checks registered by name, each run with a timeout on a thread of its own.

A check is the program's own code (ping the database, look at a queue), so it may be slow,
hang or raise. None of that may reach the caller of a health endpoint: a raise becomes a
``down`` result naming the exception, and a check still running at its timeout is reported
as ``down`` with "timed out". A timed-out thread cannot be killed, so each check has at most
one run in flight: a request that finds its previous run still going waits on that same run
instead of starting another, and a check that hangs for good costs exactly one thread, not
one per probe. Worker threads are daemons, so a hung check never holds up the program's
exit (``concurrent.futures`` joins its threads at exit, which is why it is not used here).

Async checks (a coroutine function, or any check that returns an awaitable) run under
``asyncio.run`` on that same worker thread, inside ``asyncio.wait_for``: a check that
honours cancellation is cancelled at its timeout and its thread ends.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from otel_resilience._fork import unlock_after_fork
from otel_resilience._secrets import redact_text
from otel_resilience.health._status import CheckResult, HealthStatus
from otel_resilience.sdk.settings import MAX_SECONDS

__all__ = [
    "CheckFunction",
    "CheckReport",
    "HealthChecks",
    "default_checks",
    "register_check",
    "unregister_check",
]

CheckValue: TypeAlias = CheckResult | HealthStatus | bool | None
CheckFunction: TypeAlias = Callable[[], CheckValue | Awaitable[CheckValue]]
"""A check: sync or async, taking no arguments. ``None`` or ``True`` mean ok, ``False`` down."""

_MAX_DETAIL = 500  # a detail is one line for a table or a probe log, not a traceback


@dataclass(frozen=True, slots=True)
class CheckReport:
    """One check's entry in a report."""

    name: str
    status: HealthStatus
    detail: str
    duration_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "duration_seconds": round(self.duration_seconds, 6),
        }


def one_line(text: str) -> str:
    """``text`` on one line, of a readable length, without credentials.

    Exception messages of database drivers and HTTP clients may quote a DSN, a URL or a
    header with its credentials; a status page must not show them. Redacted before it is
    cut, so a secret cannot survive as the part before the cut.
    """
    flat = redact_text(" ".join(text.split()))
    return flat if len(flat) <= _MAX_DETAIL else flat[: _MAX_DETAIL - 3] + "..."


def _as_result(value: object) -> CheckResult:
    if isinstance(value, CheckResult):
        return CheckResult(value.status, one_line(value.detail))
    if isinstance(value, HealthStatus):
        return CheckResult(value)
    if value is None or value is True:
        return CheckResult.ok()
    if value is False:
        return CheckResult.down("the check returned False")
    return CheckResult.down(
        f"the check returned {type(value).__name__}; expected CheckResult, HealthStatus, "
        "bool or None"
    )


def _raised(error: BaseException) -> CheckResult:
    message = str(error)
    return CheckResult.down(
        one_line(
            f"raised {type(error).__name__}: {message}"
            if message
            else f"raised {type(error).__name__}"
        )
    )


async def _await_within(awaitable: Awaitable[CheckValue], timeout: float) -> CheckValue:
    return await asyncio.wait_for(awaitable, timeout)


def _execute(function: CheckFunction, timeout: float) -> CheckResult:
    """Run one check to its result; never raises."""
    try:
        value = function()
    except BaseException as error:  # reported, on a thread of its own
        return _raised(error)
    if isinstance(value, Awaitable):
        try:
            value = asyncio.run(_await_within(value, timeout))
        except asyncio.TimeoutError:
            return CheckResult.down(f"timed out after {timeout:g}s (cancelled)")
        except BaseException as error:
            return _raised(error)
    return _as_result(value)


class _Run:
    """One execution of a check; waiters share it."""

    __slots__ = ("done", "duration", "result", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.done = threading.Event()
        self.result = CheckResult.down("the check did not finish")
        self.duration = 0.0


class _RegisteredCheck:
    __slots__ = ("__weakref__", "_lock", "_running", "critical", "function", "name", "timeout")

    def __init__(
        self, name: str, function: CheckFunction, timeout: float | None, critical: bool
    ) -> None:
        self.name = name
        self.function = function
        self.timeout = timeout
        self.critical = critical
        self._lock = threading.Lock()
        unlock_after_fork(self, "_lock")
        self._running: _Run | None = None

    def start(self, timeout: float, now: float) -> _Run:
        """The run in flight, or a new one on a new daemon thread."""
        with self._lock:
            run = self._running
            if run is not None and not run.done.is_set():
                return run
            run = self._running = _Run(now)
        try:
            threading.Thread(
                target=self._work,
                args=(run, timeout),
                name=f"otel-resilience health check {self.name}",
                daemon=True,
            ).start()
        except RuntimeError as error:  # the interpreter is shutting down, or out of threads
            run.result = CheckResult.down(f"could not start: {error}")
            run.done.set()
        return run

    def _work(self, run: _Run, timeout: float) -> None:
        began = time.perf_counter()
        run.result = _execute(self.function, timeout)
        run.duration = time.perf_counter() - began
        run.done.set()

    def collect(self, run: _Run, timeout: float, requested: float) -> CheckReport:
        """Wait for ``run`` until ``timeout`` after ``requested``; a late run is a failure."""
        remaining = requested + timeout - time.monotonic()
        if run.done.wait(max(0.0, remaining)):
            result, duration = run.result, run.duration
        else:
            detail = f"timed out after {timeout:g}s"
            if run.started < requested:
                detail += (
                    f"; still running since an earlier request "
                    f"{time.monotonic() - run.started:.1f}s ago"
                )
            result, duration = CheckResult.down(detail), time.monotonic() - requested
        status = result.status
        if not self.critical and status is HealthStatus.DOWN:
            status = HealthStatus.DEGRADED  # a non-critical check can only degrade
        return CheckReport(self.name, status, result.detail, duration)


class HealthChecks:
    """A set of named checks, run together for a report.

    The process has one (:func:`default_checks`), which :func:`register_check` fills;
    tests and embedding programs may keep their own.
    """

    def __init__(self) -> None:
        self._checks: dict[str, _RegisteredCheck] = {}
        self._lock = threading.Lock()
        unlock_after_fork(self, "_lock")

    def register(
        self,
        name: str,
        check: CheckFunction,
        *,
        timeout: float | None = None,
        critical: bool = True,
    ) -> None:
        """Add ``check`` as ``name``, replacing a check of that name.

        ``timeout`` (seconds) defaults to ``OTEL_RESILIENCE_HEALTH_CHECK_TIMEOUT``. A
        ``critical`` check that fails makes the report ``down`` (and ``/readyz`` 503); a
        non-critical one makes it ``degraded`` at worst.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a health check needs a non-empty name, got {name!r}")
        if not callable(check):
            raise TypeError(f"a health check must be callable, got {type(check).__name__}")
        if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"a health check timeout must be a positive number, got {timeout!r}")
        if timeout is not None:
            timeout = min(timeout, MAX_SECONDS)  # longer waits overflow the thread's wait
        registered = _RegisteredCheck(name, check, timeout, critical)
        with self._lock:
            self._checks = {**self._checks, name: registered}

    def unregister(self, name: str) -> bool:
        """Remove the check ``name``; ``False`` if there was none."""
        with self._lock:
            if name not in self._checks:
                return False
            self._checks = {key: value for key, value in self._checks.items() if key != name}
            return True

    def names(self) -> list[str]:
        """The registered checks' names, in registration order."""
        return list(self._checks)

    def run(self, default_timeout: float) -> list[CheckReport]:
        """Run every check concurrently; each report arrives by its timeout at the latest."""
        checks: Iterable[_RegisteredCheck] = self._checks.values()
        requested = time.monotonic()
        started = [
            (check, timeout, check.start(timeout, requested))
            for check in checks
            for timeout in (check.timeout if check.timeout is not None else default_timeout,)
        ]
        return [check.collect(run, timeout, requested) for check, timeout, run in started]


_default = HealthChecks()


def default_checks() -> HealthChecks:
    """The process's checks, those that ``/status`` and ``/readyz`` run."""
    return _default


def register_check(
    name: str, check: CheckFunction, *, timeout: float | None = None, critical: bool = True
) -> None:
    """Have the health endpoints run ``check`` (sync or async) under ``name``.

    It returns a :class:`CheckResult` (or a bare :class:`HealthStatus`, ``True``/``None``
    for ok, ``False`` for down). A check that raises, or runs past ``timeout`` seconds
    (default ``OTEL_RESILIENCE_HEALTH_CHECK_TIMEOUT``), counts as ``down``; a
    ``critical=False`` check makes the report ``degraded`` at worst. Registering a name
    again replaces that check.
    """
    _default.register(name, check, timeout=timeout, critical=critical)


def unregister_check(name: str) -> bool:
    """Stop running the check ``name``; ``False`` if there was none."""
    return _default.unregister(name)
