"""The circuit breakers' telemetry: observable instruments, span events and log records.

A subscriber of every breaker's events (``_breaker.subscribe``), subscribed
when this module is imported; the breaker itself knows nothing of it.

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
from collections.abc import Iterable
from typing import cast

from opentelemetry.context import get_current as current_context
from opentelemetry.trace import Span

# The key under which the context holds the current span, as trace.get_current_span()
# reads it; looked up directly because a rejection is on an open breaker's every call and
# this saves half of the lookup's cost.
from otel_resilience._compat import SPAN_KEY
from otel_resilience._fork import unlock_after_fork
from otel_resilience.breaker._breaker import (
    CircuitBreaker,
    State,
    StateTransition,
    live_breakers,
    subscribe,
)
from otel_resilience.metrics import Observation
from otel_resilience.metrics._registry import resilience_registry

__all__ = ["BreakerTelemetry"]

_logger = logging.getLogger("otel_resilience.circuit_breaker")

NAME = "resilience.circuit_breaker.name"
STATE = "resilience.circuit_breaker.state"
OUTCOME = "resilience.call.outcome"

_STATES = ("closed", "open", "half_open", "forced_open", "disabled")
# Index of each outcome in CircuitBreaker._counts: calls, successes, failures, rejections,
# ignored, slow.
_OUTCOME_COUNTS = (("success", 1), ("failure", 2), ("rejected", 3), ("ignored", 4))

_instruments_lock = threading.Lock()
unlock_after_fork(sys.modules[__name__], "_instruments_lock")
_instruments_created = False


def _create_instruments_once() -> None:
    """The observable instruments, made when the first breaker is (not at import)."""
    global _instruments_created  # noqa: PLW0603 - created once per process
    if _instruments_created:
        return
    with _instruments_lock:
        if _instruments_created:
            return
        _create_instruments()
        _instruments_created = True


def _snapshots() -> list[tuple[str, str, list[int], dict[str, int]]]:
    return [breaker.counters() for breaker in live_breakers()]


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
    span = cast("Span | None", current_context().get(SPAN_KEY))
    return span if span is not None and span.is_recording() else None


def _record_rejection(breaker: CircuitBreaker, state: str) -> None:
    """Mark the current span: this call never reached the endpoint."""
    span = cast("Span | None", current_context().get(SPAN_KEY))  # _recording_span, inline
    if span is not None and span.is_recording():
        span.add_event("resilience.circuit_breaker.rejected", {NAME: breaker.name, STATE: state})


def _record_transition(breaker: CircuitBreaker, event: StateTransition) -> None:
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


class BreakerTelemetry:
    """The subscriber: instruments on the first breaker, span events and logs on events."""

    def breaker_created(self, breaker: CircuitBreaker) -> None:
        _create_instruments_once()

    def state_changed(self, breaker: CircuitBreaker, event: StateTransition) -> None:
        _record_transition(breaker, event)

    def call_rejected(self, breaker: CircuitBreaker, state: State) -> None:
        _record_rejection(breaker, state)


subscribe(BreakerTelemetry())
# Breakers made before this module was imported (from the private module) count too.
if live_breakers():
    _create_instruments_once()
