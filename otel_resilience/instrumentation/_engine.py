"""The call engine: the one path every instrumented outgoing call takes, HTTP or database.

For each attempt, in order: start the CLIENT span (with the attributes samplers see), take
the endpoint's breaker permit (a rejection becomes the library's own error and ends the
span as one), run the call in a context where the span is current, classify its outcome,
record it on the permit, end the span with the attributes that come at the end, record the
duration histogram; then, if the outcome is worth it and a retry is armed, the retry makes
the next attempt the same way.

What differs between HTTP and a database is small and lives in a :class:`CallKind`: how to
name and describe a call, how to classify an error or a result, which attributes come at
the end. ``OutgoingHttp`` and ``OutgoingDb`` choose the breaker and the retry for a call
and hand it here.

The breaker judges logical calls, not attempts (:class:`HeldVerdict`): a call retried to
exhaustion is one failure, one that succeeds on a retry is one success, and the failed
attempts stay visible as spans and in the histogram.

An unsampled call costs little beyond the sampler's decision: attributes that only a
recording span would keep (a status description, the attributes of the answer) are not
built for a span that records nothing.
"""

from __future__ import annotations

import contextvars
import functools
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_resilience.breaker._breaker import (
    CallPermit,
    CircuitBreaker,
    CircuitOpenError,
    PermitOutcome,
)
from otel_resilience.retry._retry import Retry, RetryDetails

__all__ = [
    "CallEngine",
    "CallKind",
    "HeldVerdict",
    "Verdict",
    "admit",
    "is_judged_failure",
    "record_failed",
    "settle_as_retried_past",
]

CallT = TypeVar("CallT")
ResultT = TypeVar("ResultT")
CallT_contra = TypeVar("CallT_contra", contravariant=True)
ResultT_contra = TypeVar("ResultT_contra", contravariant=True)

Verdict = bool | None
"""What an outcome says of the endpoint: ``True`` it failed (counts against it, and may be
retried), ``False`` it answered (a success for the breaker), ``None`` nothing (neither)."""

_OUTCOMES: Mapping[Verdict, PermitOutcome] = {True: "failure", False: "success", None: "ignored"}


class Histogram(Protocol):
    def record(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None: ...


class CallKind(Protocol[CallT_contra, ResultT_contra]):
    """How one kind of outgoing call is named, described and judged.

    ``CallT`` is what the kind knows of one call (an HTTP request and its URL's endpoint; a
    database endpoint and statement); ``ResultT`` what the library returns.
    """

    library_name: str
    rejection_error: type[CircuitOpenError]
    """The library's own error for a rejected call (also a :class:`CircuitOpenError`)."""
    duration: Histogram
    """``http.client.request.duration``, ``db.client.operation.duration``..."""
    reads_later: bool
    """Whether results may be read after the call returns (see :meth:`finish_later`)."""

    def span_start(self, call: CallT_contra) -> tuple[str, Mapping[str, Any]]:
        """The span's name and the attributes it starts with (what samplers see)."""
        ...

    def sending_context(
        self, call: CallT_contra, span: trace.Span, current: context.Context
    ) -> context.Context:
        """The context the call runs in: ``span`` current, nested instrumentation of the
        same kind suppressed (and, for HTTP, the trace context injected)."""
        ...

    def judge_error(self, call: CallT_contra, error: BaseException) -> Verdict:
        """What ``error`` says of the endpoint; must not raise."""
        ...

    def error_type(self, call: CallT_contra, error: BaseException) -> str:
        """``error.type`` for a failed attempt."""
        ...

    def error_description(self, call: CallT_contra, error: BaseException) -> str | None:
        """The span status description (asked only of recording spans)."""
        ...

    def error_attributes(
        self, call: CallT_contra, error_type: str, result: ResultT_contra | None
    ) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        """What a failed attempt adds to its span, and the histogram's attributes for it.

        ``result`` is the answer whose body then failed to arrive, if any.
        """
        ...

    def judge_result(self, call: CallT_contra, result: ResultT_contra) -> bool:
        """Whether a returned ``result`` is a failure of the endpoint (an HTTP 503)."""
        ...

    def server_wait(self, call: CallT_contra, result: ResultT_contra) -> float | None:
        """Seconds a failed ``result`` asks callers to wait (``Retry-After``), if any."""
        ...

    def answered(
        self, call: CallT_contra, result: ResultT_contra
    ) -> tuple[Mapping[str, Any], Mapping[str, Any], bool]:
        """What the answer adds to the span, the histogram's attributes, and whether the
        span's status is an error (an HTTP status of 400 or more)."""
        ...

    def finish_later(
        self,
        call: CallT_contra,
        result: ResultT_contra,
        finish: Callable[[BaseException | None], None],
    ) -> bool:
        """Arrange ``finish(error)`` for when the result's body has been read, if it is read
        after the call returns (httpx); ``False``: the call is complete now."""
        ...


class HeldVerdict:
    """A failed attempt's breaker verdict, held until its retry decides what it was.

    An attempt cannot know, when it fails, whether a retry follows (the budget, the
    deadline or ``Retry-After`` may stop it), so its permit waits here: the retry's hook
    (:func:`settle_as_retried_past`) settles it as neither when it retries, the call settles
    it as a failure when the retry gives up. A half-open trial is never held: a probe's
    failure re-opens at once.
    """

    __slots__ = ("_error", "_permit")

    def __init__(self) -> None:
        self._permit: CallPermit | None = None
        self._error: BaseException | None = None

    def hold(self, permit: CallPermit, error: BaseException | None) -> None:
        self.settle(None)  # never two held at once: an earlier one was retried past
        self._permit, self._error = permit, error

    def settle(self, verdict: Verdict) -> None:
        """Record the held permit, once: ``True`` the call failed, ``None`` retried past."""
        permit = self._permit
        if permit is not None:
            self._permit = None
            permit.record(_OUTCOMES[verdict], self._error)


held_verdict: contextvars.ContextVar[HeldVerdict | None] = contextvars.ContextVar(
    "otel_resilience.held_verdict", default=None
)
"""The verdict of the retried call in progress, set only while its retry runs."""


def settle_as_retried_past(details: RetryDetails | None = None) -> None:
    """A retry hook: the attempt about to be retried counts as neither."""
    held = held_verdict.get()
    if held is not None:
        held.settle(None)


_judged_failures: weakref.WeakSet[BaseException] = weakref.WeakSet()
"""Errors an attempt judged the endpoint's failure: only these are retried. An exception's
identity outlives the attempt that judged it, so the retry asks here rather than asking
the kind again without the call."""


def is_judged_failure(error: BaseException) -> bool:
    """A retry's ``retry_on``: an attempt's error that counted against the endpoint."""
    return error in _judged_failures


def admit(
    breaker: CircuitBreaker, rejection_error: type[CircuitOpenError], span: trace.Span | None
) -> CallPermit:
    """The breaker's permit, or ``rejection_error`` (the library's) raised in its place.

    With ``span``, a rejection ends it as an error whose ``error.type`` names that error,
    so the trace shows the call that never went out.
    """
    try:
        return breaker.admit()
    except CircuitOpenError as rejected:
        error = rejection_error(*rejected.args)
        if span is not None:
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(Status(StatusCode.ERROR, str(error)))
            span.end()
        raise error from None


def record_failed(permit: CallPermit | None, verdict: Verdict, error: BaseException) -> None:
    """Judge a failed attempt: a failure of the endpoint may be retried (``is_judged_failure``),
    and is held while a retry may follow it; otherwise the verdict is recorded now."""
    if verdict is True:
        _judged_failures.add(error)
    _record(permit, verdict, error)


def _record(permit: CallPermit | None, verdict: Verdict, error: BaseException | None) -> None:
    """Record an attempt's verdict, or hold a failure while a retry may follow it."""
    if permit is None:
        return
    if verdict is True and not permit.trial:
        held = held_verdict.get()
        if held is not None:
            held.hold(permit, error)
            return
    permit.record(_OUTCOMES[verdict], error)


class CallEngine(Generic[CallT, ResultT]):
    """Runs one kind of call: the attempt, sync and async, and the retry around it."""

    __slots__ = ("kind", "tracer")

    def __init__(self, kind: CallKind[CallT, ResultT], tracer: trace.Tracer) -> None:
        self.kind = kind
        self.tracer = tracer

    # --- the call: attempts under a retry ------------------------------------------------

    def run(
        self,
        call: CallT,
        breaker: CircuitBreaker | None,
        retry: Retry | None,
        send: Callable[..., ResultT],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        current: context.Context | None = None,
    ) -> ResultT:
        """Make the call: one attempt, or attempts as ``retry`` allows, judged as one call."""
        if retry is None:
            return self.attempt(call, breaker, send, args, kwargs, current)
        held = HeldVerdict()
        token = held_verdict.set(held)
        try:
            return retry.call(self.attempt, call, breaker, send, args, kwargs, current)
        finally:
            held_verdict.reset(token)
            held.settle(True)  # still held: the retry gave up on it

    async def run_async(
        self,
        call: CallT,
        breaker: CircuitBreaker | None,
        retry: Retry | None,
        send: Callable[..., Awaitable[ResultT]],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        current: context.Context | None = None,
    ) -> ResultT:
        """:meth:`run` for async libraries; retries wait with the running library."""
        if retry is None:
            return await self.attempt_async(call, breaker, send, args, kwargs, current)
        held = HeldVerdict()
        token = held_verdict.set(held)
        try:
            return await retry.call_async(
                self.attempt_async, call, breaker, send, args, kwargs, current
            )
        finally:
            held_verdict.reset(token)
            held.settle(True)

    # --- one attempt -----------------------------------------------------------------------

    def attempt(
        self,
        call: CallT,
        breaker: CircuitBreaker | None,
        send: Callable[..., ResultT],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        current: context.Context | None = None,
    ) -> ResultT:
        """One attempt: span, admission, the call, its outcome recorded; raises as it did."""
        span, permit, sending = self._begin(call, breaker, current)
        started = time.perf_counter()
        token = context.attach(sending)
        try:
            result = send(*args, **kwargs)
        except BaseException as error:
            context.detach(token)
            self._failed(call, span, permit, error, started, None)
            raise
        context.detach(token)
        self._answered(call, span, permit, result, started)
        return result

    async def attempt_async(
        self,
        call: CallT,
        breaker: CircuitBreaker | None,
        send: Callable[..., Awaitable[ResultT]],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        current: context.Context | None = None,
    ) -> ResultT:
        """:meth:`attempt` for async libraries."""
        span, permit, sending = self._begin(call, breaker, current)
        started = time.perf_counter()
        token = context.attach(sending)
        try:
            result = await send(*args, **kwargs)
        except BaseException as error:
            context.detach(token)
            self._failed(call, span, permit, error, started, None)
            raise
        context.detach(token)
        self._answered(call, span, permit, result, started)
        return result

    def _begin(
        self, call: CallT, breaker: CircuitBreaker | None, current: context.Context | None
    ) -> tuple[trace.Span, CallPermit | None, context.Context]:
        """Start the span in ``current``, take the permit, make the context to send in.

        The span starts before admission, so that a rejected call shows in the trace.
        """
        kind = self.kind
        if current is None:
            current = context.get_current()
        name, attributes = kind.span_start(call)
        span = self.tracer.start_span(
            name, context=current, kind=SpanKind.CLIENT, attributes=attributes
        )
        permit = None if breaker is None else admit(breaker, kind.rejection_error, span)
        return span, permit, kind.sending_context(call, span, current)

    def _failed(
        self,
        call: CallT,
        span: trace.Span,
        permit: CallPermit | None,
        error: BaseException,
        started: float,
        result: ResultT | None,
    ) -> None:
        """End a failed attempt (raised, or its answer's body failed to arrive)."""
        kind = self.kind
        record_failed(permit, kind.judge_error(call, error), error)
        error_type = kind.error_type(call, error)
        span_attributes, metric_attributes = kind.error_attributes(call, error_type, result)
        if span.is_recording():
            span.set_attributes(span_attributes)
            span.set_status(Status(StatusCode.ERROR, kind.error_description(call, error)))
        kind.duration.record(time.perf_counter() - started, metric_attributes)
        span.end()

    def _answered(
        self,
        call: CallT,
        span: trace.Span,
        permit: CallPermit | None,
        result: ResultT,
        started: float,
    ) -> None:
        """The call returned: judge its result; end now, or when its body has been read."""
        kind = self.kind
        if kind.judge_result(call, result):
            _record(permit, True, None)
            if permit is not None:
                wait = kind.server_wait(call, result)
                if wait is not None:
                    permit.breaker.report_retry_after(wait)
            self._end(call, span, result, started)
            return
        if kind.reads_later:
            finish = functools.partial(self._finish, call, span, permit, result, started)
            if kind.finish_later(call, result, finish):
                return
        self._finish(call, span, permit, result, started, None)

    def _finish(
        self,
        call: CallT,
        span: trace.Span,
        permit: CallPermit | None,
        result: ResultT,
        started: float,
        error: BaseException | None,
    ) -> None:
        """An answered call is complete: read to its end, or, with ``error``, failed while
        its body was read (a timeout, a dropped connection)."""
        if error is not None:
            self._failed(call, span, permit, error, started, result)
            return
        if permit is not None:
            permit.record("success")
        self._end(call, span, result, started)

    def _end(self, call: CallT, span: trace.Span, result: ResultT, started: float) -> None:
        span_attributes, metric_attributes, error_status = self.kind.answered(call, result)
        if span.is_recording():
            if error_status:
                span.set_status(Status(StatusCode.ERROR))
            span.set_attributes(span_attributes)
        self.kind.duration.record(time.perf_counter() - started, metric_attributes)
        span.end()
