"""The circuit breakers' telemetry: observable instruments, span events and log records.

Breakers count their calls themselves (exact integers under their own lock); the
observable instruments here, in the ``otel_resilience`` metric registry, read those
counters when the Prometheus endpoint is scraped or an exporter collects, so a guarded call
pays nothing for its metrics. State changes and rejections, which are rare, add an event to
the current span, and state changes write one log record through ``logging``.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from opentelemetry.context import get_current as current_context
from opentelemetry.trace import Span

# The key under which the context holds the current span, as trace.get_current_span()
# reads it; looked up directly because a rejection is on an open breaker's every call and
# this saves half of the lookup's cost.
from opentelemetry.trace.propagation import _SPAN_KEY

from otel_resilience._fork import unlock_after_fork
from otel_resilience.metrics import Observation
from otel_resilience.metrics._registry import resilience_registry

if TYPE_CHECKING:
    from otel_resilience.breaker._breaker import CircuitBreaker, StateTransition

__all__ = ["observe", "observed_breakers", "record_rejection", "record_transition"]

_logger = logging.getLogger("otel_resilience.circuit_breaker")

NAME = "resilience.circuit_breaker.name"
STATE = "resilience.circuit_breaker.state"
OUTCOME = "resilience.call.outcome"

_STATES = ("closed", "open", "half_open", "forced_open", "disabled")
# Index of each outcome in CircuitBreaker._counts: calls, successes, failures, rejections,
# ignored, slow.
_OUTCOME_COUNTS = (("success", 1), ("failure", 2), ("rejected", 3), ("ignored", 4))

_observed: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()
_instruments_lock = threading.Lock()
unlock_after_fork(sys.modules[__name__], "_instruments_lock")
_instruments_created = False


def observed_breakers() -> list[CircuitBreaker]:
    """Every breaker alive in this process."""
    return list(_observed)


def observe(breaker: CircuitBreaker) -> None:
    """Include ``breaker`` in the metrics; the instruments are created on first use."""
    _observed.add(breaker)
    global _instruments_created  # noqa: PLW0603 - created once per process
    if _instruments_created:
        return
    with _instruments_lock:
        if _instruments_created:
            return
        _create_instruments()
        _instruments_created = True


def _snapshots() -> list[tuple[str, str, list[int], dict[str, int]]]:
    return [breaker._telemetry_snapshot() for breaker in observed_breakers()]


def _observe_state() -> Iterable[Observation]:
    for name, state, _, _ in _snapshots():
        for candidate in _STATES:
            yield 1 if candidate == state else 0, {NAME: name, STATE: candidate}


def _observe_calls() -> Iterable[Observation]:
    for name, _, counts, _ in _snapshots():
        for outcome, index in _OUTCOME_COUNTS:
            yield counts[index], {NAME: name, OUTCOME: outcome}


def _observe_slow_calls() -> Iterable[Observation]:
    for name, _, counts, _ in _snapshots():
        yield counts[5], {NAME: name}


def _observe_transitions() -> Iterable[Observation]:
    for name, _, _, transitions in _snapshots():
        for state, count in transitions.items():
            yield count, {NAME: name, STATE: state}


def _create_instruments() -> None:
    registry = resilience_registry()
    registry.observable_gauge(
        "resilience.circuit_breaker.state",
        _observe_state,
        # Not "1": the collector's Prometheus translation would rename a unit-"1" gauge
        # ..._ratio, while the Python exporter doesn't; one name for both paths.
        unit="{state}",
        description="1 for the circuit breaker's current state, 0 for the other states.",
    )
    registry.observable_counter(
        "resilience.circuit_breaker.calls",
        _observe_calls,
        unit="{call}",
        description="Calls through the circuit breaker, by outcome.",
    )
    registry.observable_counter(
        "resilience.circuit_breaker.slow_calls",
        _observe_slow_calls,
        unit="{call}",
        description="Completed calls slower than the circuit breaker's slow-call threshold.",
    )
    registry.observable_counter(
        "resilience.circuit_breaker.transitions",
        _observe_transitions,
        unit="{transition}",
        description="Times the circuit breaker entered each state.",
    )


def _recording_span() -> Span | None:
    span = cast("Span | None", current_context().get(_SPAN_KEY))
    return span if span is not None and span.is_recording() else None


def record_rejection(breaker: CircuitBreaker, state: str) -> None:
    """Mark the current span: this call never reached the endpoint."""
    span = cast("Span | None", current_context().get(_SPAN_KEY))  # _recording_span, inline
    if span is not None and span.is_recording():
        span.add_event("resilience.circuit_breaker.rejected", {NAME: breaker.name, STATE: state})


def record_transition(breaker: CircuitBreaker, event: StateTransition) -> None:
    """A span event for every state change; a log record on opening and on recovering."""
    span = _recording_span()
    if span is not None:
        span.add_event(
            "resilience.circuit_breaker.state_change",
            {
                NAME: breaker.name,
                "resilience.circuit_breaker.previous_state": event.from_state,
                STATE: event.to_state,
            },
        )
    if event.to_state == "open":
        _logger.warning(
            "Circuit breaker %r opened (%s); calls are rejected for %.3g s",
            breaker.name,
            event.reason,
            event.open_for or 0.0,
        )
    elif event.to_state == "closed" and event.from_state != "closed":
        _logger.info("Circuit breaker %r closed again (%s)", breaker.name, event.reason)
