"""A breaker's telemetry reaches a real collector: instruments, span events, log records."""

from __future__ import annotations

from instrumented_run import run_instrumented
from otlp_receiver import OtlpReceiver, ReceivedMetric

APP = """
import logging
from opentelemetry import trace
from otel_resilience import CircuitBreaker, CircuitOpenError

breaker = CircuitBreaker("http://inventory:8080", consecutive_failures=2, recovery_timeout=30)

def broken():
    raise ConnectionError("refused")

with trace.get_tracer("test.app").start_as_current_span("checkout"):
    breaker.call(lambda: "ok")
    for _ in range(2):
        try:
            breaker.call(broken)
        except ConnectionError:
            pass
    try:
        breaker.call(lambda: "never runs")
    except CircuitOpenError as error:
        print("rejected", error.state)
"""

NAME = "resilience.circuit_breaker.name"


def _points(metric: ReceivedMetric) -> dict[tuple[str, ...], float]:
    return {
        tuple(str(value) for key, value in sorted(point.attributes.items()) if key != NAME): (
            point.value or 0
        )
        for point in metric.data_points
        if point.attributes.get(NAME) == "http://inventory:8080"
    }


def test_breaker_metrics_span_events_and_logs_reach_the_collector(
    otlp_receiver: OtlpReceiver,
) -> None:
    run = run_instrumented(
        APP, env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint}
    ).check()
    assert "rejected open" in run.stdout

    calls = otlp_receiver.wait_for_metric("resilience.circuit_breaker.calls")
    assert calls.unit == "{call}" and calls.description
    assert _points(calls) == {("success",): 1, ("failure",): 2, ("rejected",): 1, ("ignored",): 0}

    state = otlp_receiver.wait_for_metric("resilience.circuit_breaker.state")
    assert _points(state) == {
        ("closed",): 0,
        ("open",): 1,
        ("half_open",): 0,
        ("forced_open",): 0,
        ("disabled",): 0,
    }
    transitions = otlp_receiver.wait_for_metric("resilience.circuit_breaker.transitions")
    assert _points(transitions)[("open",)] == 1
    slow = otlp_receiver.wait_for_metric("resilience.circuit_breaker.slow_calls")
    assert _points(slow) == {(): 0}

    (span,) = otlp_receiver.wait_for_spans(lambda s: s.name == "checkout")
    events = {name: attributes for name, attributes in span.events}
    assert events["resilience.circuit_breaker.state_change"] == {
        NAME: "http://inventory:8080",
        "resilience.circuit_breaker.previous_state": "closed",
        "resilience.circuit_breaker.state": "open",
    }
    assert events["resilience.circuit_breaker.rejected"][NAME] == "http://inventory:8080"

    (record,) = otlp_receiver.wait_for_logs(lambda r: "opened" in str(r.body))
    assert record.severity_text == "WARN"
    assert record.trace_id == span.trace_id
