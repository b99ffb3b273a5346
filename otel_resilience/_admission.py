"""Admitting an instrumented call through its breaker, in the instrumented library's terms.

Every adapter (HTTP and database alike) asks the endpoint's breaker for a permit after
starting the call's span. A rejection must look like the library's own error to the
program, and the span must still end, as an error, so the trace shows the call that never
went out. That is one mechanism, kept here once.
"""

from __future__ import annotations

from opentelemetry.trace import Span, Status, StatusCode

from otel_resilience._breaker import CallPermit, CircuitBreaker, CircuitOpenError

__all__ = ["admit", "rejected_in_library_terms"]


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
