"""Retries with exponential backoff and jitter, a deadline, ``Retry-After`` and a budget.

A retry is only worth making when it can help and cannot hurt. So:

* the wait grows exponentially with *full* or *decorrelated* jitter (the two AWS schemes
  that keep many clients from retrying in step), is capped per wait, and is never slept if
  it would end past the overall deadline;
* a server's ``Retry-After`` is honoured (the wait is at least that long) unless it is
  longer than ``max_retry_after``, in which case retrying now is pointless and we stop;
* a :class:`RetryBudget` per target lets retries add at most a fraction of the recent
  calls (with a small floor for quiet targets), so that during an outage retries cannot
  multiply the load on a struggling service;
* nothing is retried while the target's circuit breaker is open, and a breaker's
  rejection is never retried;
* async retries sleep with ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import random
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, Protocol, TypeVar, overload

from otel_resilience._fork import unlock_after_fork
from otel_resilience.breaker._breaker import CircuitBreaker, CircuitOpenError
from otel_resilience.breaker._decorating import decorate
from otel_resilience.breaker._policy import ExceptionMatcher, matches
from otel_resilience.breaker._windows import TimeWindow
from otel_resilience.metrics import Counter
from otel_resilience.metrics._registry import resilience_registry
from otel_resilience.sdk.settings import MAX_SECONDS

if TYPE_CHECKING:
    from otel_resilience.sdk.settings import RetrySettings

__all__ = ["Retry", "RetryBudget", "RetryDetails", "RetryHook", "current_attempt"]

P = ParamSpec("P")
R = TypeVar("R")

Jitter = Literal["full", "decorrelated", "none"]
RetryOutcome = Literal["retried", "succeeded", "exhausted", "budget_exhausted"]

_attempt: contextvars.ContextVar[int] = contextvars.ContextVar(
    "otel_resilience.retry.attempt", default=0
)


async def sleep_in_running_library(seconds: float) -> None:
    """``asyncio.sleep`` or ``trio.sleep``, whichever library runs the calling task.

    httpx's ``AsyncClient`` runs under trio as well as asyncio (directly or through anyio),
    and ``asyncio.sleep`` outside an asyncio loop raises ``no running event loop``. trio is
    asked only when a program has imported it.
    """
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:  # not inside trio
            pass
        else:
            await trio.sleep(seconds)
            return
    await asyncio.sleep(seconds)


def current_attempt() -> int:
    """How many times the call now running has been retried (0 on the first attempt).

    Instrumentations read it to set ``http.request.resend_count``.
    """
    return _attempt.get()


@dataclass(frozen=True, slots=True)
class RetryDetails:
    """What a :class:`RetryHook` learns about a retry that is about to happen."""

    target: str
    attempt: int
    wait: float
    error: BaseException | None
    elapsed: float
    result: Any = None
    """The result being retried past (``None`` after an exception): a hook may release it,
    e.g. close an HTTP response so its connection goes back to the pool."""


class RetryHook(Protocol):
    """Called before each retry's wait; a hook that raises is logged and ignored.

    On the async path a hook may return an awaitable (closing an async HTTP response, say):
    it is awaited before the wait.
    """

    def __call__(self, details: RetryDetails) -> object: ...


class RetryBudget:
    """Caps retries at ``ratio`` of the calls in the last ``window`` seconds.

    ``minimum_per_second`` keeps a quiet target retryable (one call a minute still gets its
    retry). Calls and retries are counted in one-second buckets, thread-safe.
    """

    def __init__(
        self,
        ratio: float = 0.2,
        *,
        minimum_per_second: float = 1.0,
        window: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 <= ratio <= 10.0:
            raise ValueError(f"ratio must be from 0 to 10, got {ratio!r}")
        if minimum_per_second < 0:
            raise ValueError(f"minimum_per_second must be >= 0, got {minimum_per_second!r}")
        if not 1 <= window <= 3600:
            raise ValueError(f"window must be from 1 to 3600 seconds, got {window!r}")
        self.ratio = ratio
        self.minimum_per_second = minimum_per_second
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        unlock_after_fork(self, "_lock")
        # The window's "failures" column holds the retries: first attempts are recorded as
        # successes, retries as failures, so calls = attempts of both kinds.
        self._counts = TimeWindow(window)

    def record_call(self) -> None:
        """Count a first attempt."""
        with self._lock:
            self._counts.record(False, False, self._clock())

    def try_spend(self) -> bool:
        """Count a retry if the budget allows one now; ``False`` if it does not."""
        with self._lock:
            now = self._clock()
            attempts, retries, _ = self._counts.totals(now)
            first_attempts = attempts - retries
            allowed = max(self.minimum_per_second * self.window, self.ratio * first_attempts)
            if retries + 1 > allowed:
                return False
            self._counts.record(True, False, now)
            return True


def _retry_after_attribute(error: BaseException | None, result: Any) -> float | None:
    """The default ``retry_after`` reader: a ``retry_after`` attribute in seconds."""
    source = error if error is not None else result
    value = getattr(source, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


_attempts_counter: Counter | None = None


def _record(target: str, outcome: RetryOutcome) -> None:
    """``resilience.retry.attempts``: only retries and their ends, never a plain success."""
    global _attempts_counter  # noqa: PLW0603 - one instrument per process
    counter = _attempts_counter
    if counter is None:  # the registry returns the same instrument to a racing thread
        counter = _attempts_counter = resilience_registry().counter(
            "resilience.retry.attempts",
            unit="{attempt}",
            description=(
                "Retries made, and how retried calls ended: succeeded, exhausted, or "
                "stopped by the retry budget."
            ),
        )
    counter.add(1, {"resilience.retry.target": target, "resilience.retry.outcome": outcome})


class Retry:
    """Retry a sync or async callable: a policy object that is also a decorator.

    ``max_attempts`` counts the first attempt. ``retry_on`` lists exception types or
    predicates worth retrying (a breaker's :class:`CircuitOpenError` never is);
    ``retry_on_result`` says which results are worth retrying (an HTTP 503, say), and when
    the attempts run out the last such result is returned. When the attempts run out on an
    exception, that exception is raised again, unchanged in type, with a note saying how
    many attempts were made.
    """

    def __init__(
        self,
        target: str = "default",
        *,
        max_attempts: int = 3,
        initial_backoff: float = 0.1,
        max_backoff: float = 10.0,
        backoff_multiplier: float = 2.0,
        jitter: Jitter = "full",
        deadline: float | None = None,
        retry_on: tuple[ExceptionMatcher, ...] = (Exception,),
        retry_on_result: Callable[[Any], bool] | None = None,
        retry_after: Callable[[BaseException | None, Any], float | None] = _retry_after_attribute,
        max_retry_after: float = 60.0,
        budget: RetryBudget | None = None,
        breaker: CircuitBreaker | None = None,
        hooks: tuple[RetryHook, ...] = (),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] | None = None,
        randomness: random.Random | None = None,
    ) -> None:
        problems = []
        if max_attempts < 1:
            problems.append(f"max_attempts must be >= 1, got {max_attempts}")
        if not 0 <= initial_backoff <= max_backoff:
            problems.append("backoffs must satisfy 0 <= initial_backoff <= max_backoff")
        if backoff_multiplier < 1:
            problems.append(f"backoff_multiplier must be >= 1, got {backoff_multiplier}")
        if jitter not in ("full", "decorrelated", "none"):
            problems.append(f"jitter must be 'full', 'decorrelated' or 'none', got {jitter!r}")
        if deadline is not None and not deadline > 0:
            problems.append(f"deadline must be > 0 seconds, got {deadline!r}")
        if problems:
            raise ValueError("invalid Retry: " + "; ".join(problems))
        self.target = target
        self.max_attempts = max_attempts
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.backoff_multiplier = backoff_multiplier
        self.jitter: Jitter = jitter
        self.deadline = deadline
        self.retry_on = retry_on
        self.retry_on_result = retry_on_result
        self.retry_after = retry_after
        self.max_retry_after = max_retry_after
        self.budget = budget if budget is not None else RetryBudget()
        self.breaker = breaker
        self.hooks = hooks
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = sleep_in_running_library if async_sleep is None else async_sleep
        self._random = randomness if randomness is not None else random.Random()

    @classmethod
    def from_settings(
        cls,
        target: str,
        settings: RetrySettings,
        *,
        breaker: CircuitBreaker,
        retry_on: tuple[ExceptionMatcher, ...],
        retry_on_result: Callable[[Any], bool] | None = None,
        retry_after: Callable[[BaseException | None, Any], float | None] = _retry_after_attribute,
        hooks: tuple[RetryHook, ...] = (),
    ) -> Retry:
        """An instrumentation's retry of ``target``'s calls through ``breaker``.

        Attempts, backoff and jitter come from ``settings`` (``OTEL_RESILIENCE_RETRY_*``),
        with a budget of its own; what is worth retrying is the instrumentation's to say.
        """
        return cls(
            target,
            max_attempts=settings.max_retries + 1,
            initial_backoff=settings.initial_backoff,
            max_backoff=settings.max_backoff,
            jitter=settings.jitter,
            retry_on=retry_on,
            retry_on_result=retry_on_result,
            retry_after=retry_after,
            budget=RetryBudget(settings.budget_ratio),
            breaker=breaker,
            hooks=hooks,
        )

    # --- decisions --------------------------------------------------------------------------

    def _backoff(self, retry_number: int, previous_wait: float) -> float:
        """The wait before retry number ``retry_number`` (1-based), before Retry-After."""
        if self.jitter == "decorrelated":
            upper = max(self.initial_backoff, previous_wait * 3)
            return min(self.max_backoff, self._random.uniform(self.initial_backoff, upper))
        exponent = min(retry_number - 1, 64)
        ceiling = min(self.max_backoff, self.initial_backoff * self.backoff_multiplier**exponent)
        return self._random.uniform(0, ceiling) if self.jitter == "full" else ceiling

    def _worth_retrying(self, error: BaseException | None, result: Any) -> bool:
        if error is not None:
            return not isinstance(error, CircuitOpenError) and matches(self.retry_on, error)
        return self.retry_on_result is not None and bool(self.retry_on_result(result))

    def _next_wait(
        self,
        attempt: int,
        started: float,
        previous_wait: float,
        error: BaseException | None,
        result: Any,
        pending: list[Awaitable[object]],
    ) -> float | RetryOutcome:
        """The wait before the next attempt, or why there is none."""
        if attempt >= self.max_attempts:
            return "exhausted"
        if self.breaker is not None and self.breaker.state in ("open", "forced_open"):
            return "exhausted"
        wait = self._backoff(attempt, previous_wait)
        server_wait = self.retry_after(error, result)
        if server_wait is not None:
            if server_wait > self.max_retry_after:
                return "exhausted"
            wait = max(wait, server_wait)
        wait = min(wait, MAX_SECONDS)  # a wait built in code, e.g. max_backoff=1e10, overflows
        if self.deadline is not None and self._clock() - started + wait >= self.deadline:
            return "exhausted"
        if not self.budget.try_spend():
            return "budget_exhausted"
        details = RetryDetails(self.target, attempt, wait, error, self._clock() - started, result)
        for hook in self.hooks:
            returned = _run_hook(hook, details)
            if inspect.isawaitable(returned):
                pending.append(returned)
        return wait

    # --- call forms ---------------------------------------------------------------------------
    # One entry each for sync and async callers (the decorator is a thin user of them). The
    # first attempt is made inline, since it nearly always succeeds: the call is counted in
    # the budget and its start noted, and the retry's state (a RetryRun) is made only if
    # that attempt failed.

    def call(self, function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``function``, retrying as the policy allows."""
        self.budget.record_call()
        started = self._clock()
        try:
            result = function(*args, **kwargs)
        except Exception as error:
            run = RetryRun(self, started)
            wait = run.after(error, None)
            if wait is None:
                raise
        else:
            if self.retry_on_result is None or not self.retry_on_result(result):
                return result
            run = RetryRun(self, started)
            wait = run.after(None, result)
            if wait is None:
                return result
        return self._loop(run, wait, function, *args, **kwargs)

    def call_async(
        self, function: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, R]:
        """Await ``function``, retrying as the policy allows; waits with the running library.

        Returns the retrying coroutine itself rather than one awaiting it, so that the
        caller's coroutine chain is one level shorter: every resumption passes through it.
        """
        return self._call_async(function, *args, **kwargs)

    async def _call_async(
        self, function: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        self.budget.record_call()
        started = self._clock()
        try:
            result = await function(*args, **kwargs)
        except Exception as error:
            run = RetryRun(self, started)
            wait = run.after(error, None)
            if wait is None:
                raise
        else:
            if self.retry_on_result is None or not self.retry_on_result(result):
                return result
            run = RetryRun(self, started)
            wait = run.after(None, result)
            if wait is None:
                return result
        return await self._loop_async(run, wait, function, *args, **kwargs)

    # --- the loops --------------------------------------------------------------------------

    def _loop(
        self,
        run: RetryRun,
        wait: float,
        function: Callable[P, R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """The retries: attempts from ``run.attempt`` on, the first after waiting ``wait``."""
        while True:
            run.drop_pending()
            self._sleep(wait)
            token = _attempt.set(run.attempt - 1)
            try:
                result = function(*args, **kwargs)
            except Exception as error:
                next_wait = run.after(error, None)
                if next_wait is None:
                    raise
            else:
                next_wait = run.after(None, result)
                if next_wait is None:
                    return result
            finally:
                _attempt.reset(token)
            wait = next_wait

    async def _loop_async(
        self,
        run: RetryRun,
        wait: float,
        function: Callable[P, Awaitable[R]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """:meth:`_loop` for async callables."""
        while True:
            await run.await_pending()
            await self._async_sleep(wait)
            token = _attempt.set(run.attempt - 1)
            try:
                result = await function(*args, **kwargs)
            except Exception as error:
                next_wait = run.after(error, None)
                if next_wait is None:
                    raise
            else:
                next_wait = run.after(None, result)
                if next_wait is None:
                    return result
            finally:
                _attempt.reset(token)
            wait = next_wait

    @overload
    def __call__(
        self, function: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, function: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, function: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function."""
        return decorate(function, self.call, self.call_async)


class RetryRun:
    """One retried call's bookkeeping, made once its first attempt has failed."""

    __slots__ = ("attempt", "pending", "retry", "started", "wait")

    def __init__(self, retry: Retry, started: float) -> None:
        self.retry = retry
        self.started = started
        self.wait = 0.0
        self.attempt = 1
        self.pending: list[Awaitable[object]] = []  # what async hooks returned, to await

    def drop_pending(self) -> None:
        """The sync path cannot await: close what async hooks returned, unawaited."""
        for awaitable in self.pending:
            close = getattr(awaitable, "close", None)
            if close is not None:
                close()
        self.pending.clear()

    async def await_pending(self) -> None:
        """Await what the hooks returned; their failures are logged, the retry goes on."""
        while self.pending:
            try:
                await self.pending.pop(0)
            except Exception:
                logging.getLogger("otel_resilience.retry").warning(
                    "A retry hook's awaitable raised; the retry goes on", exc_info=True
                )

    def after(self, error: BaseException | None, result: Any) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to stop here.

        On ``None`` the caller returns the result or re-raises the error as it is.
        """
        retry = self.retry
        if not retry._worth_retrying(error, result):
            if self.attempt > 1 and error is None:
                _record(retry.target, "succeeded")
            return None
        decision = retry._next_wait(
            self.attempt, self.started, self.wait, error, result, self.pending
        )
        if isinstance(decision, str):
            if self.attempt > 1 or decision == "budget_exhausted":
                _record(retry.target, decision)
            if error is not None and self.attempt > 1:
                error.add_note(
                    f"otel-resilience: gave up on {retry.target!r} after {self.attempt} attempts"
                )
            return None
        _record(retry.target, "retried")
        self.wait = decision
        self.attempt += 1
        return decision


def _run_hook(hook: RetryHook, details: RetryDetails) -> object:
    try:
        return hook(details)
    except Exception:
        logging.getLogger("otel_resilience.retry").warning(
            "A retry hook raised; the retry goes on", exc_info=True
        )
        return None
