"""A breaker's telemetry reaches a real collector: instruments, span events, log records."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from instrumented_run import run_instrumented, running_instrumented
from otlp_receiver import OtlpReceiver, ReceivedMetric
from prometheus_server import PrometheusServer, free_tcp_port, sample_value

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


RETRY_APP = """
from otel_resilience import Retry

retry = Retry("http://inventory:8080", max_attempts=3, initial_backoff=0, max_backoff=0)
attempts = {"n": 0}

def flaky():
    attempts["n"] += 1
    if attempts["n"] % 3:
        raise ConnectionError("refused")
    return "ok"

print(retry.call(flaky))           # two retries, then success
retry.call(lambda: "first time")   # no retry: records nothing
try:
    retry.call(lambda: (_ for _ in ()).throw(TimeoutError()))
except TimeoutError as error:
    print("gave up:", error.__notes__)
"""


def test_retry_attempts_reach_the_collector(otlp_receiver: OtlpReceiver) -> None:
    run = run_instrumented(
        RETRY_APP, env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint}
    ).check()
    assert "gave up:" in run.stdout and "after 3 attempts" in run.stdout
    metric = otlp_receiver.wait_for_metric("resilience.retry.attempts")
    assert metric.unit == "{attempt}" and metric.description
    by_outcome = {
        point.attributes["resilience.retry.outcome"]: point.value for point in metric.data_points
    }
    assert by_outcome == {"retried": 4, "succeeded": 1, "exhausted": 1}
    assert {point.attributes["resilience.retry.target"] for point in metric.data_points} == {
        "http://inventory:8080"
    }


SERVING_APP = (
    APP
    + """
import sys
print("ready", flush=True)
sys.stdin.readline()
"""
)


def test_prometheus_renders_the_documented_names(
    start_prometheus: Callable[[Sequence[str]], PrometheusServer],
) -> None:
    port = free_tcp_port()
    with running_instrumented(
        SERVING_APP, env={"OTEL_EXPORTER_PROMETHEUS_PORT": str(port)}, eof_grace=5
    ) as app:
        app.wait_for_output("ready")
        prometheus = start_prometheus([f"127.0.0.1:{port}"])
        name = 'resilience_circuit_breaker_name="http://inventory:8080"'
        (failures,) = prometheus.wait_for_query(
            f'resilience_circuit_breaker_calls_total{{{name}, resilience_call_outcome="failure"}}'
        )
        assert sample_value(failures) == 2
        (state,) = prometheus.wait_for_query(
            f'resilience_circuit_breaker_state{{{name}, resilience_circuit_breaker_state="open"}}'
        )
        assert sample_value(state) == 1
        (opened,) = prometheus.wait_for_query(
            f"resilience_circuit_breaker_transitions_total{{{name}, "
            f'resilience_circuit_breaker_state="open"}}'
        )
        assert sample_value(opened) == 1
        assert prometheus.wait_for_query(f"resilience_circuit_breaker_slow_calls_total{{{name}}}")
