"""Admitting an instrumented call through its breaker, in the instrumented library's terms.

Every adapter (HTTP and database alike) asks the endpoint's breaker for a permit after
starting the call's span. A rejection must look like the library's own error to the
program, and the span must still end, as an error, so the trace shows the call that never
went out. That is one mechanism, kept here once.
"""

from __future__ import annotations

import contextvars

from opentelemetry.trace import Span, Status, StatusCode

from otel_resilience.breaker._breaker import CallPermit, CircuitBreaker, CircuitOpenError
from otel_resilience.retry._retry import RetryDetails

__all__ = [
    "HeldVerdict",
    "admit",
    "held_verdict",
    "rejected_in_library_terms",
    "settle_as_retried_past",
]


class HeldVerdict:
    """A failed attempt's breaker verdict, held until its retry decides what it was.

    The breaker judges logical calls, not attempts: a call retried to exhaustion is one
    failure, and one that succeeds on a retry is one success (its failed attempts stay
    visible as spans and in the duration histogram). An attempt cannot know, when it
    fails, whether a retry follows (the budget, the deadline or ``Retry-After`` may stop
    it), so its permit waits here: the retry's hook (:func:`settle_as_retried_past`)
    settles it as neither when it retries, the call settles it as a failure when the retry
    gives up. A half-open trial is never held: a probe's failure re-opens at once.
    """

    __slots__ = ("_error", "_permit")

    def __init__(self) -> None:
        self._permit: CallPermit | None = None
        self._error: BaseException | None = None

    def hold(self, permit: CallPermit, error: BaseException | None) -> None:
        self.settle(None)  # never two held at once: an earlier one was retried past
        self._permit, self._error = permit, error

    def settle(self, failed: bool | None) -> None:
        """Record the held permit, once: ``True`` the call failed, ``None`` retried past."""
        permit = self._permit
        if permit is not None:
            self._permit = None
            permit.record(failed, self._error)


held_verdict: contextvars.ContextVar[HeldVerdict | None] = contextvars.ContextVar(
    "otel_resilience.held_verdict", default=None
)
"""The verdict of the retried call in progress, set only while its retry runs."""


def settle_as_retried_past(details: RetryDetails | None = None) -> None:
    """A retry hook: the attempt about to be retried counts as neither."""
    held = held_verdict.get()
    if held is not None:
        held.settle(None)


def admit(
    breaker: CircuitBreaker, rejection_error: type[CircuitOpenError], span: Span | None = None
) -> CallPermit:
    """The breaker's permit, or ``rejection_error`` (the library's) raised in its place.

    With ``span``, a rejection ends it as an error whose ``error.type`` names that error.
    """
    try:
        return breaker.acquire()
    except CircuitOpenError as rejected:
        raise rejected_in_library_terms(rejected, rejection_error, span) from None


def rejected_in_library_terms(
    rejected: CircuitOpenError, rejection_error: type[CircuitOpenError], span: Span | None
) -> CircuitOpenError:
    """``rejected`` as ``rejection_error``, for the caller to raise ``from None``.

    For callers that ask the breaker directly rather than through :func:`admit` (the HTTP
    wrapper, which saves a permit object per request). With ``span``, the span ends as an
    error whose ``error.type`` names the returned error.
    """
    error = rejection_error(*rejected.args)
    if span is not None:
        span.set_attribute("error.type", type(error).__qualname__)
        span.set_status(Status(StatusCode.ERROR, str(error)))
        span.end()
    return error
