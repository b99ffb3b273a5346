"""Model-based tests of the circuit breaker against a small reference state machine.

The reference model below restates the documented behaviour of :class:`CircuitBreaker` and
:class:`BreakerPolicy` in plain Python, driven by a fake clock. Hypothesis draws a policy per
test case and a sequence of operations (calls that succeed, fail, raise ignored exceptions or
take time; calls that overlap, through permits taken and recorded later in any order, so
that trials outlive their half-open period; clock advances including exact boundaries;
``force_open``; ``disable``; ``reset``), each call made in one of the breaker's forms (its
protocol itself: ``admit`` and ``CallPermit.record``; ``call``; ``with``), and compares
after every step the state, every statistic and, for rejected calls, the rejection itself.

Where the documentation leaves a detail open, the model takes the reading noted at that spot
(search for "Reading:").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

import pytest
from hypothesis import given, settings, target
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from otel_resilience.breaker._breaker import (
    CallPermit,
    CircuitBreaker,
    CircuitBreakerStats,
    CircuitOpenError,
)

State = Literal["closed", "open", "half_open", "forced_open", "disabled"]
Outcome = Literal["success", "failure", "ignored"]
# What the guarded function does: return, raise a failure, raise an exception listed in
# ignored_exceptions, raise a BaseException that is not an Exception (like cancellation), or
# raise an Exception that is neither (a failure only when failure_exceptions is broad).
CallKind = Literal["success", "failure", "ignored", "cancelled", "unlisted"]
# How long the guarded function takes, relative to the policy's slow_call_duration.
Speed = Literal["instant", "at_threshold", "slow"]
Boundary = Literal["open_until", "just_before_open_until", "healthy", "just_before_healthy"]

INF = float("inf")
SPEEDS = st.sampled_from(["instant", "at_threshold", "slow"])


class FailureError(Exception):
    """Always a failure (it matches ``failure_exceptions`` in every drawn policy)."""


class IgnoredError(Exception):
    """Listed in ``ignored_exceptions``: counts as neither success nor failure."""


class UnlistedError(Exception):
    """A failure under ``failure_exceptions=(Exception,)``, ignored under the narrow one."""


class Cancelled(BaseException):
    """Not an ``Exception``: outside the default ``failure_exceptions``, so ignored."""


def _is_failure_error(error: BaseException) -> bool:
    return isinstance(error, FailureError)


def _is_ignored_error(error: BaseException) -> bool:
    return isinstance(error, IgnoredError)


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- policy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    consecutive_failures: int | None
    failure_rate_threshold: float | None
    slow_call_duration: float | None
    slow_call_rate_threshold: float | None
    window_size: int
    minimum_calls: int
    half_open_max_calls: int
    recovery_timeout: float
    recovery_backoff_multiplier: float
    max_recovery_timeout: float
    healthy_period: float
    narrow_failures: bool  # failure_exceptions matches FailureError only
    predicates: bool  # exception matchers given as predicates rather than types

    def keywords(self) -> dict[str, Any]:
        failure_matcher: type[BaseException] | Callable[[BaseException], bool]
        if self.narrow_failures:
            failure_matcher = _is_failure_error if self.predicates else FailureError
        else:
            failure_matcher = Exception
        ignored_matcher = _is_ignored_error if self.predicates else IgnoredError
        return {
            "consecutive_failures": self.consecutive_failures,
            "failure_rate_threshold": self.failure_rate_threshold,
            "slow_call_duration": self.slow_call_duration,
            "slow_call_rate_threshold": self.slow_call_rate_threshold,
            "window_kind": "count",
            "window_size": self.window_size,
            "minimum_calls": self.minimum_calls,
            "half_open_max_calls": self.half_open_max_calls,
            "recovery_timeout": self.recovery_timeout,
            "recovery_backoff_multiplier": self.recovery_backoff_multiplier,
            "max_recovery_timeout": self.max_recovery_timeout,
            "recovery_jitter": 0.0,
            "healthy_period": self.healthy_period,
            "failure_exceptions": (failure_matcher,),
            "ignored_exceptions": (ignored_matcher,),
        }

    def duration(self, speed: Speed) -> float:
        """Seconds the guarded function takes (all values are exact binary fractions)."""
        threshold = 1.0 if self.slow_call_duration is None else self.slow_call_duration
        if speed == "instant":
            return 0.0
        if speed == "at_threshold":
            return threshold  # not slow: slow means strictly longer
        return threshold * 2 + 0.5


@st.composite
def policies(draw: st.DrawFn, *, trips: bool = True) -> Policy:
    """A policy with small numbers; ``trips=False`` leaves every trip condition disabled."""
    window_size = draw(st.integers(1, 10))
    # A count window never holds more than window_size calls, so BreakerPolicy rejects a
    # larger minimum_calls (the rate conditions could never trip).
    minimum_calls = draw(st.integers(1, window_size))
    consecutive = rate = slow_rate = None
    slow_duration = draw(st.none() | st.sampled_from([0.5, 1.0, 5.0]))
    if trips:
        rate = draw(st.none() | st.sampled_from([0.2, 0.25, 1 / 3, 0.5, 0.75, 1.0]))
        if slow_duration is not None:
            slow_rate = draw(st.none() | st.sampled_from([0.25, 0.5, 1.0]))
        # at least one trip condition most of the time (never tripping has its own test)
        if rate is None and slow_rate is None:
            consecutive = draw(st.integers(1, 6) | st.integers(1, 6) | st.none())
        else:
            consecutive = draw(st.none() | st.integers(1, 6))
    recovery = float(draw(st.integers(1, 60)))
    return Policy(
        consecutive_failures=consecutive,
        failure_rate_threshold=rate,
        slow_call_duration=slow_duration,
        slow_call_rate_threshold=slow_rate,
        window_size=window_size,
        minimum_calls=minimum_calls,
        half_open_max_calls=draw(st.integers(1, 4)),
        recovery_timeout=recovery,
        recovery_backoff_multiplier=draw(st.sampled_from([1.0, 1.5, 2.0, 2.5, 3.0])),
        max_recovery_timeout=float(
            draw(st.sampled_from([recovery, 2 * recovery, 600]) | st.integers(int(recovery), 300))
        ),
        healthy_period=float(draw(st.sampled_from([0, 1, 30, 60, 600]))),
        narrow_failures=draw(st.booleans()),
        predicates=draw(st.booleans()),
    )


# --- the reference model -----------------------------------------------------------------


def _without_numbers(text: str) -> str:
    return "".join(c for c in text if not (c.isdigit() or c in "./"))


class BreakerModel:
    """The documented state machine, for sequential calls. Plain and deliberately naive."""

    def __init__(self, policy: Policy, now: float) -> None:
        self.policy = policy
        self.history: list[str] = []  # the model's transitions, for failure messages
        # What this run has been through (coverage, to steer generation), across resets.
        self.milestones: set[str] = set()
        self.reset(now)
        self.history.clear()

    def reset(self, now: float) -> None:
        """Closed, with empty window, counters and backoff, as if newly created."""
        self._state: State = "closed"
        self.calls = 0
        self.successes = 0
        self.failures = 0
        self.rejections = 0
        self.ignored = 0
        self.slow = 0
        self.consecutive_failures = 0
        # (failed, slow) of the latest completed calls since the window was last emptied.
        # Reading: the window holds every completed (successful or failed) call since then,
        # whatever the state; it is emptied when the breaker opens, turns half-open, closes
        # or is reset ("a new state is judged on its own calls"), not by force_open() or
        # disable() ("a disabled breaker keeps its rates").
        self.window: deque[tuple[bool, bool]] = deque(maxlen=self.policy.window_size)
        self.opens_in_a_row = 0  # k: the k-th consecutive opening waits the k-th backoff step
        self.open_until = 0.0
        self.closed_since = now
        self.trial_successes = 0
        # Overlapping calls: a trial permit carries the half-open period that issued it.
        # Reading: at most half_open_max_calls trials are in flight at once, whichever
        # period issued them; only the current period's trials decide it; a trial that
        # outlived its period counts as an ordinary call; reset forgets every permit.
        self.period = getattr(self, "period", 0) + 1
        self.permits_valid_from = self.period
        self.trials_in_flight = 0
        self.history.append(f"t={now}: reset to closed")

    # queries

    def state(self, now: float) -> State:
        """An open breaker whose wait is over is half-open."""
        if self._state == "open" and now >= self.open_until:
            self._state = "half_open"
            self.period += 1
            self.trial_successes = 0
            self.window.clear()
            self.history.append(f"t={now}: half_open")
        return self._state

    def is_slow(self, duration: float) -> bool:
        limit = self.policy.slow_call_duration
        return limit is not None and duration > limit

    def outcome(self, kind: CallKind) -> Outcome:
        if kind == "success":
            return "success"
        if kind == "failure":
            return "failure"
        if kind in ("ignored", "cancelled"):
            return "ignored"
        return "ignored" if self.policy.narrow_failures else "failure"

    def recovery_wait(self) -> float:
        p = self.policy
        k = self.opens_in_a_row
        return min(
            p.max_recovery_timeout, p.recovery_timeout * p.recovery_backoff_multiplier ** (k - 1)
        )

    def seconds_until_trial(self, now: float) -> float:
        state = self.state(now)
        if state == "forced_open":
            return INF
        if state == "open":
            return self.open_until - now
        return 0.0

    def stats(self) -> CircuitBreakerStats:
        n = len(self.window)
        window_failures = sum(1 for failed, _ in self.window if failed)
        window_slow = sum(1 for _, slow in self.window if slow)
        return CircuitBreakerStats(
            calls=self.calls,
            successes=self.successes,
            failures=self.failures,
            rejections=self.rejections,
            ignored=self.ignored,
            slow=self.slow,
            failure_rate=window_failures / n if n else 0.0,
            slow_call_rate=window_slow / n if n else 0.0,
            window_calls=n,
            consecutive_failures=self.consecutive_failures,
            slow_call_threshold=self.policy.slow_call_duration,
        )

    # operations

    def admit(self, now: float) -> tuple[State, float] | int:
        """A call reaching the breaker: ``(state, remaining)`` if it is rejected, else its
        permit (0 for an ordinary call, the issuing period for a half-open trial)."""
        state = self.state(now)
        if state == "forced_open":
            self.rejected()
            self.milestones.add("rejected when forced open")
            return ("forced_open", INF)
        if state == "open":
            self.rejected()
            self.milestones.add("rejected when open")
            return ("open", self.open_until - now)
        if state == "half_open":
            if self.trials_in_flight >= self.policy.half_open_max_calls:
                self.rejected()
                self.milestones.add("rejected: every trial slot taken")
                return ("half_open", 0.0)
            self.trials_in_flight += 1
            return self.period
        return 0

    def rejected(self) -> None:
        self.calls += 1
        self.rejections += 1

    def complete(self, outcome: Outcome, duration: float, now: float, permit: int = 0) -> None:
        """Record an admitted call that ended at ``now`` after ``duration`` seconds."""
        self.milestones.add(f"{outcome} taking {duration}s when {self._state}")
        self.calls += 1
        trial = False
        if permit:
            if permit >= self.permits_valid_from:
                self.trials_in_flight -= 1
            trial = permit == self.period and self._state == "half_open"
            if not trial:
                self.milestones.add(f"stale trial ended when {self._state}")
        if outcome == "ignored":
            # "slow counts successes and failures ... (an ignored call counts as nothing)"
            self.ignored += 1
            return
        failed = outcome == "failure"
        slow = self.is_slow(duration)
        if slow:
            self.slow += 1
        if failed:
            self.failures += 1
            self.consecutive_failures += 1
        else:
            self.successes += 1
            self.consecutive_failures = 0
        self.window.append((failed, slow))
        state = self._state
        if state == "closed" and (failed or slow):
            # Documented: "The conditions are checked whenever a failure or a slow call is
            # recorded: a success never trips the breaker, even one that brings the window up
            # to minimum_calls."
            reason = self.trip_reason()
            if reason is not None:
                self.open(now, f"{reason} after a {'slow ' if slow else ''}{outcome}")
        elif state == "half_open" and trial:
            if failed:
                self.open(now, "a trial call failed")
            elif slow and self.policy.slow_call_rate_threshold is not None:
                # Reading: with slow-call tripping enabled a slow trial fails the probe; with
                # slow_call_rate_threshold=None ("disables it") a slow success is a success.
                self.open(now, "a trial call was slow")
            else:
                self.trial_successes += 1
                if self.trial_successes >= self.policy.half_open_max_calls:
                    self.close(now)
        # disabled: counted (above), never trips

    def trip_reason(self) -> str | None:
        """Why a closed breaker must open ("any enabled condition holds"), or None."""
        p = self.policy
        if p.consecutive_failures is not None and (
            self.consecutive_failures >= p.consecutive_failures
        ):
            return f"{self.consecutive_failures} consecutive failures"
        n = len(self.window)
        if n < p.minimum_calls:
            return None
        failures = sum(1 for failed, _ in self.window if failed)
        if p.failure_rate_threshold is not None and failures / n >= p.failure_rate_threshold:
            return f"failure rate {failures}/{n} >= {p.failure_rate_threshold}"
        slow = sum(1 for _, was_slow in self.window if was_slow)
        if p.slow_call_rate_threshold is not None and slow / n >= p.slow_call_rate_threshold:
            return f"slow-call rate {slow}/{n} >= {p.slow_call_rate_threshold}"
        return None

    def open(self, now: float, reason: str) -> None:
        closed_for = now - self.closed_since
        if self._state == "closed" and self.opens_in_a_row:
            position = (closed_for > self.policy.healthy_period) - (
                closed_for < self.policy.healthy_period
            )
            self.milestones.add(f"re-opened, healthy period comparison {position}")
        if self._state == "closed" and closed_for >= self.policy.healthy_period:
            self.opens_in_a_row = 0  # closed for healthy_period: backoff starts over
        self.opens_in_a_row += 1
        self.milestones.add(f"opened from {self._state}: {_without_numbers(reason)}")
        self.milestones.add(f"opened #{min(self.opens_in_a_row, 3)} from {self._state}")
        wait = self.recovery_wait()
        self.open_until = now + wait
        self._state = "open"
        self.window.clear()
        self.trial_successes = 0
        self.history.append(f"t={now}: open for {wait}s ({reason})")

    def close(self, now: float) -> None:
        self._state = "closed"
        self.closed_since = now
        self.consecutive_failures = 0
        self.window.clear()
        self.history.append(f"t={now}: closed ({self.trial_successes} trial successes)")
        self.milestones.add("closed after trials")

    def force_open(self, now: float) -> None:
        self._state = "forced_open"
        self.history.append(f"t={now}: forced_open")

    def disable(self, now: float) -> None:
        self._state = "disabled"
        self.history.append(f"t={now}: disabled")


# --- calling through the real breaker -----------------------------------------------------


def _guarded(clock: FakeClock, kind: CallKind, duration: float) -> Callable[[], str]:
    def function() -> str:
        clock.now += duration
        if kind == "failure":
            raise FailureError
        if kind == "ignored":
            raise IgnoredError
        if kind == "cancelled":
            raise Cancelled
        if kind == "unlisted":
            raise UnlistedError
        return "result"

    return function


_RAISED: dict[CallKind, type[BaseException]] = {
    "failure": FailureError,
    "ignored": IgnoredError,
    "cancelled": Cancelled,
    "unlisted": UnlistedError,
}


Form = Literal["call", "permit", "with"]
FORMS = st.sampled_from(["call", "permit", "with"])


def _through_permit(breaker: CircuitBreaker, function: Callable[[], str], outcome: Outcome) -> str:
    """The breaker's protocol itself: admit, call, record what the caller judged."""
    permit = breaker.admit()
    try:
        result = function()
    except BaseException as error:
        permit.record(outcome, error)
        raise
    permit.record(outcome)
    return result


def _through_with(breaker: CircuitBreaker, function: Callable[[], str]) -> str:
    with breaker:
        return function()


def _call(
    breaker: CircuitBreaker,
    clock: FakeClock,
    kind: CallKind,
    duration: float,
    form: Form = "call",
    outcome: Outcome | None = None,
) -> CircuitOpenError | None:
    """Call through ``breaker`` in ``form``; the rejection, or None when the function ran as
    expected. ``outcome`` is the policy's verdict, which a permit's holder records."""
    function = _guarded(clock, kind, duration)
    try:
        if form == "call":
            result = breaker.call(function)
        elif form == "permit":
            assert outcome is not None, "a permit's holder says what the outcome was"
            result = _through_permit(breaker, function, outcome)
        else:
            result = _through_with(breaker, function)
    except CircuitOpenError as rejected:
        return rejected
    except BaseException as error:
        assert type(error) is _RAISED.get(kind), f"{kind} call raised {error!r}"
        return None
    assert kind == "success", f"{kind} call returned {result!r} instead of raising"
    assert result == "result"
    return None


# --- the state machine --------------------------------------------------------------------


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.policy: Policy
        self.model: BreakerModel
        self.breaker: CircuitBreaker
        self.steps: list[str] = []
        self.pending: list[tuple[CallPermit, int, float]] = []

    @initialize(policy=policies(), start=st.sampled_from([0.0, 1000.0, 12345.5]))
    def create(self, policy: Policy, start: float) -> None:
        self.clock.now = start
        self.policy = policy
        self.model = BreakerModel(policy, start)
        self.breaker = CircuitBreaker("model", clock=self.clock, **policy.keywords())

    def _context(self) -> str:
        return (
            f"\n  policy: {self.policy}\n  steps: {self.steps}\n"
            f"  model transitions: {self.model.history}"
        )

    def _call_and_compare(self, kind: CallKind, speed: Speed, form: Form) -> None:
        duration = self.policy.duration(speed)
        started = self.clock.now
        self.steps.append(f"t={started}: {kind} call taking {duration}s, by {form}")
        expected = self.model.admit(started)
        outcome = self.model.outcome(kind)
        rejected = _call(self.breaker, self.clock, kind, duration, form, outcome)
        if isinstance(expected, tuple):
            state, remaining = expected
            assert rejected is not None, (
                f"the call ran although the breaker should reject it ({state}, {remaining}s "
                f"left){self._context()}"
            )
            assert self.clock.now == started, "a rejected call must not run the function"
            assert (rejected.name, rejected.state, rejected.remaining) == (
                "model",
                state,
                remaining,
            ), f"rejection {rejected!r} differs from ({state}, {remaining}){self._context()}"
            self.agrees_with_model()
            return
        assert rejected is None, (
            f"call rejected ({rejected!r}) but the model admits it in state "
            f"{self.model.state(started)}{self._context()}"
        )
        self.model.complete(outcome, duration, self.clock.now, expected)
        self.agrees_with_model()

    @rule()
    def take_permit(self) -> None:
        """Begin a call that another rule ends later: calls overlap, trials outlive periods."""
        now = self.clock.now
        self.steps.append(f"t={now}: admit() #{len(self.pending)}")
        expected = self.model.admit(now)
        try:
            permit = self.breaker.admit()
        except CircuitOpenError as rejected:
            assert isinstance(expected, tuple), (
                f"admit() rejected ({rejected!r}) but the model admits it{self._context()}"
            )
            assert (rejected.state, rejected.remaining) == expected, (
                f"rejection {rejected!r} differs from {expected}{self._context()}"
            )
            return
        assert not isinstance(expected, tuple), (
            f"admit() admitted a call the model rejects ({expected}){self._context()}"
        )
        self.pending.append((permit, expected, now))

    @rule(
        which=st.integers(0, 7),
        outcome=st.sampled_from(["success", "failure", "ignored"]),
        speed=SPEEDS,
    )
    def record_permit(self, which: int, outcome: Outcome, speed: Speed) -> None:
        """End one of the calls begun by ``take_permit``, in any order."""
        if not self.pending:
            return
        permit, model_permit, started = self.pending.pop(which % len(self.pending))
        self.clock.now += self.policy.duration(speed)
        self.steps.append(f"t={self.clock.now}: record {outcome} on a permit from t={started}")
        permit.record(outcome)
        self.model.complete(outcome, self.clock.now - started, self.clock.now, model_permit)

    @rule(speed=SPEEDS, times=st.integers(1, 4), form=FORMS)
    def call_succeeds(self, speed: Speed, times: int, form: Form) -> None:
        for _ in range(times):
            self._call_and_compare("success", speed, form)

    @rule(speed=SPEEDS, times=st.integers(1, 6), form=FORMS)
    def call_fails(self, speed: Speed, times: int, form: Form) -> None:
        for _ in range(times):
            self._call_and_compare("failure", speed, form)

    @rule(kind=st.sampled_from(["ignored", "cancelled", "unlisted"]), speed=SPEEDS, form=FORMS)
    def call_raises_other(self, kind: CallKind, speed: Speed, form: Form) -> None:
        self._call_and_compare(kind, speed, form)

    @rule(seconds=st.integers(0, 300).map(float) | st.sampled_from([0.5, 0.25, 1.5]))
    def advance(self, seconds: float) -> None:
        self.steps.append(f"t={self.clock.now}: advance {seconds}s")
        self.clock.now += seconds

    @rule()
    def wait_out_open_period(self) -> None:
        """Advance exactly to the end of the current open period (the model's open_until)."""
        self.advance_to("open_until")

    @rule(
        boundary=st.sampled_from(
            ["open_until", "just_before_open_until", "healthy", "just_before_healthy"]
        )
    )
    def advance_to(self, boundary: Boundary) -> None:
        """Jump exactly to (or half a second before) the end of the open or healthy period."""
        model = self.model
        target = {
            "open_until": model.open_until,
            "just_before_open_until": model.open_until - 0.5,
            "healthy": model.closed_since + self.policy.healthy_period,
            "just_before_healthy": model.closed_since + self.policy.healthy_period - 0.5,
        }[boundary]
        if target > self.clock.now:
            self.steps.append(f"t={self.clock.now}: advance to {boundary} t={target}")
            self.clock.now = target

    @rule()
    def force_open(self) -> None:
        self.steps.append(f"t={self.clock.now}: force_open()")
        self.breaker.force_open()
        self.model.force_open(self.clock.now)

    @rule()
    def disable(self) -> None:
        self.steps.append(f"t={self.clock.now}: disable()")
        self.breaker.disable()
        self.model.disable(self.clock.now)

    @rule()
    def reset(self) -> None:
        self.steps.append(f"t={self.clock.now}: reset()")
        self.breaker.reset()
        self.model.reset(self.clock.now)

    def teardown(self) -> None:
        if hasattr(self, "model"):
            # Steer generation towards runs that go through many different situations.
            target(float(len(self.model.milestones)), label="milestones")

    @invariant()
    def agrees_with_model(self) -> None:
        now = self.clock.now
        expected_state = self.model.state(now)
        actual_state = self.breaker.state
        assert actual_state == expected_state, (
            f"state is {actual_state!r}, the documented behaviour gives {expected_state!r}"
            f"{self._context()}"
        )
        actual, expected = self.breaker.stats, self.model.stats()
        differences = {
            field: (getattr(actual, field), getattr(expected, field))
            for field in CircuitBreakerStats.__dataclass_fields__
            if getattr(actual, field) != getattr(expected, field)
        }
        assert not differences, (
            f"stats differ in state {actual_state!r} as field: (actual, expected): "
            f"{differences}{self._context()}"
        )
        actual_wait = self.breaker.seconds_until_trial()
        expected_wait = self.model.seconds_until_trial(now)
        assert actual_wait == expected_wait, (
            f"seconds_until_trial() is {actual_wait}, expected {expected_wait}{self._context()}"
        )


BreakerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestBreakerModel = BreakerMachine.TestCase


# --- plain properties ---------------------------------------------------------------------

Operation = tuple[str, Any]
call_operations = st.tuples(
    st.just("call"),
    st.tuples(
        st.sampled_from(["success", "failure", "ignored", "cancelled", "unlisted"]),
        st.sampled_from(["instant", "at_threshold", "slow"]),
    ),
)
advance_operations = st.tuples(
    st.just("advance"), st.integers(0, 300).map(float) | st.sampled_from([0.5, 1.5])
)
manual_operations = st.tuples(st.sampled_from(["force_open", "disable", "reset"]), st.none())


@settings(max_examples=200, deadline=None)
@given(
    policy=policies(),
    operations=st.lists(
        st.one_of(call_operations, advance_operations, manual_operations), max_size=60
    ),
)
def test_calls_are_successes_failures_ignored_and_rejections(
    policy: Policy, operations: list[Operation]
) -> None:
    """``calls == successes + failures + ignored + rejections``, each one counted as seen."""
    clock = FakeClock(100.0)
    breaker = CircuitBreaker("identity", clock=clock, **policy.keywords())
    seen = {"calls": 0, "returned": 0, "raised": 0, "rejections": 0}
    for operation, argument in operations:
        if operation == "call":
            kind, speed = argument
            seen["calls"] += 1
            if _call(breaker, clock, kind, policy.duration(speed)) is not None:
                seen["rejections"] += 1
            elif kind == "success":
                seen["returned"] += 1
            else:
                seen["raised"] += 1
        elif operation == "advance":
            clock.now += argument
        else:
            getattr(breaker, operation)()
            if operation == "reset":
                seen = dict.fromkeys(seen, 0)
        stats = breaker.stats
        assert stats.calls == stats.successes + stats.failures + stats.ignored + stats.rejections
        assert stats.calls == seen["calls"]
        assert stats.rejections == seen["rejections"]
        assert stats.successes == seen["returned"]
        assert stats.failures + stats.ignored == seen["raised"]
        assert 0 <= stats.window_calls <= policy.window_size
        assert 0.0 <= stats.failure_rate <= 1.0


@settings(max_examples=200, deadline=None)
@given(
    policy=policies(trips=False),
    operations=st.lists(st.one_of(call_operations, advance_operations), max_size=80),
)
def test_without_trip_conditions_never_opens(policy: Policy, operations: list[Operation]) -> None:
    """consecutive_failures, failure_rate_threshold and slow-call rate all None: no opening."""
    assert policy.consecutive_failures is None and policy.failure_rate_threshold is None
    clock = FakeClock()
    breaker = CircuitBreaker("never", clock=clock, **policy.keywords())
    for operation, argument in operations:
        if operation == "call":
            kind, speed = argument
            rejected = _call(breaker, clock, kind, policy.duration(speed))
            assert rejected is None, f"rejected {rejected!r} without any trip condition"
        else:
            clock.now += argument
        assert breaker.state == "closed"
    assert breaker.stats.rejections == 0


@settings(max_examples=150, deadline=None)
@given(
    policy=policies(),
    cycles=st.lists(
        st.tuples(
            st.integers(0, 4),  # trial successes before a trial failure (enough ones close it)
            SPEEDS,  # how long the trial calls take
            st.sampled_from(["none", "healthy", "just_before_healthy", "while_closed"]),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_recovery_cycles_follow_the_model(
    policy: Policy, cycles: list[tuple[int, Speed, str]]
) -> None:
    """Trip, wait out the open period exactly, probe, and pause closed: over and over.

    The state machine reaches these deep paths (backoff growth, its restart after
    healthy_period) only now and then; this drives them directly, through the same model.
    """
    machine = BreakerMachine()
    machine.create(policy, 0.0)
    for successes, speed, pause in cycles:
        for _ in range(12):  # trip, if this policy can trip on failures
            if machine.model.state(machine.clock.now) != "closed":
                break
            machine.call_fails("instant", 1, "call")
        machine.wait_out_open_period()
        machine.agrees_with_model()
        for _ in range(successes):
            if machine.model.state(machine.clock.now) != "half_open":
                break
            machine.call_succeeds(speed, 1, "permit")
        if machine.model.state(machine.clock.now) == "half_open":
            machine.call_fails(speed, 1, "permit")  # a failed trial re-opens
        elif pause == "while_closed":
            machine.advance(1.5)
        elif pause != "none":
            machine.advance_to(cast(Boundary, pause))
        machine.agrees_with_model()
    machine.teardown()


@settings(max_examples=150, deadline=None)
@given(
    policy=policies(),
    periods=st.lists(
        st.tuples(
            st.integers(1, 4),  # permits taken when the period begins
            st.sampled_from(["failure", "success"]),  # how the period's first trial ends
            st.lists(st.tuples(st.integers(0, 7), SPEEDS), max_size=3),  # stale ones ended
        ),
        min_size=2,
        max_size=5,
    ),
)
def test_overlapping_trials_follow_the_model(
    policy: Policy, periods: list[tuple[int, str, list[tuple[int, Speed]]]]
) -> None:
    """Trials that outlive their half-open period: they hold their slot while in flight,
    but never decide a later period (neither its success nor a slot beyond the limit).

    The state machine reaches such interleavings only rarely; this drives them directly:
    each period takes permits, ends one trial (a failure re-opens, reaching a new period
    with the others still in flight), and ends some stale ones inside the next period.
    """
    machine = BreakerMachine()
    machine.create(policy, 0.0)
    for _ in range(12):  # trip, if this policy can trip on failures
        if machine.model.state(machine.clock.now) != "closed":
            break
        machine.call_fails("instant", 1, "call")
    for taken, first_ends, stale in periods:
        machine.wait_out_open_period()
        for _ in range(taken):
            machine.take_permit()
        machine.agrees_with_model()
        if machine.pending:
            machine.record_permit(len(machine.pending) - 1, cast(Outcome, first_ends), "instant")
        machine.agrees_with_model()
        machine.wait_out_open_period()
        for which, speed in stale:
            machine.record_permit(which, "success", speed)
            machine.take_permit()
            machine.agrees_with_model()
    machine.teardown()


def test_a_stale_trial_neither_frees_a_slot_nor_closes_the_next_period() -> None:
    """The defect the model above pins, written out: a trial from period 1 ending in
    period 2 once let a fourth trial in beside three (the in-flight count went negative)
    and counted as period 2's success."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        "stale",
        clock=clock,
        consecutive_failures=1,
        half_open_max_calls=3,
        recovery_timeout=1.0,
        recovery_jitter=0.0,
    )
    _fail(breaker, clock)
    clock.now += 1.0
    slow_trial = breaker.admit()  # period 1
    failing_trial = breaker.admit()
    failing_trial.record("failure")  # re-opens
    clock.now += 2.0  # period 2 (the backoff doubled the wait)
    assert str(breaker.state) == "half_open"
    period_two = [breaker.admit(), breaker.admit()]  # the stale trial holds the third
    with pytest.raises(CircuitOpenError):
        breaker.admit()
    slow_trial.record("success")  # stale: frees its slot, decides nothing
    period_two.append(breaker.admit())
    with pytest.raises(CircuitOpenError):
        breaker.admit()
    for permit in period_two[:2]:
        permit.record("success")
    assert str(breaker.state) == "half_open", "the stale success must not count towards closing"
    period_two[2].record("success")
    assert breaker.state == "closed"


# --- regressions: discrepancies the model found, one minimal example each ------------------
# (all fixed in the implementation meanwhile; kept so that each has a readable test)

NO_SLOW: dict[str, Any] = {
    "slow_call_duration": None,
    "slow_call_rate_threshold": None,
    "recovery_jitter": 0.0,
}


def _fail(breaker: CircuitBreaker, clock: FakeClock, duration: float = 0.0) -> None:
    assert _call(breaker, clock, "failure", duration) is None


def _succeed(breaker: CircuitBreaker, clock: FakeClock, duration: float = 0.0) -> None:
    assert _call(breaker, clock, "success", duration) is None


def test_success_never_trips_even_at_minimum_calls() -> None:
    """Documented: conditions are checked when a failure or slow call is recorded only."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        "rate",
        clock=clock,
        consecutive_failures=None,
        failure_rate_threshold=0.5,
        window_size=3,
        minimum_calls=2,
        **NO_SLOW,
    )
    _fail(breaker, clock)
    _succeed(breaker, clock)
    stats = breaker.stats
    assert (stats.window_calls, stats.failure_rate) == (2, 0.5)
    assert breaker.state == "closed", "a success must never trip the breaker"
    _fail(breaker, clock)  # 2/3 >= 0.5, checked on this failure
    after_failure: str = breaker.state
    assert after_failure == "open"


def test_disabled_breaker_window_rates_include_its_calls() -> None:
    """window_calls counts the calls made while disabled, so its rates must include them."""
    clock = FakeClock()
    breaker = CircuitBreaker("disabled", clock=clock, **NO_SLOW)
    breaker.disable()
    _fail(breaker, clock)
    stats = breaker.stats
    assert (stats.failures, stats.window_calls, stats.failure_rate) == (1, 1, 1.0), (
        f"disabled breaker after one failure: {stats}; window_calls counts the failed call "
        "but failure_rate does not: calls made while disabled are not written to the window "
        "ring, only counted by its ticket counter (fixed in 50a9a90)"
    )


def test_slow_trial_success_closes_when_slow_call_tripping_is_disabled() -> None:
    """slow_call_rate_threshold=None "disables" slow-call tripping; a success is a success."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        "slow-trial",
        clock=clock,
        consecutive_failures=1,
        failure_rate_threshold=None,
        slow_call_duration=1.0,
        slow_call_rate_threshold=None,
        half_open_max_calls=1,
        recovery_timeout=10.0,
        recovery_jitter=0.0,
    )
    _fail(breaker, clock)
    clock.now += 10.0
    assert breaker.state == "half_open"
    _succeed(breaker, clock, duration=2.0)
    after_trial: str = breaker.state
    assert after_trial == "closed", (
        "a successful but slow half-open trial re-opened the breaker (for the doubled "
        "backoff) although slow_call_rate_threshold=None disables slow-call tripping; "
        "documented: 'that many successes close it, one failure re-opens it' (fixed in 50a9a90)"
    )


def test_ignored_calls_are_not_counted_as_slow() -> None:
    """CircuitBreakerStats: ``slow`` counts successes and failures, "an ignored call counts
    as nothing"."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        "slow-ignored",
        clock=clock,
        slow_call_duration=1.0,
        slow_call_rate_threshold=None,
        ignored_exceptions=(IgnoredError,),
        recovery_jitter=0.0,
    )
    assert _call(breaker, clock, "ignored", 2.0) is None
    stats = breaker.stats
    assert (stats.ignored, stats.slow) == (1, 0), (
        f"an ignored call was counted as slow: {stats}; documented as counting only "
        "successes and failures (fixed in 50a9a90)"
    )


def test_half_open_window_rates_include_slow_trials() -> None:
    """window_calls counts a slow successful trial, so slow_call_rate must count it too."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        "slow-trial-rate",
        clock=clock,
        consecutive_failures=1,
        failure_rate_threshold=None,
        slow_call_duration=0.5,
        slow_call_rate_threshold=None,  # so a slow trial does not re-open the breaker
        half_open_max_calls=2,
        recovery_timeout=1.0,
        recovery_jitter=0.0,
    )
    _fail(breaker, clock)
    clock.now += 1.0
    _succeed(breaker, clock, duration=1.5)
    stats = breaker.stats
    assert breaker.state == "half_open"
    assert (stats.slow, stats.window_calls, stats.slow_call_rate) == (1, 1, 1.0), (
        f"half-open after one slow successful trial: {stats}; window_calls counts the trial "
        "but slow_call_rate does not: trial calls are not written to the window ring, only "
        "counted by its ticket counter (fixed in 746ca6a)"
    )


@pytest.mark.parametrize("multiplier", [1.0, 2.0, 3.0])
def test_backoff_grows_then_restarts_after_healthy_period(multiplier: float) -> None:
    """Sanity check of the model's recovery arithmetic on one hand-written sequence."""
    clock = FakeClock()
    policy = Policy(
        consecutive_failures=1,
        failure_rate_threshold=None,
        slow_call_duration=None,
        slow_call_rate_threshold=None,
        window_size=5,
        minimum_calls=5,
        half_open_max_calls=1,
        recovery_timeout=10.0,
        recovery_backoff_multiplier=multiplier,
        max_recovery_timeout=50.0,
        healthy_period=60.0,
        narrow_failures=False,
        predicates=False,
    )
    breaker = CircuitBreaker("backoff", clock=clock, **policy.keywords())
    waits = []
    for _ in range(4):  # open, then each trial fails: waits 10, 10m, 10m^2, ... capped
        _fail(breaker, clock)
        waits.append(breaker.seconds_until_trial())
        clock.now += waits[-1]
    assert waits == [min(50.0, 10.0 * multiplier**k) for k in range(4)]
    _succeed(breaker, clock)  # the trial closes it
    assert breaker.state == "closed"
    clock.now += 60.0
    _fail(breaker, clock)
    assert breaker.seconds_until_trial() == 10.0
