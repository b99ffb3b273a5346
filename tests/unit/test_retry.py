"""Retries: backoff and jitter, deadline, Retry-After, budget, breaker, async, hooks."""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Coroutine
from typing import Any

import pytest
from fake_clock import FakeClock

from otel_resilience import (
    CircuitBreaker,
    CircuitOpenError,
    Retry,
    RetryBudget,
    RetryDetails,
    current_attempt,
)


class Flaky:
    """Fails ``failures`` times with ``error``, then returns ``"ok"``."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("refused")
        self.calls = 0
        self.attempts_seen: list[int] = []

    def __call__(self) -> str:
        self.calls += 1
        self.attempts_seen.append(current_attempt())
        if self.calls <= self.failures:
            raise self.error
        return "ok"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, **options: Any) -> Retry:
    options.setdefault("budget", RetryBudget(ratio=10, clock=clock))
    return Retry(
        "inventory",
        clock=clock,
        sleep=clock.sleep,
        async_sleep=clock.async_sleep,
        randomness=random.Random(1),
        **options,
    )


def test_retries_until_success_and_exposes_the_attempt(clock: FakeClock) -> None:
    flaky = Flaky(2)
    assert make(clock, max_attempts=3).call(flaky) == "ok"
    assert flaky.calls == 3
    assert flaky.attempts_seen == [0, 1, 2]
    assert current_attempt() == 0


def test_exhaustion_reraises_the_last_error_with_a_note(clock: FakeClock) -> None:
    flaky = Flaky(5)
    with pytest.raises(ConnectionError) as raised:
        make(clock, max_attempts=3).call(flaky)
    assert flaky.calls == 3
    assert any("after 3 attempts" in note for note in raised.value.__notes__)


def test_exponential_backoff_without_jitter_is_capped(clock: FakeClock) -> None:
    retry = make(
        clock,
        max_attempts=6,
        jitter="none",
        initial_backoff=0.1,
        backoff_multiplier=2,
        max_backoff=0.5,
    )
    with pytest.raises(ConnectionError):
        retry.call(Flaky(10))
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


def test_full_jitter_stays_below_the_exponential_ceiling(clock: FakeClock) -> None:
    retry = make(clock, max_attempts=8, jitter="full", initial_backoff=0.1, max_backoff=2)
    with pytest.raises(ConnectionError):
        retry.call(Flaky(10))
    ceilings = [min(2, 0.1 * 2**n) for n in range(7)]
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(clock.sleeps, ceilings, strict=True))
    assert len(set(clock.sleeps)) == len(clock.sleeps)  # jittered, not in step


def test_decorrelated_jitter_stays_within_its_bounds(clock: FakeClock) -> None:
    retry = make(clock, max_attempts=8, jitter="decorrelated", initial_backoff=0.1, max_backoff=3)
    with pytest.raises(ConnectionError):
        retry.call(Flaky(10))
    previous = 0.0
    for wait in clock.sleeps:
        assert 0.1 <= wait <= min(3, max(0.1, previous * 3))
        previous = wait


def test_the_deadline_is_never_overshot(clock: FakeClock) -> None:
    retry = make(
        clock, max_attempts=50, jitter="none", initial_backoff=1, max_backoff=1, deadline=3.5
    )
    started = clock.now
    with pytest.raises(ConnectionError):
        retry.call(Flaky(100))
    assert clock.now - started <= 3.5
    assert clock.sleeps == [1, 1, 1]


def test_retry_after_is_honoured_and_a_long_one_stops_retrying(clock: FakeClock) -> None:
    class Throttled(Exception):
        def __init__(self, retry_after: float) -> None:
            super().__init__("429")
            self.retry_after = retry_after

    retry = make(clock, max_attempts=3, jitter="none", initial_backoff=0.1, max_retry_after=30)
    assert retry.call(Flaky(1, Throttled(7))) == "ok"
    assert clock.sleeps == [7]
    too_long = Flaky(1, Throttled(120))
    with pytest.raises(Throttled):
        retry.call(too_long)
    assert too_long.calls == 1


def test_results_can_be_retried_and_the_last_is_returned(clock: FakeClock) -> None:
    responses = iter([503, 503, 200])
    retry = make(clock, max_attempts=3, retry_on_result=lambda status: status == 503)
    assert retry.call(lambda: next(responses)) == 200
    always_busy = make(clock, max_attempts=2, retry_on_result=lambda status: status == 503)
    assert always_busy.call(lambda: 503) == 503


def test_only_matching_errors_are_retried(clock: FakeClock) -> None:
    flaky = Flaky(1, ValueError("bad request"))
    with pytest.raises(ValueError):
        make(clock, retry_on=(ConnectionError,)).call(flaky)
    assert flaky.calls == 1


def test_the_budget_caps_retries_during_an_outage(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.1, minimum_per_second=0.5, window=10, clock=clock)
    retry = make(clock, max_attempts=3, budget=budget, initial_backoff=0, max_backoff=0)
    calls = 0

    def down() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError

    for _ in range(100):
        with pytest.raises(ConnectionError):
            retry.call(down)
    retries = calls - 100
    assert retries == 10  # max(0.5/s x 10 s, 10% of 100 calls)


def test_a_quiet_target_keeps_its_minimum(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.1, minimum_per_second=0.2, window=10, clock=clock)
    retry = make(clock, max_attempts=2, budget=budget, initial_backoff=0, max_backoff=0)
    flaky = Flaky(1)
    assert retry.call(flaky) == "ok"  # 1 call, but the floor allows 2 retries per 10 s


def test_no_retry_while_the_breaker_is_open(clock: FakeClock) -> None:
    breaker = CircuitBreaker("inventory", consecutive_failures=2, clock=clock)
    retry = make(clock, max_attempts=5, breaker=breaker)
    flaky = Flaky(10)
    with pytest.raises(ConnectionError):
        retry.call(breaker.call, flaky)
    assert flaky.calls == 2  # the breaker opened after two; no more attempts
    with pytest.raises(CircuitOpenError):
        retry.call(breaker.call, flaky)  # a rejection is never retried
    assert flaky.calls == 2


def test_hooks_see_each_retry_and_a_raising_hook_is_harmless(clock: FakeClock) -> None:
    seen: list[RetryDetails] = []

    def broken(details: RetryDetails) -> None:
        raise RuntimeError("hook bug")

    retry = make(clock, max_attempts=3, jitter="none", hooks=(broken, seen.append))
    assert retry.call(Flaky(2)) == "ok"
    assert [(d.target, d.attempt, d.wait) for d in seen] == [
        ("inventory", 1, 0.1),
        ("inventory", 2, 0.2),
    ]
    assert isinstance(seen[0].error, ConnectionError)


def test_the_first_attempt_runs_inline_and_the_retries_follow_it(clock: FakeClock) -> None:
    # One entry: the first attempt is made before any retry state exists, and only its
    # failure starts the retries, numbered from it.
    retry = make(clock, max_attempts=3, jitter="none")
    flaky = Flaky(2)
    assert retry.call(flaky) == "ok"
    assert flaky.attempts_seen == [0, 1, 2]  # the first attempt is attempt 0: no resend
    assert clock.sleeps == [0.1, 0.2]
    assert current_attempt() == 0

    busy = make(clock, max_attempts=2, retry_on_result=lambda status: status == 503)
    statuses = iter([503, 200])
    assert busy.call(lambda: next(statuses)) == 200
    assert busy.call(lambda: 404) == 404  # not worth retrying

    picky = make(clock, retry_on=(ConnectionError,))
    error = ValueError("bad request")
    with pytest.raises(ValueError) as unretried:
        picky.call(Flaky(1, error))
    assert unretried.value is error

    exhausted = Flaky(5)
    with pytest.raises(ConnectionError) as raised:
        retry.call(exhausted)
    assert exhausted.calls == 3
    assert any("after 3 attempts" in note for note in raised.value.__notes__)


def test_every_call_counts_in_the_budget(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.1, minimum_per_second=0.5, window=10, clock=clock)
    retry = make(clock, max_attempts=3, budget=budget, initial_backoff=0, max_backoff=0)
    for _ in range(90):
        assert retry.call(lambda: "ok") == "ok"  # first attempts that succeeded
    calls = 0

    def down() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError

    for _ in range(10):
        with pytest.raises(ConnectionError):
            retry.call(down)
    assert calls == 10 + 10  # ten first attempts, max(0.5/s x 10 s, 10% of 100 calls) retries


def test_async_calls_make_the_first_attempt_inline_too(clock: FakeClock) -> None:
    retry = make(clock, max_attempts=3, jitter="none")
    attempts: list[int] = []

    async def fetch() -> str:
        attempts.append(current_attempt())
        if len(attempts) < 2:
            raise ConnectionError
        return "ok"

    assert asyncio.run(retry.call_async(fetch)) == "ok"
    assert attempts == [0, 1]
    assert clock.sleeps == [0.1]


def test_async_retries_sleep_with_asyncio(clock: FakeClock) -> None:
    retry = make(clock, max_attempts=3, jitter="none")
    attempts: list[int] = []

    @retry
    async def fetch() -> str:
        attempts.append(current_attempt())
        if len(attempts) < 3:
            raise ConnectionError
        return "ok"

    assert asyncio.run(fetch()) == "ok"
    assert attempts == [0, 1, 2]
    assert clock.sleeps == [0.1, 0.2]


def test_real_asyncio_sleep_lets_other_tasks_run() -> None:
    retry = Retry("fast", max_attempts=3, jitter="none", initial_backoff=0.01, max_backoff=0.01)
    ticks: list[int] = []

    async def ticker() -> None:
        for tick in range(3):
            ticks.append(tick)
            await asyncio.sleep(0.001)

    async def scenario() -> str:
        flaky = Flaky(2)

        async def call() -> str:
            return flaky()

        task = asyncio.create_task(ticker())
        result = await retry.call_async(call)
        await task
        return result

    assert asyncio.run(scenario()) == "ok"
    assert ticks == [0, 1, 2]


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        Retry(max_attempts=0)
    with pytest.raises(ValueError, match="ratio"):
        RetryBudget(ratio=-1)


def test_async_hooks_are_awaited_before_the_wait(clock: FakeClock) -> None:
    events: list[str] = []

    def release(details: RetryDetails) -> object:
        async def close() -> None:
            events.append(f"closed before wait {len(clock.sleeps) + 1}")

        return close()

    retry = make(clock, max_attempts=3, hooks=(release,))

    async def flaky() -> str:
        if len(events) < 2:
            raise ConnectionError
        return "ok"

    assert asyncio.run(retry.call_async(flaky)) == "ok"
    assert events == ["closed before wait 1", "closed before wait 2"]


def test_a_sync_call_closes_what_an_async_hook_returned(clock: FakeClock) -> None:
    returned: list[Coroutine[Any, Any, None]] = []

    def release(details: RetryDetails) -> object:
        async def close() -> None:
            pytest.fail("a sync retry cannot await")

        returned.append(close())
        return returned[-1]

    assert make(clock, max_attempts=2, hooks=(release,)).call(Flaky(1)) == "ok"
    (coroutine,) = returned
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED  # no "never awaited"


def test_a_wait_built_in_code_is_capped_at_a_day() -> None:
    """``max_backoff=1e10`` once reached ``time.sleep`` and raised OverflowError."""
    waits: list[float] = []
    retry = Retry(
        max_attempts=2, initial_backoff=1e10, max_backoff=1e10, jitter="none", sleep=waits.append
    )

    def fails() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        retry.call(fails)
    assert waits == [86_400.0]
