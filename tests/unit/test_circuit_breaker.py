"""Circuit-breaker behaviour, on an injected clock: trip policies, recovery, API forms."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import pytest

from otel_resilience.breaker._breaker import CircuitBreaker, CircuitOpenError, StateTransition
from otel_resilience.breaker._policy import BreakerPolicy


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Boom(Exception):
    pass


def fail() -> None:
    raise Boom("remote failed")


def succeed() -> str:
    return "ok"


def state(breaker: CircuitBreaker) -> str:
    """The state as a plain string (mypy would otherwise narrow the property's Literal)."""
    return breaker.state


def make(clock: FakeClock, **policy: Any) -> CircuitBreaker:
    policy.setdefault("recovery_jitter", 0.0)
    return CircuitBreaker("orders", clock=clock, **policy)


def failures(breaker: CircuitBreaker, count: int) -> None:
    for _ in range(count):
        with pytest.raises(Boom):
            breaker.call(fail)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_consecutive_failures_open_it_and_calls_are_rejected(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures=3, recovery_timeout=10)
    breaker.call(succeed)
    failures(breaker, 2)
    assert state(breaker) == "closed"
    failures(breaker, 1)
    assert state(breaker) == "open"
    clock.advance(4)
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(succeed)
    assert (rejected.value.name, rejected.value.state) == ("orders", "open")
    assert rejected.value.remaining == pytest.approx(6.0)
    stats = breaker.stats
    assert (stats.calls, stats.successes, stats.failures, stats.rejections) == (5, 1, 3, 1)


def test_a_success_resets_the_consecutive_count(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures=3, failure_rate_threshold=None)
    for _ in range(5):
        failures(breaker, 2)
        breaker.call(succeed)
    assert state(breaker) == "closed"
    assert breaker.stats.consecutive_failures == 0


def test_failure_rate_over_a_count_window_needs_minimum_calls(clock: FakeClock) -> None:
    breaker = make(
        clock,
        consecutive_failures=None,
        failure_rate_threshold=0.5,
        window_size=10,
        minimum_calls=6,
    )
    for _ in range(2):
        breaker.call(succeed)
        failures(breaker, 1)
    assert state(breaker) == "closed"  # 50% but only 4 calls
    breaker.call(succeed)
    failures(breaker, 1)
    assert state(breaker) == "open"  # 3 of 6


def test_count_window_forgets_old_calls(clock: FakeClock) -> None:
    breaker = make(
        clock, consecutive_failures=None, failure_rate_threshold=0.5, window_size=4, minimum_calls=4
    )
    failures(breaker, 1)
    for _ in range(4):
        breaker.call(succeed)
    assert breaker.stats.failure_rate == 0.0
    assert breaker.stats.window_calls == 4


def test_failure_rate_over_a_time_window(clock: FakeClock) -> None:
    breaker = make(
        clock,
        consecutive_failures=None,
        window_kind="time",
        window_size=10,
        minimum_calls=4,
        failure_rate_threshold=0.5,
    )
    failures(breaker, 1)
    breaker.call(succeed)
    breaker.call(succeed)
    clock.advance(11)  # the failure has left the window
    breaker.call(succeed)
    assert breaker.stats.window_calls == 1
    failures(breaker, 1)
    breaker.call(succeed)
    failures(breaker, 1)
    assert state(breaker) == "open"  # 2 of 4 in the last 10 s


def test_slow_call_rate_trips_with_a_fixed_threshold(clock: FakeClock) -> None:
    breaker = make(
        clock,
        consecutive_failures=None,
        slow_call_duration=0.5,
        slow_call_rate_threshold=0.6,
        window_size=5,
        minimum_calls=5,
    )

    def slow() -> str:
        clock.advance(2.0)
        return "late"

    breaker.call(succeed)
    breaker.call(succeed)
    for _ in range(3):
        assert breaker.call(slow) == "late"
    assert state(breaker) == "open"
    assert breaker.stats.slow == 3
    assert breaker.stats.successes == 5


def test_adaptive_threshold_learns_the_endpoint_latency(clock: FakeClock) -> None:
    breaker = make(clock, slow_call_rate_threshold=1.0)

    def takes(seconds: float) -> Callable[[], None]:
        def call() -> None:
            clock.advance(seconds)

        return call

    for _ in range(5000):  # one success in 32 feeds the estimate; it needs 100 samples
        breaker.call(takes(0.02))
    threshold = breaker.stats.slow_call_threshold
    assert threshold is not None
    assert 0.02 < threshold < 0.2  # a multiple of the endpoint's own p99
    breaker.call(takes(1.0))
    assert breaker.stats.slow == 1


def test_half_open_admits_a_bounded_number_of_trials(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures=1, recovery_timeout=5, half_open_max_calls=2)
    failures(breaker, 1)
    clock.advance(5)
    assert state(breaker) == "half_open"
    release = threading.Event()
    inside = threading.Barrier(3, timeout=5)

    def trial() -> str:
        inside.wait()
        release.wait(5)
        return "ok"

    threads = [threading.Thread(target=breaker.call, args=(trial,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait()  # both trials are in flight
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(succeed)
    assert rejected.value.state == "half_open"
    release.set()
    for thread in threads:
        thread.join()
    assert state(breaker) == "closed"


def test_a_failed_trial_reopens_with_exponential_backoff_and_a_cap(clock: FakeClock) -> None:
    breaker = make(
        clock,
        consecutive_failures=1,
        recovery_timeout=10,
        recovery_backoff_multiplier=2,
        max_recovery_timeout=35,
    )
    failures(breaker, 1)
    waits = []
    for _ in range(4):
        waits.append(breaker.seconds_until_trial())
        clock.advance(breaker.seconds_until_trial())
        failures(breaker, 1)  # the trial fails
    assert waits == [10, 20, 35, 35]


def test_backoff_starts_again_after_a_healthy_period(clock: FakeClock) -> None:
    breaker = make(
        clock, consecutive_failures=1, recovery_timeout=10, half_open_max_calls=1, healthy_period=60
    )
    failures(breaker, 1)
    clock.advance(10)
    failures(breaker, 1)  # failed trial: 20 s now
    clock.advance(20)
    breaker.call(succeed)
    assert state(breaker) == "closed"
    clock.advance(5)
    failures(breaker, 1)  # soon after recovery: still backing off
    assert breaker.seconds_until_trial() == 40
    clock.advance(40)
    breaker.call(succeed)
    clock.advance(61)
    failures(breaker, 1)  # after a healthy minute: back to the first wait
    assert breaker.seconds_until_trial() == 10


def test_retry_after_sets_the_open_period(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures=1, recovery_timeout=10)
    breaker.report_retry_after(45)
    failures(breaker, 1)
    assert breaker.seconds_until_trial() == 45
    breaker.report_retry_after(1000)  # capped by max_recovery_timeout (300 s)
    assert breaker.seconds_until_trial() == 300


def test_ignored_exceptions_count_as_neither(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures=1, ignored_exceptions=(KeyError,))
    for _ in range(3):
        with pytest.raises(KeyError):
            breaker.call(lambda: dict[str, int]()["missing"])
    assert state(breaker) == "closed"
    stats = breaker.stats
    assert (stats.ignored, stats.failures, stats.calls) == (3, 0, 3)


def test_exception_predicates_and_result_predicates(clock: FakeClock) -> None:
    breaker = make(
        clock,
        consecutive_failures=2,
        failure_exceptions=(lambda error: "timeout" in str(error),),
        failure_result=lambda response: response == 503,
    )
    with pytest.raises(ValueError):
        breaker.call(lambda: (_ for _ in ()).throw(ValueError("bad input")))
    assert breaker.call(lambda: 503) == 503
    assert state(breaker) == "closed"
    with pytest.raises(OSError):
        breaker.call(lambda: (_ for _ in ()).throw(OSError("connect timeout")))
    assert state(breaker) == "open"
    assert (breaker.stats.failures, breaker.stats.ignored) == (2, 1)


def test_fallback_value_and_callable(clock: FakeClock) -> None:
    cached = make(clock, consecutive_failures=1, fallback="cached")
    assert cached.call(fail) == "cached"
    assert cached.call(succeed) == "cached"  # rejected now: the fallback again
    seen: list[type[BaseException]] = []

    def degrade(error: BaseException, item: str) -> str:
        seen.append(type(error))
        return f"default {item}"

    breaker = make(clock, consecutive_failures=1, fallback=degrade)

    @breaker
    def lookup(item: str) -> str:
        raise Boom(item)

    assert lookup("price") == "default price"
    assert lookup("price") == "default price"
    assert seen == [Boom, CircuitOpenError]


def test_listeners_see_transitions_and_a_raising_listener_is_harmless(clock: FakeClock) -> None:
    events: list[StateTransition] = []

    class Recorder:
        def on_transition(self, event: StateTransition) -> None:
            events.append(event)

    class Broken:
        def on_transition(self, event: StateTransition) -> None:
            raise RuntimeError("listener bug")

        def on_call(self, event: object) -> None:
            raise RuntimeError("listener bug")

    breaker = make(clock, consecutive_failures=1, recovery_timeout=1, half_open_max_calls=1)
    breaker.add_listener(Broken())
    breaker.add_listener(Recorder())
    failures(breaker, 1)
    clock.advance(1)
    assert breaker.call(succeed) == "ok"
    assert [(e.from_state, e.to_state) for e in events] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert events[0].open_for == 1


def test_decorated_methods_and_metadata(clock: FakeClock) -> None:
    breaker = make(clock)

    class Inventory:
        def __init__(self) -> None:
            self.stock = 7

        @breaker
        def count(self, item: str) -> str:
            """How many are left."""
            return f"{item}: {self.stock}"

    assert Inventory().count("bolts") == "bolts: 7"
    assert Inventory.count.__name__ == "count"
    assert Inventory.count.__doc__ == "How many are left."
    assert breaker.stats.successes == 1


def test_context_manager_checks_the_state(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures=2)
    for _ in range(2):
        with pytest.raises(Boom), breaker:
            raise Boom
    with pytest.raises(CircuitOpenError), breaker:
        pytest.fail("the body ran although the breaker is open")
    assert breaker.stats.rejections == 1


def test_async_forms(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures=2, fallback=None)

    @breaker
    async def fetch(fail_it: bool) -> str:
        await asyncio.sleep(0)
        if fail_it:
            raise Boom
        return "fresh"

    async def scenario() -> list[str]:
        results = [await fetch(False), await fetch(True), await fetch(True)]
        async with breaker:
            pass
        return results

    with pytest.raises(CircuitOpenError):
        asyncio.run(scenario())
    assert state(breaker) == "open"
    assert breaker.stats.successes == 1


def test_async_fallback_may_be_a_coroutine(clock: FakeClock) -> None:
    async def degrade(error: BaseException) -> str:
        await asyncio.sleep(0)
        return "stale"

    breaker = make(clock, consecutive_failures=1, fallback=degrade)

    async def broken() -> str:
        raise Boom

    assert asyncio.run(breaker.call_async(broken)) == "stale"
    assert asyncio.run(breaker.call_async(broken)) == "stale"


def test_manual_states(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures=1)
    breaker.force_open()
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(succeed)
    assert rejected.value.state == "forced_open"
    assert rejected.value.remaining == float("inf")
    breaker.disable()
    failures(breaker, 5)
    assert state(breaker) == "disabled"
    breaker.reset()
    assert state(breaker) == "closed"
    assert breaker.stats.calls == 0
    assert breaker.transition_counts() == {
        "closed": 1,
        "open": 0,
        "half_open": 0,
        "forced_open": 1,
        "disabled": 1,
    }


def test_invalid_policy_is_rejected_with_every_problem_named() -> None:
    with pytest.raises(ValueError) as error:
        BreakerPolicy(failure_rate_threshold=1.5, window_size=0, recovery_jitter=2)
    message = str(error.value)
    for name in ("failure_rate_threshold", "window_size", "recovery_jitter"):
        assert name in message


def test_eight_threads_count_exactly() -> None:
    breaker = CircuitBreaker(
        "hammer",
        consecutive_failures=None,
        failure_rate_threshold=None,
        slow_call_rate_threshold=None,
    )
    per_thread = 5000
    start = threading.Barrier(8)

    def hammer(index: int) -> None:
        start.wait()
        for call in range(per_thread):
            if (call + index) % 10 == 0:
                with contextlib.suppress(Boom):
                    breaker.call(fail)
            else:
                breaker.call(succeed)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = breaker.stats
    assert stats.calls == 8 * per_thread
    assert stats.failures == 8 * per_thread // 10
    assert stats.successes == 8 * per_thread - stats.failures


def test_a_forked_child_starts_fresh(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures=1)
    failures(breaker, 1)
    assert state(breaker) == "open"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            child_state = breaker.state
            breaker.call(succeed)
            os.write(write_end, f"{child_state} {breaker.stats.calls}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    report = os.read(read_end, 100).decode()
    os.waitpid(pid, 0)
    assert report == "closed 1"
    assert state(breaker) == "open"  # the parent is untouched


def test_one_warning_on_opening_and_one_info_on_closing(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = make(clock, consecutive_failures=1, recovery_timeout=5, half_open_max_calls=1)
    with caplog.at_level("INFO", logger="otel_resilience.circuit_breaker"):
        failures(breaker, 1)
        clock.advance(5)
        breaker.call(succeed)
    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in records] == ["WARNING", "INFO"]
    assert "'orders' opened" in records[0][1]
    assert "'orders' closed" in records[1][1]


def test_minimum_calls_beyond_a_count_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="minimum_calls"):
        BreakerPolicy(window_size=10, minimum_calls=20)
    BreakerPolicy(window_kind="time", window_size=10, minimum_calls=20)  # 10 s can hold 20 calls


def test_permits_let_the_caller_classify_outcomes(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures=2)
    permit = breaker.admit()
    permit.record("success")
    permit.record("failure")  # a second record on one permit is ignored
    for _ in range(2):
        breaker.admit().record("failure")
    assert state(breaker) == "open"
    with pytest.raises(CircuitOpenError):
        breaker.admit()
    stats = breaker.stats
    assert (stats.successes, stats.failures, stats.rejections) == (1, 2, 1)
    breaker.reset()
    breaker.admit().record("ignored")
    assert breaker.stats.ignored == 1


def test_a_generator_function_is_guarded_while_it_is_iterated(clock: FakeClock) -> None:
    """The body runs while the generator is iterated, after the decorated call returned:
    that is when the breaker admits it and hears how it ended."""
    breaker = CircuitBreaker("stream", consecutive_failures=2, clock=clock)

    @breaker
    def rows(fail_after: int | None) -> Generator[int | str, str | None, None]:
        for number in range(3):
            if number == fail_after:
                raise Boom("the connection broke mid-stream")
            received = yield number
            if received is not None:
                yield f"echo {received}"

    assert list(rows(None)) == [0, 1, 2]
    assert breaker.stats.successes == 1
    with pytest.raises(Boom):
        list(rows(1))
    assert breaker.stats.failures == 1
    stream = rows(None)
    assert next(stream) == 0
    assert stream.send("hi") == "echo hi"  # send() reaches the decorated generator
    stream.close()  # the consumer stopped early: neither success nor failure
    assert (breaker.stats.successes, breaker.stats.failures, breaker.stats.ignored) == (1, 1, 1)
    with pytest.raises(Boom):
        list(rows(0))
    assert state(breaker) == "open"
    stream = rows(None)  # making the generator is not the call ...
    with pytest.raises(CircuitOpenError):
        next(stream)  # ... iterating it is


def test_an_async_generator_function_is_guarded_while_it_is_iterated(clock: FakeClock) -> None:
    breaker = CircuitBreaker("async stream", consecutive_failures=1, clock=clock)

    @breaker
    async def rows(fail: bool) -> AsyncGenerator[int | str, str | None]:
        yield 1
        received = yield 2
        if fail:
            raise Boom("the connection broke mid-stream")
        yield f"echo {received}"

    async def scenario() -> None:
        assert [row async for row in rows(False)] == [1, 2, "echo None"]
        stream = rows(False)
        assert await stream.__anext__() == 1
        assert await stream.__anext__() == 2
        assert await stream.asend("hi") == "echo hi"
        await stream.aclose()
        assert (breaker.stats.successes, breaker.stats.ignored) == (1, 1)
        with pytest.raises(Boom):
            [row async for row in rows(True)]
        assert state(breaker) == "open"
        with pytest.raises(CircuitOpenError):
            await rows(False).__anext__()

    asyncio.run(scenario())


def test_generator_functions_are_refused_where_they_cannot_be_guarded(clock: FakeClock) -> None:
    from otel_resilience import Retry

    def numbers() -> Any:
        yield 1

    with pytest.raises(TypeError, match="fallback"):
        CircuitBreaker("with fallback", fallback=None, clock=clock)(numbers)
    with pytest.raises(TypeError, match="generator function"):
        Retry()(numbers)
