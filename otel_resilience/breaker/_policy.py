"""Immutable, validated circuit-breaker policy.

One policy object describes how a breaker judges calls and recovers. It is validated when it
is built, so a bad value fails at configuration time with a clear message rather than on
the thousandth call, and it is shared by every breaker a registry creates from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["MAX_WINDOW_SIZE", "BreakerPolicy", "ExceptionMatcher", "matches"]

ExceptionMatcher = type[BaseException] | Callable[[BaseException], bool]
"""An exception type, or a predicate over the exception."""

WindowKind = Literal["count", "time"]

MAX_WINDOW_SIZE = 100_000
"""The most calls (or seconds) a sliding window holds; a count window is allocated up front."""

# Numeric fields by type, each with whether ``None`` is allowed (it turns a check off).
_WHOLE_NUMBER_FIELDS = {
    "consecutive_failures": True,
    "window_size": False,
    "minimum_calls": False,
    "half_open_max_calls": False,
}
_NUMBER_FIELDS = {
    "failure_rate_threshold": True,
    "slow_call_rate_threshold": True,
    "slow_call_duration": True,
    "adaptive_slow_call_multiplier": False,
    "recovery_timeout": False,
    "recovery_backoff_multiplier": False,
    "max_recovery_timeout": False,
    "recovery_jitter": False,
    "healthy_period": False,
}


def _type_problems(policy: BreakerPolicy) -> list[str]:
    """Numeric fields of the wrong type, checked before the ranges.

    A string would make the range checks raise ``TypeError``; a float window size, or
    ``True`` (an ``int`` to Python), would pass them and fail only when a breaker is built
    on the first call, far from the configuration that caused it.
    """
    problems: list[str] = []
    for fields, kind, accepted in (
        (_WHOLE_NUMBER_FIELDS, "a whole number", (int,)),
        (_NUMBER_FIELDS, "a number", (int, float)),
    ):
        for name, optional in fields.items():
            value = getattr(policy, name)
            if value is None and optional:
                continue
            if isinstance(value, bool) or not isinstance(value, accepted):
                problems.append(f"{name} must be {kind}, got {value!r}")
    return problems


def matches(matchers: tuple[ExceptionMatcher, ...], error: BaseException) -> bool:
    """Whether ``error`` is an instance of one of the types or satisfies one predicate."""
    for matcher in matchers:
        if isinstance(matcher, type):
            if isinstance(error, matcher):
                return True
        elif matcher(error):
            return True
    return False


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """How a circuit breaker counts failures, trips and recovers.

    Trip conditions are combined: the breaker opens when *any* enabled one holds.

    * ``consecutive_failures``: that many failures in a row (``None`` disables it).
    * ``failure_rate_threshold``: the share of failures among the calls in the sliding
      window, once it holds at least ``minimum_calls`` calls (``None`` disables it).
    * ``slow_call_rate_threshold``: likewise for calls slower than ``slow_call_duration``;
      when that duration is ``None`` it is derived from the endpoint's own latency (see
      :meth:`CircuitBreaker._observe_latency`).

    The window holds the last ``window_size`` calls (``window_kind="count"``) or the calls
    of the last ``window_size`` seconds (``"time"``, one bucket per second). The conditions
    are checked whenever a failure or a slow call is recorded: a success never trips the
    breaker, even one that brings the window up to ``minimum_calls``.

    Recovery: an open breaker admits ``half_open_max_calls`` trial calls after
    ``recovery_timeout`` seconds; that many successes close it, one failure re-opens it.
    Each consecutive re-open multiplies the wait by ``recovery_backoff_multiplier`` up to
    ``max_recovery_timeout``, with +/- ``recovery_jitter`` (a fraction) so that many
    clients don't probe in step; after ``healthy_period`` seconds closed, the wait starts
    from ``recovery_timeout`` again.
    """

    consecutive_failures: int | None = 5
    failure_rate_threshold: float | None = 0.5
    slow_call_rate_threshold: float | None = 1.0
    slow_call_duration: float | None = None
    adaptive_slow_call_multiplier: float = 3.0
    window_kind: WindowKind = "count"
    window_size: int = 100
    minimum_calls: int = 20
    half_open_max_calls: int = 3
    recovery_timeout: float = 10.0
    recovery_backoff_multiplier: float = 2.0
    max_recovery_timeout: float = 300.0
    recovery_jitter: float = 0.1
    healthy_period: float = 60.0
    failure_exceptions: tuple[ExceptionMatcher, ...] = (Exception,)
    ignored_exceptions: tuple[ExceptionMatcher, ...] = ()
    failure_result: Callable[[Any], bool] | None = field(default=None)

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid BreakerPolicy: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        problems = _type_problems(self)
        if problems:
            return problems

        def positive(name: str, value: float, *, allow_zero: bool = False) -> None:
            if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
                bound = ">= 0" if allow_zero else "> 0"
                problems.append(f"{name} must be a finite number {bound}, got {value!r}")

        def rate(name: str, value: float | None) -> None:
            if value is not None and not 0.0 < value <= 1.0:
                problems.append(f"{name} must be in (0, 1], got {value!r}")

        if self.consecutive_failures is not None and self.consecutive_failures < 1:
            problems.append(f"consecutive_failures must be >= 1, got {self.consecutive_failures}")
        rate("failure_rate_threshold", self.failure_rate_threshold)
        rate("slow_call_rate_threshold", self.slow_call_rate_threshold)
        if self.slow_call_duration is not None:
            positive("slow_call_duration", self.slow_call_duration)
        positive("adaptive_slow_call_multiplier", self.adaptive_slow_call_multiplier)
        if self.window_kind not in ("count", "time"):
            problems.append(f"window_kind must be 'count' or 'time', got {self.window_kind!r}")
        if not 1 <= self.window_size <= MAX_WINDOW_SIZE:
            problems.append(
                f"window_size must be from 1 to {MAX_WINDOW_SIZE}, got {self.window_size}"
            )
        if self.minimum_calls < 1:
            problems.append(f"minimum_calls must be >= 1, got {self.minimum_calls}")
        if self.window_kind == "count" and self.minimum_calls > self.window_size:
            problems.append(
                f"minimum_calls ({self.minimum_calls}) must not exceed the count window's "
                f"window_size ({self.window_size}): the rates could never open the breaker"
            )
        if self.half_open_max_calls < 1:
            problems.append(f"half_open_max_calls must be >= 1, got {self.half_open_max_calls}")
        positive("recovery_timeout", self.recovery_timeout, allow_zero=True)
        positive("max_recovery_timeout", self.max_recovery_timeout, allow_zero=True)
        if self.max_recovery_timeout < self.recovery_timeout:
            problems.append("max_recovery_timeout must be >= recovery_timeout")
        if not (math.isfinite(self.recovery_backoff_multiplier)) or (
            self.recovery_backoff_multiplier < 1
        ):
            problems.append(
                f"recovery_backoff_multiplier must be >= 1, got {self.recovery_backoff_multiplier}"
            )
        if not 0.0 <= self.recovery_jitter < 1.0:
            problems.append(f"recovery_jitter must be in [0, 1), got {self.recovery_jitter}")
        positive("healthy_period", self.healthy_period, allow_zero=True)
        for name in ("failure_exceptions", "ignored_exceptions"):
            for matcher in getattr(self, name):
                is_type = isinstance(matcher, type) and issubclass(matcher, BaseException)
                if not is_type and not callable(matcher):
                    problems.append(
                        f"{name} holds {matcher!r}: expected exception types or callables"
                    )
        if self.failure_result is not None and not callable(self.failure_result):
            problems.append("failure_result must be a callable taking the call's result")
        return problems

    def classify(self, error: BaseException) -> bool | None:
        """``True`` for a failure, ``False`` for a success, ``None`` for an ignored outcome.

        Exceptions outside ``failure_exceptions`` (by default ``BaseException`` that is not an
        ``Exception``, such as cancellation) are ignored: they say nothing about the remote.
        """
        if self.ignored_exceptions and matches(self.ignored_exceptions, error):
            return None
        if matches(self.failure_exceptions, error):
            return True
        return None

    def recovery_wait(self, consecutive_opens: int) -> float:
        """The open period before the ``consecutive_opens``-th trial, without jitter."""
        exponent = min(max(0, consecutive_opens - 1), 64)  # beyond that the cap has won
        try:
            wait = self.recovery_timeout * self.recovery_backoff_multiplier**exponent
        except OverflowError:  # a large multiplier after many re-opens: past any cap
            return self.max_recovery_timeout
        return min(self.max_recovery_timeout, wait)
