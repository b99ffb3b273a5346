"""The circuit breaker: one state machine, usable as decorator, context manager or ``call``.

Concurrency model: a breaker holds a small lock only while it reads or changes its own
counters and state, never while the guarded call runs, so callers through one breaker are
not serialised (pybreaker holds its lock for the whole call). Listeners, log records and
span events are dispatched after the lock is released, so a slow or raising listener cannot
stall or break callers.

Counting is exact and cheap. The common case, a fast success through a closed breaker with
a count window, takes no lock at all: it draws a ticket from an ``itertools.count`` (one
atomic C call under the GIL) and writes one byte of the window ring. Everything rarer
(failures, slow calls, trials, rejections' bookkeeping, transitions) runs under the lock,
and window rates are recounted from the ring there, in C, only when a decision needs them.
The telemetry reads these counters at collection time instead of paying an SDK call per
guarded call.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, ParamSpec, Protocol, TypeVar, cast, overload

from otel_resilience.breaker._decorating import decorate
from otel_resilience.breaker._policy import BreakerPolicy
from otel_resilience.breaker._windows import TimeWindow

__all__ = [
    "STATES",
    "BreakerObserver",
    "CallEvent",
    "CallListener",
    "CallPermit",
    "CircuitBreaker",
    "CircuitBreakerListener",
    "CircuitBreakerStats",
    "CircuitOpenError",
    "PermitOutcome",
    "StateTransition",
    "TransitionListener",
    "live_breakers",
    "subscribe",
]

P = ParamSpec("P")
R = TypeVar("R")

State = Literal["closed", "open", "half_open", "forced_open", "disabled"]
STATES: Final[tuple[State, ...]] = ("closed", "open", "half_open", "forced_open", "disabled")
CallOutcome = Literal["success", "failure", "rejected", "ignored"]
# What a permit's holder says of the call it admitted (a rejection never got a permit).
PermitOutcome = Literal["success", "failure", "ignored"]
_VERDICTS: Final[dict[str, bool | None]] = {"failure": True, "ignored": None}

# Calls faster than this are never "slow" under the adaptive threshold: below it, latency
# is the host's own jitter (a GC pause, a context switch), not the endpoint's health.
_ADAPTIVE_FLOOR_SECONDS: Final = 0.001
# Samples before the adaptive threshold applies: the estimate needs that many to settle.
_ADAPTIVE_WARM_UP_CALLS: Final = 100


class CircuitOpenError(Exception):
    """Raised instead of making a call that the breaker rejects.

    ``remaining`` is the number of seconds until the breaker admits a trial call again
    (0 when it is half-open and its trial calls are all taken; ``inf`` when forced open).
    Instrumentations raise subclasses that are also the wrapped library's own error type,
    so existing ``except`` clauses keep working.
    """

    # The details live in ``args`` and are read through properties, so raising one runs no
    # Python-level ``__init__``: rejections are the path an open breaker takes on every call.
    # BaseException's own ``__init__``, named here, also stops OSError's constructor (for
    # subclasses that are also e.g. requests' ConnectionError) from folding three arguments
    # into errno, strerror and filename.
    args: tuple[str, State, float]
    if TYPE_CHECKING:

        def __init__(self, name: str, state: State, remaining: float) -> None: ...

    else:
        __init__ = BaseException.__init__

    @property
    def name(self) -> str:
        """The breaker's name (its endpoint key, for instrumentations)."""
        return self.args[0]

    @property
    def state(self) -> State:
        """``open``, ``half_open`` (all trial calls taken) or ``forced_open``."""
        return self.args[1]

    @property
    def remaining(self) -> float:
        """Seconds until a trial call is admitted (0 when half-open, ``inf`` when forced)."""
        return self.args[2]

    def __str__(self) -> str:
        if self.remaining == float("inf"):
            return f"circuit breaker {self.name!r} is {self.state}: call rejected"
        return (
            f"circuit breaker {self.name!r} is {self.state}: call rejected, "
            f"next trial call in {self.remaining:.3f}s"
        )


@dataclass(frozen=True, slots=True)
class CircuitBreakerStats:
    """Exact counts since the breaker was created or last reset, and the window's rates.

    ``calls`` counts every call that reached the breaker, rejected ones included:
    ``calls == successes + failures + ignored + rejections``. ``slow`` counts successes and
    failures slower than the slow-call threshold (an ignored call counts as nothing).
    """

    calls: int
    successes: int
    failures: int
    rejections: int
    ignored: int
    slow: int
    failure_rate: float
    slow_call_rate: float
    window_calls: int
    consecutive_failures: int
    slow_call_threshold: float | None


@dataclass(frozen=True, slots=True)
class StateTransition:
    """What a listener learns about a state change."""

    breaker: str
    from_state: State
    to_state: State
    reason: str
    open_for: float | None
    at: float


@dataclass(frozen=True, slots=True)
class CallEvent:
    """What a listener learns about one call through the breaker."""

    breaker: str
    outcome: CallOutcome
    duration: float | None
    slow: bool
    error: BaseException | None


class TransitionListener(Protocol):
    """Told about every state change, after the breaker's lock is released."""

    def on_transition(self, event: StateTransition) -> None: ...


class CallListener(Protocol):
    """Told about every call, completed or rejected (this takes calls off the fast path)."""

    def on_call(self, event: CallEvent) -> None: ...


CircuitBreakerListener = TransitionListener | CallListener
"""A listener has ``on_transition``, ``on_call`` or both; one that raises is logged and
otherwise ignored: it never breaks the call."""


_logger = logging.getLogger("otel_resilience.circuit_breaker")

Fallback = Callable[..., Any] | object
_NO_FALLBACK: Final = object()
_NEVER: Final = float("inf")
# Window ring codes (0 is an empty slot).
_SUCCESS: Final = 1
_SLOW_SUCCESS: Final = 2
_FAILURE: Final = 3
_SLOW_FAILURE: Final = 4
_OUTCOME_CODES: Final = ((_SUCCESS, _SLOW_SUCCESS), (_FAILURE, _SLOW_FAILURE))
# Adaptive threshold: the frugal-streaming p99 estimate of _observe_latency, kept in the
# breaker and fed one fast success in 32 (the estimate is statistical; sampling keeps
# it off most calls).
_LATENCY_UP: Final = 1.05
_LATENCY_DOWN: Final = 1.0 - 0.05 * 0.01 / 0.99
_LATENCY_SAMPLING_MASK: Final = 31


_live: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()


class BreakerObserver(Protocol):
    """Hears about every breaker of the process: the distribution's own subscribers.

    The breakers' telemetry (metrics, span events, log records) is one: it subscribes when
    it is imported, so this module never imports it (no import cycle). Per-breaker
    listeners (``CircuitBreaker(listeners=...)``) are for a program's own use. An observer
    must not raise: it runs on the callers' threads, after the breaker's lock is released.
    """

    def breaker_created(self, breaker: CircuitBreaker) -> None:
        """A breaker was made (observable instruments are created on the first)."""

    def state_changed(self, breaker: CircuitBreaker, event: StateTransition) -> None:
        """``breaker`` changed state."""

    def call_rejected(self, breaker: CircuitBreaker, state: State) -> None:
        """``breaker`` rejected a call; on an open breaker's every call: be quick."""


_observers: tuple[BreakerObserver, ...] = ()
"""Replaced whole when one subscribes (rare), read without a lock on every event."""


def subscribe(observer: BreakerObserver) -> None:
    """Tell ``observer`` about every breaker, made before or after; subscribing twice is a no-op."""
    global _observers  # noqa: PLW0603 - replaced whole, read without a lock
    if observer not in _observers:
        _observers = (*_observers, observer)


def live_breakers() -> list[CircuitBreaker]:
    """Every breaker alive in this process (what the telemetry and health reports read)."""
    return list(_live)


def _reinitialise_after_fork() -> None:
    for breaker in live_breakers():
        breaker._after_fork()


os.register_at_fork(after_in_child=_reinitialise_after_fork)


class CircuitBreaker:
    """A circuit breaker for one remote endpoint (or any unreliable call).

    Use it as a decorator (sync or async functions), as a context manager (``with`` or
    ``async with``: entering checks the state and raises :class:`CircuitOpenError`), or
    through :meth:`call` / :meth:`call_async`. ``fallback`` (a value, or a callable taking
    the exception followed by the call's arguments; may be async on the async path) is
    returned instead of raising when a call is rejected or fails.

    ``clock`` returns seconds from any fixed origin; inject one to simulate time in tests.
    """

    __slots__ = (
        "__weakref__",
        "_call_listeners",
        "_clock",
        "_closed_since",
        "_completions",
        "_consecutive_failures",
        "_consecutive_opens",
        "_entered",
        "_failures",
        "_fallback",
        "_fast",
        "_half_open_in_flight",
        "_half_open_successes",
        "_ignored",
        "_latency",
        "_latency_samples",
        "_listeners",
        "_lock",
        "_open_until",
        "_rejections",
        "_retry_after_until",
        "_ring",
        "_ring_size",
        "_slow",
        "_slow_after",
        "_state",
        "_time_window",
        "_transitions",
        "_trial_generation",
        "_trials_valid_from",
        "_window_base",
        "name",
        "policy",
    )

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        fallback: Fallback = _NO_FALLBACK,
        listeners: tuple[CircuitBreakerListener, ...] = (),
        clock: Callable[[], float] = time.perf_counter,
        **policy_overrides: Any,
    ) -> None:
        if policy is None:
            policy = _shared_policy(**policy_overrides)
        elif policy_overrides:
            raise TypeError("pass either a policy or policy keyword arguments, not both")
        self.name = name
        self.policy = policy
        self._fallback = fallback
        self._clock = clock
        self._listeners: tuple[CircuitBreakerListener, ...] = tuple(listeners)
        self._entered: contextvars.ContextVar[tuple[CallPermit, ...]] | None = None
        self._lock = threading.Lock()
        self._trial_generation = 0
        self._start_fresh()
        _live.add(self)
        for observer in _observers:
            observer.breaker_created(self)

    # --- state ------------------------------------------------------------------------

    def _start_fresh(self) -> None:
        """(Re)initialise every counter and the state: construction, reset, fork.

        The lock is left alone: ``reset`` runs this while holding it.
        """
        policy = self.policy
        self._state: State = "closed"
        self._ring_size = policy.window_size if policy.window_kind == "count" else 1
        self._ring = bytearray(self._ring_size)
        self._time_window = TimeWindow(policy.window_size) if policy.window_kind == "time" else None
        self._completions = itertools.count()  # successes + failures, drawn atomically
        self._rejections = itertools.count()
        self._window_base = 0
        self._failures = 0
        self._ignored = 0
        self._slow = 0
        self._transitions = [0, 0, 0, 0, 0]
        self._consecutive_failures = 0
        self._consecutive_opens = 0
        self._open_until = 0.0
        self._retry_after_until = 0.0
        # Permits issued before now are forgotten: their ends free no trial slot and decide
        # nothing (generations only grow, so a permit never matches a later period).
        self._trial_generation += 1
        self._trials_valid_from = self._trial_generation
        self._half_open_in_flight = 0
        self._half_open_successes = 0
        self._closed_since = self._clock()
        self._latency = 0.0
        self._latency_samples = 0
        self._slow_after = (
            policy.slow_call_duration if policy.slow_call_duration is not None else _NEVER
        )
        self._refresh_fast_path()

    def _refresh_fast_path(self) -> None:
        self._call_listeners = any(hasattr(lst, "on_call") for lst in self._listeners)
        self._fast = (
            self._state == "closed"
            and self._time_window is None
            and self.policy.failure_result is None
            and not self._call_listeners
        )

    def _after_fork(self) -> None:
        """A forked child starts with a fresh lock and a fresh breaker of its own.

        The parent's lock may have been held by a thread that does not exist in the child.
        """
        self._lock = threading.Lock()
        self._start_fresh()

    @property
    def state(self) -> State:
        """The current state; an open breaker whose wait is over reports ``half_open``."""
        if self._state == "open" and self._clock() >= self._open_until:
            with self._lock:
                events = self._enter_half_open_if_due(self._clock())
            self._dispatch(events)
        return self._state

    def _successes_locked(self) -> int:
        return _count_value(self._completions) - self._failures

    @property
    def stats(self) -> CircuitBreakerStats:
        """Exact counts and current window rates, read consistently under the lock."""
        with self._lock:
            successes = self._successes_locked()
            failures, ignored, slow = self._failures, self._ignored, self._slow
            rejections = _count_value(self._rejections)
            window_calls, window_failures, window_slow = self._window_totals(self._clock())
            consecutive = self._consecutive_failures
            threshold = self._slow_after
        return CircuitBreakerStats(
            calls=successes + failures + ignored + rejections,
            successes=successes,
            failures=failures,
            rejections=rejections,
            ignored=ignored,
            slow=slow,
            failure_rate=window_failures / window_calls if window_calls else 0.0,
            slow_call_rate=window_slow / window_calls if window_calls else 0.0,
            window_calls=window_calls,
            consecutive_failures=consecutive,
            slow_call_threshold=None if threshold == _NEVER else threshold,
        )

    def counters(self) -> tuple[str, str, list[int], dict[str, int]]:
        """Name, state, [calls, successes, failures, rejections, ignored, slow], transitions.

        The exact counters, read consistently and cheaply (no window rates): what the
        metrics read at each collection.
        """
        with self._lock:
            successes = self._successes_locked()
            rejections = _count_value(self._rejections)
            counts = [
                successes + self._failures + self._ignored + rejections,
                successes,
                self._failures,
                rejections,
                self._ignored,
                self._slow,
            ]
            return self.name, self._state, counts, dict(zip(STATES, self._transitions, strict=True))

    def transition_counts(self) -> dict[str, int]:
        """How many times each state was entered (for the transitions counter)."""
        return self.counters()[3]

    def seconds_until_trial(self) -> float:
        """Seconds until an open breaker admits a trial call (0 when not open)."""
        state = self._state
        if state == "forced_open":
            return float("inf")
        if state != "open":
            return 0.0
        return max(0.0, self._open_until - self._clock())

    def force_open(self) -> None:
        """Reject every call until :meth:`reset` (maintenance, a known outage)."""
        self._set_manual_state("forced_open", "forced open")

    def disable(self) -> None:
        """Let every call through and never trip, still counting, until :meth:`reset`."""
        self._set_manual_state("disabled", "disabled")

    def reset(self) -> None:
        """Back to closed with empty windows, counters and backoff, as if newly created."""
        with self._lock:
            previous = self._state
            transitions = self._transitions
            self._start_fresh()
            self._transitions = transitions  # a counter of state entries never goes back
            events = self._transition_events(previous, "closed", "reset", None)
        self._dispatch(events)

    def report_retry_after(self, seconds: float) -> None:
        """Honour a server-specified wait (e.g. HTTP ``Retry-After`` on 429/503).

        If the breaker is open, it stays open at least that long; if it trips within that
        time, it opens for at least that long (both capped by ``max_recovery_timeout``).
        """
        if not seconds > 0:
            return
        with self._lock:
            now = self._clock()
            until = now + min(seconds, self.policy.max_recovery_timeout)
            self._retry_after_until = max(self._retry_after_until, until)
            if self._state == "open":
                self._open_until = max(self._open_until, until)

    def add_listener(self, listener: CircuitBreakerListener) -> None:
        """Subscribe ``listener`` to this breaker's transitions and calls."""
        with self._lock:
            self._listeners = (*self._listeners, listener)
            self._refresh_fast_path()

    # --- recording ------------------------------------------------------------------------

    def _window_totals(self, now: float) -> tuple[int, int, int]:
        """``(calls, failures, slow)`` in the sliding window; call with the lock held."""
        if self._time_window is not None:
            return self._time_window.totals(now)
        ring = self._ring
        calls = min(len(ring), _count_value(self._completions) - self._window_base)
        return (
            calls,
            ring.count(_FAILURE) + ring.count(_SLOW_FAILURE),
            ring.count(_SLOW_SUCCESS) + ring.count(_SLOW_FAILURE),
        )

    def _clear_window(self) -> None:
        """Empty the window (lock held): a new state is judged on its own calls."""
        if self._time_window is not None:
            self._time_window.clear()
        else:
            self._ring[:] = bytes(len(self._ring))
            self._window_base = _count_value(self._completions)

    def _observe_latency(self, duration: float) -> None:
        """Fold a successful call's duration into the adaptive slow-call threshold.

        The endpoint's 99th-percentile latency is estimated by frugal streaming (Ma,
        Muthukrishnan and Sandler, 2013) in a multiplicative form: a sample slower than the
        estimate moves it up 5%, a faster one down by a step 99 times smaller, so it settles
        where 1% of calls exceed it, follows a lasting change within a few hundred samples
        and needs one float. Failures are left out so that an endpoint's timeouts never
        redefine what is normal for it.
        """
        estimate = self._latency
        self._latency_samples += 1
        if estimate <= 0.0:
            estimate = duration
        elif duration > estimate:
            estimate *= _LATENCY_UP
        else:
            estimate *= _LATENCY_DOWN
        self._latency = estimate
        policy = self.policy
        if (
            policy.slow_call_duration is None
            and policy.slow_call_rate_threshold is not None
            and self._latency_samples >= _ADAPTIVE_WARM_UP_CALLS
        ):
            self._slow_after = max(
                _ADAPTIVE_FLOOR_SECONDS, estimate * policy.adaptive_slow_call_multiplier
            )

    def _record(self, error: BaseException | None, result: Any, started: float, trial: int) -> None:
        """Classify one completed call by the policy and record it."""
        policy = self.policy
        if error is None:
            failed: bool | None = policy.failure_result is not None and bool(
                policy.failure_result(result)
            )
        else:
            failed = policy.classify(error)
        self._record_outcome(failed, started, trial, error)

    def _record_outcome(
        self, failed: bool | None, started: float, trial: int, error: BaseException | None
    ) -> None:
        """Record one classified call under the lock; trip or recover."""
        now = self._clock()
        duration = now - started
        events: list[StateTransition] = []
        with self._lock:
            slow = failed is not None and duration > self._slow_after  # ignored: neither
            if slow:
                self._slow += 1
            if trial:
                trial = self._end_trial(trial)
            if failed is None:
                self._ignored += 1
            else:
                ticket = next(self._completions)
                if failed:
                    self._failures += 1
                    self._consecutive_failures += 1
                else:
                    self._consecutive_failures = 0
                    if not slow:
                        self._observe_latency(duration)
                events = self._judge(ticket, failed, slow, now, trial)
        if events:
            self._dispatch(events)
        if self._call_listeners:
            outcome: CallOutcome = (
                "ignored" if failed is None else "failure" if failed else "success"
            )
            self._notify_call(CallEvent(self.name, outcome, duration, slow, error))

    def _end_trial(self, trial: int) -> int:
        """Free the trial slot of permit ``trial`` (lock held); ``trial`` if it still decides.

        A trial decides only the half-open period that admitted it. One that outlives its
        period (the breaker re-opened on another trial's failure and turned half-open again,
        or closed) is stale: it frees its slot, since it no longer loads the endpoint, but
        its outcome counts as an ordinary call of the state it ends in, never as a trial
        of a later period.
        """
        if trial >= self._trials_valid_from:
            self._half_open_in_flight -= 1
        if trial == self._trial_generation and self._state == "half_open":
            return trial
        return 0

    def admit(self) -> CallPermit:
        """Admit one call, or raise :class:`CircuitOpenError`: the breaker's one protocol.

        Every form of guarding a call is a thin user of it (``call``, the decorator, the
        context manager, the instrumentations' call engine, a program's own code): take a
        permit before the call, then record exactly one outcome on it with
        :meth:`CallPermit.record`. The caller classifies the outcome, since it may know
        better than an exception type what a failure is (an HTTP 503 response, a driver's
        "server unavailable" error).
        """
        trial = self._acquire_permission()
        return CallPermit(self, self._clock(), trial)

    def _judge(
        self, ticket: int, failed: bool, slow: bool, now: float, trial: int
    ) -> list[StateTransition]:
        """Put a completed call in the window and decide on a transition (lock held)."""
        # Every completed call enters the window, which is emptied at each transition: the
        # rates always describe the calls made in the current state (for half-open, its
        # trials; a disabled breaker keeps its rates but never trips).
        if self._time_window is not None:
            self._time_window.record(failed, slow, now)
        else:
            self._ring[ticket % self._ring_size] = _OUTCOME_CODES[failed][slow]
        state = self._state
        if state == "closed":
            if failed or slow:
                return self._trip_if_due(now)
        elif state == "half_open" and trial:
            slow_counts = slow and self.policy.slow_call_rate_threshold is not None
            if failed or slow_counts:
                return self._open(now, "a trial call failed" if failed else "a trial call was slow")
            self._half_open_successes += 1
            if self._half_open_successes >= self.policy.half_open_max_calls:
                return self._close(now)
        return []

    def _record_fast_success(self, started: float) -> None:
        """A success through a closed breaker: lock-free unless it was slow.

        The one copy of the common case, which every call form reaches: a ticket from an
        ``itertools.count`` (atomic under the GIL), one byte of the window ring, and one
        latency sample in 32 for the adaptive threshold.
        """
        duration = self._clock() - started
        if duration > self._slow_after:
            with self._lock:
                self._slow += 1
                self._consecutive_failures = 0
                events = self._judge(next(self._completions), False, True, self._clock(), False)
            if events:
                self._dispatch(events)
            return
        ticket = next(self._completions)
        self._ring[ticket % self._ring_size] = _SUCCESS
        self._consecutive_failures = 0
        if not ticket & _LATENCY_SAMPLING_MASK:
            self._observe_latency(duration)

    # --- admission ------------------------------------------------------------------------

    def _acquire_permission(self) -> int:
        """Admit a call or raise :class:`CircuitOpenError`.

        Returns 0 for an ordinary call, or the half-open period's generation for a trial:
        the permit is tied to the period that issued it (see :meth:`_end_trial`).
        """
        state = self._state
        if state in ("closed", "disabled"):
            return 0
        if state == "forced_open":
            raise self._rejection(state, _NEVER)
        if state == "open":
            remaining = self._open_until - self._clock()
            if remaining > 0:
                raise self._rejection(state, remaining)
        with self._lock:
            events = self._enter_half_open_if_due(self._clock())
            state = self._state
            admitted = state in ("closed", "disabled")
            trial = 0
            # Trials of earlier periods still in flight hold their slots: the limit is on
            # trial calls loading the recovering endpoint at once, whoever admitted them.
            if state == "half_open" and self._half_open_in_flight < self.policy.half_open_max_calls:
                trial = self._trial_generation
                self._half_open_in_flight += 1
            remaining = self._open_until - self._clock()
        if events:
            self._dispatch(events)
        if not (admitted or trial):
            raise self._rejection(state, max(0.0, remaining) if state == "open" else 0.0)
        return trial

    def _rejection(self, state: State, remaining: float) -> CircuitOpenError:
        """Count and report a rejected call; return the error for the caller to raise.

        The caller raises it at once (``raise self._rejection(...)``), so the traceback is
        short and no frame keeps the exception in a local: a local would make a reference
        cycle through the traceback and leave garbage on every rejected call.
        """
        next(self._rejections)
        for observer in _observers:
            observer.call_rejected(self, state)
        if self._call_listeners:
            self._notify_rejection(state, remaining)
        return CircuitOpenError(self.name, state, remaining)

    def _notify_rejection(self, state: State, remaining: float) -> None:
        error = CircuitOpenError(self.name, state, remaining)
        self._notify_call(CallEvent(self.name, "rejected", None, False, error))

    # --- transitions (lock held; they return events to dispatch after release) ------------

    def _trip_if_due(self, now: float) -> list[StateTransition]:
        policy = self.policy
        if (
            policy.consecutive_failures is not None
            and self._consecutive_failures >= policy.consecutive_failures
        ):
            return self._open(now, f"{self._consecutive_failures} consecutive failures")
        calls, failures, slow = self._window_totals(now)
        if calls < policy.minimum_calls:
            return []
        if (
            policy.failure_rate_threshold is not None
            and failures / calls >= policy.failure_rate_threshold
        ):
            return self._open(now, f"failure rate {failures / calls:.0%} over {calls} calls")
        if (
            policy.slow_call_rate_threshold is not None
            and slow / calls >= policy.slow_call_rate_threshold
        ):
            return self._open(now, f"slow-call rate {slow / calls:.0%} over {calls} calls")
        return []

    def _open(self, now: float, reason: str) -> list[StateTransition]:
        policy = self.policy
        if self._state == "closed" and now - self._closed_since >= policy.healthy_period:
            self._consecutive_opens = 0
        self._consecutive_opens += 1
        wait = policy.recovery_wait(self._consecutive_opens)
        if policy.recovery_jitter:
            wait *= 1.0 + random.uniform(-policy.recovery_jitter, policy.recovery_jitter)
        if self._retry_after_until > now:
            wait = max(wait, self._retry_after_until - now)
        wait = min(wait, policy.max_recovery_timeout)
        self._open_until = now + wait
        previous = self._state
        self._state = "open"
        self._half_open_successes = 0
        self._clear_window()
        self._refresh_fast_path()
        return self._transition_events(previous, "open", reason, wait)

    def _enter_half_open_if_due(self, now: float) -> list[StateTransition]:
        if self._state != "open" or now < self._open_until:
            return []
        self._state = "half_open"
        self._trial_generation += 1  # the trials of earlier periods become stale
        self._half_open_successes = 0
        self._clear_window()  # calls begun before the breaker opened may have ended since
        return self._transition_events("open", "half_open", "recovery timeout elapsed", None)

    def _close(self, now: float) -> list[StateTransition]:
        previous = self._state
        self._state = "closed"
        self._closed_since = now
        self._consecutive_failures = 0
        self._clear_window()
        self._refresh_fast_path()
        return self._transition_events(previous, "closed", "trial calls succeeded", None)

    def _set_manual_state(self, state: State, reason: str) -> None:
        with self._lock:
            previous = self._state
            self._state = state
            self._refresh_fast_path()
            events = self._transition_events(previous, state, reason, None)
        self._dispatch(events)

    def _transition_events(
        self, previous: State, state: State, reason: str, open_for: float | None
    ) -> list[StateTransition]:
        self._transitions[STATES.index(state)] += 1
        return [StateTransition(self.name, previous, state, reason, open_for, self._clock())]

    # --- listeners ---------------------------------------------------------------------

    def _dispatch(self, events: list[StateTransition]) -> None:
        for event in events:
            for observer in _observers:
                observer.state_changed(self, event)
            for listener in self._listeners:
                handler = getattr(listener, "on_transition", None)
                if handler is not None:
                    _call_listener(handler, event)

    def _notify_call(self, event: CallEvent) -> None:
        for listener in self._listeners:
            handler = getattr(listener, "on_call", None)
            if handler is not None:
                _call_listener(handler, event)

    # --- public call forms ---------------------------------------------------------------

    def call(self, function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``function`` through the breaker."""
        if not self._fast:
            if self._state == "open" and self._fallback is _NO_FALLBACK:
                # An open breaker's every call lands here: reject in as few frames as possible.
                remaining = self._open_until - self._clock()
                if remaining > 0:
                    raise self._rejection("open", remaining)
            return self._call_admitted(function, args, kwargs)
        # Closed, with nothing to decide at admission: the permit would be an ordinary one
        # (no trial), so the call records straight onto the breaker, without making one.
        started = self._clock()
        try:
            result = function(*args, **kwargs)
        except BaseException as error:
            self._record(error, None, started, 0)
            if self._fallback is _NO_FALLBACK or not isinstance(error, Exception):
                raise
            return cast(R, self._use_fallback(error, args, kwargs))
        self._record_fast_success(started)
        return result

    def _call_admitted(self, function: Callable[..., R], args: Any, kwargs: Any) -> R:
        """``call`` when the breaker is not simply closed: through a permit."""
        if self._fallback is _NO_FALLBACK:
            permit = self.admit()
        else:
            try:
                permit = self.admit()
            except CircuitOpenError as rejected:
                return cast(R, self._use_fallback(rejected, args, kwargs))
        try:
            result = function(*args, **kwargs)
        except BaseException as error:
            permit._record_error(error)
            if self._fallback is _NO_FALLBACK or not isinstance(error, Exception):
                raise
            return cast(R, self._use_fallback(error, args, kwargs))
        permit._record_result(result)
        return result

    async def call_async(
        self, function: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Await ``function(*args, **kwargs)`` through the breaker."""
        try:
            permit = self.admit()
        except CircuitOpenError as rejected:
            if self._fallback is _NO_FALLBACK:
                raise
            return cast(R, await self._use_fallback_async(rejected, args, kwargs))
        try:
            result = await function(*args, **kwargs)
        except BaseException as error:
            permit._record_error(error)
            if self._fallback is _NO_FALLBACK or not isinstance(error, Exception):
                raise
            return cast(R, await self._use_fallback_async(error, args, kwargs))
        permit._record_result(result)
        return result

    def _use_fallback(self, error: BaseException, args: Any, kwargs: Any) -> Any:
        fallback = self._fallback
        if callable(fallback):
            return fallback(error, *args, **kwargs)
        return fallback

    async def _use_fallback_async(self, error: BaseException, args: Any, kwargs: Any) -> Any:
        value = self._use_fallback(error, args, kwargs)
        if inspect.isawaitable(value):
            return await value
        return value

    @overload
    def __call__(
        self, function: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, function: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, function: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function so every call goes through the breaker.

        A generator function's body runs only as it is iterated, after the call that made
        the generator has returned, so for one the breaker guards the iteration instead:
        admission at the first ``next`` (a rejection is raised there), and the outcome when
        it ends: exhausted is a success, an exception raised while iterating is judged like
        a call's, and a consumer that stops early (``close``) counts as neither. ``send``
        and ``throw`` reach the decorated generator as they would without the breaker. A
        fallback cannot stand in for a stream of items, so a breaker with one refuses
        generator functions.
        """
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            if self._fallback is not _NO_FALLBACK:
                raise TypeError(
                    f"circuit breaker {self.name!r} has a fallback, which cannot stand in for "
                    f"the items of generator function {function.__qualname__}"
                )
            if inspect.isasyncgenfunction(function):
                return _guarded_async_generator(self, function)
            return _guarded_generator(self, function)
        return decorate(function, self.call, self.call_async)

    # Context-manager forms. The start time lives in a context variable, so one breaker can
    # be entered concurrently by threads and asyncio tasks. No fallback here: a ``with``
    # block has no value to replace.

    def __enter__(self) -> CircuitBreaker:
        permit = self.admit()
        entered = self._entered
        if entered is None:
            entered = self._entered = contextvars.ContextVar(f"breaker {self.name}", default=())
        entered.set((*entered.get(), permit))
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        entered = self._entered
        assert entered is not None, "__exit__ without __enter__"
        stack = entered.get()
        permit = stack[-1]
        entered.set(stack[:-1])
        if error is None:
            permit._record_result(None)
        else:
            permit._record_error(error)

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(error_type, error, traceback)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self._state}>"


class CallPermit:
    """One admitted call (:meth:`CircuitBreaker.admit`); record its outcome once.

    Not made directly: a permit ties its call to the breaker and, for a half-open trial,
    to the half-open period that admitted it.
    """

    __slots__ = ("_breaker", "_recorded", "_started", "_trial")

    def __init__(self, breaker: CircuitBreaker, started: float, trial: int) -> None:
        self._breaker = breaker
        self._started = started
        self._trial = trial
        self._recorded = False

    @property
    def trial(self) -> bool:
        """Whether the breaker admitted this call as a half-open trial."""
        return bool(self._trial)

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker that admitted the call."""
        return self._breaker

    def record(self, outcome: PermitOutcome, error: BaseException | None = None) -> None:
        """How the admitted call ended: ``"success"``, ``"failure"`` or ``"ignored"``.

        ``ignored`` counts as neither success nor failure (an error that says nothing about
        the endpoint, or a call abandoned by its caller) but frees a trial's slot. ``error``
        is what listeners are told. A second record on one permit is ignored, so that a
        call is never counted twice.
        """
        if self._recorded:
            return
        self._recorded = True
        breaker = self._breaker
        if outcome == "success":
            if not self._trial and breaker._fast:
                breaker._record_fast_success(self._started)
            else:
                breaker._record_outcome(False, self._started, self._trial, error)
            return
        if outcome not in _VERDICTS:
            raise ValueError(f"outcome must be 'success', 'failure' or 'ignored', not {outcome!r}")
        breaker._record_outcome(_VERDICTS[outcome], self._started, self._trial, error)

    def _record_error(self, error: BaseException) -> None:
        """Record ``error`` as the breaker's policy classifies it (the library call forms)."""
        if not self._recorded:
            self._recorded = True
            self._breaker._record(error, None, self._started, self._trial)

    def _record_result(self, result: Any) -> None:
        """Record a returned ``result`` as the policy classifies it (``failure_result``)."""
        if self._recorded:
            return
        breaker = self._breaker
        if not self._trial and breaker._fast:
            self._recorded = True
            breaker._record_fast_success(self._started)
        else:
            self._recorded = True
            breaker._record(None, result, self._started, self._trial)


def _guarded_generator(
    breaker: CircuitBreaker, function: Callable[..., Generator[Any, Any, Any]]
) -> Callable[..., Generator[Any, Any, Any]]:
    """``function``'s generators, iterated through ``breaker`` (see ``__call__``)."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        permit = breaker.admit()
        try:
            returned = yield from function(*args, **kwargs)
        except BaseException as error:  # GeneratorExit too: policy.classify ignores it
            permit._record_error(error)
            raise
        permit._record_result(returned)
        return returned

    return guarded


def _guarded_async_generator(
    breaker: CircuitBreaker, function: Callable[..., AsyncGenerator[Any, Any]]
) -> Callable[..., AsyncGenerator[Any, Any]]:
    """``function``'s async generators, iterated through ``breaker`` (see ``__call__``).

    An async generator has no ``yield from``: ``asend`` and ``athrow`` are forwarded here.
    """

    @functools.wraps(function)
    async def guarded(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        permit = breaker.admit()
        inner = function(*args, **kwargs)
        try:
            try:
                item = await inner.__anext__()
                while True:
                    try:
                        sent = yield item
                    except GeneratorExit:
                        await inner.aclose()
                        raise
                    except BaseException as thrown:  # athrow() on us: into the inner one
                        item = await inner.athrow(thrown)
                    else:
                        item = await inner.asend(sent)
            except StopAsyncIteration:
                pass
        except BaseException as error:
            permit._record_error(error)
            raise
        permit._record_result(None)

    return guarded


def _shared_policy(**settings: Any) -> BreakerPolicy:
    """One policy object per distinct keyword set: breakers made alike share it."""
    try:
        return _cached_policy(tuple(sorted(settings.items())))
    except TypeError:  # an unhashable setting (a list of exception types, say)
        return BreakerPolicy(**settings)


@functools.lru_cache(maxsize=256)
def _cached_policy(settings: tuple[tuple[str, Any], ...]) -> BreakerPolicy:
    return BreakerPolicy(**dict(settings))


def _count_value(counter: itertools.count[int]) -> int:
    """How many values an ``itertools.count()`` has handed out, without drawing one."""
    return int(repr(counter)[6:-1])


def _call_listener(handler: Callable[[Any], None], event: Any) -> None:
    try:
        handler(event)
    except Exception:
        _logger.warning("A circuit-breaker listener raised; the call is unaffected", exc_info=True)
