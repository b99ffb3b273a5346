"""The demo, unchanged, under the launcher: through a real collector, and into real Prometheus.

These tests run ``examples/demo.py`` exactly as a user would, configured by environment
variables alone, and check that everything the distribution promises arrives and agrees:

- through a collector hop (rotel, forwarding OTLP to the tests' receiver): the program's
  spans with their HTTP and database client spans, the resilience instruments and the
  duration histograms, and log records (OTLP and the JSON console format) whose trace and
  span ids are those of the exported spans; the exported counts equal what the demo
  printed from its breakers and what its service received;
- through the Prometheus endpoint: a real Prometheus scrapes the resilience series while the
  demo lingers, with the same values.

The demo's own schedule makes the failures (an outage of its HTTP service, a lock on its
database); nothing here asserts on timing.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from instrumented_run import run_instrumented, running_instrumented
from otlp_receiver import OtlpReceiver, ReceivedMetric
from prometheus_server import PrometheusServer, free_tcp_port, sample_value
from rotel_collector import rotel_collector

REPOSITORY = Path(__file__).resolve().parents[2]
DEMO = REPOSITORY / "examples" / "demo.py"
CALLS = 40
DEMO_ARGUMENTS = ["--calls", str(CALLS), "--interval", "0.1", "--view", "plain"]
# What `make demo` sets: breakers quick enough for a short outage, and SQLite breakers on.
DEMO_ENVIRONMENT = {
    "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "3",
    "OTEL_RESILIENCE_BREAKER_RECOVERY_TIMEOUT": "0.5",
    "OTEL_RESILIENCE_BREAKER_MAX_RECOVERY_TIMEOUT": "1",
    "OTEL_RESILIENCE_DISABLED": "none",
    "OTEL_SERVICE_NAME": "resilience-demo",
}
CLIENT_SPAN = 3  # opentelemetry.proto SpanKind: one more than the API's
HTTP = "http://"
SQLITE = "sqlite://"


@dataclass(frozen=True)
class BreakerSummary:
    """One ``breaker NAME: STATE; ...`` line of the demo's summary."""

    name: str
    state: str
    successes: int
    failures: int
    rejected: int
    opened: int


@dataclass(frozen=True)
class DemoSummary:
    """The numbers the demo printed at the end, read from its breakers and its service."""

    breakers: dict[str, BreakerSummary]
    requests_received: int

    def breaker(self, prefix: str) -> BreakerSummary:
        (found,) = [b for name, b in self.breakers.items() if name.startswith(prefix)]
        return found


_BREAKER_LINE = re.compile(
    r"^  breaker (\S+): (\w+); (\d+) successes, (\d+) failures, (\d+) rejected; "
    r"opened (once|\d+ times)$",
    re.MULTILINE,
)
_RECEIVED_LINE = re.compile(r"the inventory service received (\d+) requests")


def _count(times: str) -> int:
    return 1 if times == "once" else int(times.split(maxsplit=1)[0])


def parse_summary(stdout: str) -> DemoSummary:
    breakers = {
        match[1]: BreakerSummary(
            match[1], match[2], int(match[3]), int(match[4]), int(match[5]), _count(match[6])
        )
        for match in _BREAKER_LINE.finditer(stdout)
    }
    received = _RECEIVED_LINE.search(stdout)
    assert breakers and received, f"the demo printed no summary:\n{stdout}"
    return DemoSummary(breakers, int(received[1]))


def check_the_story(summary: DemoSummary) -> None:
    """The schedule did what the demo is for: both breakers opened, rejected and recovered."""
    for prefix in (HTTP, SQLITE):
        breaker = summary.breaker(prefix)
        assert breaker.opened >= 1, breaker
        assert breaker.rejected >= 1, breaker
        assert breaker.state == "closed", breaker


# --------------------------------------------------------------------------- OTLP


def _value(metric: ReceivedMetric, attributes: dict[str, Any]) -> float | None:
    for point in metric.data_points:
        if all(point.attributes.get(key) == value for key, value in attributes.items()):
            return point.value
    return None


def _has_values(
    expected: dict[tuple[tuple[str, Any], ...], float],
) -> Callable[[ReceivedMetric], bool]:
    """A metric predicate: these attribute sets have exactly these values (the final export)."""

    def check(metric: ReceivedMetric) -> bool:
        return all(
            _value(metric, dict(attributes)) == value for attributes, value in expected.items()
        )

    return check


@pytest.mark.parametrize(
    "protocol", ["grpc", "http/protobuf"], ids=["to-collector-over-grpc", "to-collector-over-http"]
)
def test_the_demo_through_a_collector_sends_agreeing_traces_metrics_and_logs(
    protocol: str, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    with rotel_collector(otlp_receiver.grpc_endpoint, tmp_path) as collector:
        endpoint = collector.grpc_endpoint if protocol == "grpc" else collector.http_endpoint
        run = run_instrumented(
            DEMO,
            args=DEMO_ARGUMENTS,
            env={
                **DEMO_ENVIRONMENT,
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
                "OTEL_METRIC_EXPORT_INTERVAL": "1000",
                "OTEL_RESILIENCE_SHUTDOWN_TIMEOUT": "10",
                "OTEL_RESILIENCE_LOG_FORMAT": "json",
                "OTEL_RESILIENCE_LOG_LEVEL": "INFO",
            },
            timeout=120,
        )
        assert run.returncode == 0, (
            f"{run.stdout}\n{run.stderr}\n--- rotel ---\n{collector.log_tail()}"
        )
        summary = parse_summary(run.stdout)
        check_the_story(summary)
        http = summary.breaker(HTTP)
        sqlite = summary.breaker(SQLITE)

        # Traces: one "check stock" span per call, with the client spans inside it.
        jobs = otlp_receiver.wait_for_spans(lambda s: s.name == "check stock", count=CALLS)
        job_ids = {(span.trace_id, span.span_id) for span in jobs}
        assert jobs[0].resource_attributes["service.name"] == "resilience-demo"
        assert jobs[0].resource_attributes["telemetry.distro.name"] == "otel-resilience"
        http_spans = otlp_receiver.wait_for_spans(
            lambda s: s.kind == CLIENT_SPAN and s.name == "GET", count=summary.requests_received
        )
        db_spans = otlp_receiver.wait_for_spans(
            lambda s: s.kind == CLIENT_SPAN and s.attributes.get("db.system.name") == "sqlite"
        )
        for span in [*http_spans, *(s for s in db_spans if s.name.startswith("INSERT"))]:
            assert (span.trace_id, span.parent_span_id) in job_ids, span
        assert {s.attributes.get("http.response.status_code") for s in http_spans} >= {200, 503}
        assert any(s.attributes.get("http.request.resend_count") for s in http_spans)
        events = {name for span in otlp_receiver.spans() for name, _ in span.events}
        assert {
            "resilience.circuit_breaker.state_change",
            "resilience.circuit_breaker.rejected",
        } <= events

        # Metrics: the last export equals what the demo printed from its breakers.
        name_key = "resilience.circuit_breaker.name"
        outcome_key = "resilience.call.outcome"
        for breaker in (http, sqlite):
            otlp_receiver.wait_for_metric(
                "resilience.circuit_breaker.calls",
                _has_values(
                    {
                        ((name_key, breaker.name), (outcome_key, "success")): breaker.successes,
                        ((name_key, breaker.name), (outcome_key, "failure")): breaker.failures,
                        ((name_key, breaker.name), (outcome_key, "rejected")): breaker.rejected,
                    }
                ),
            )
            state_key = "resilience.circuit_breaker.state"
            otlp_receiver.wait_for_metric(
                "resilience.circuit_breaker.transitions",
                _has_values({((name_key, breaker.name), (state_key, "open")): breaker.opened}),
            )
            otlp_receiver.wait_for_metric(
                "resilience.circuit_breaker.state",
                _has_values(
                    {
                        ((name_key, breaker.name), (state_key, "closed")): 1,
                        ((name_key, breaker.name), (state_key, "open")): 0,
                    }
                ),
            )
        retries = otlp_receiver.wait_for_metric(
            "resilience.retry.attempts",
            lambda m: any(
                p.attributes.get("resilience.retry.target") == http.name
                and p.attributes.get("resilience.retry.outcome") == "retried"
                and (p.value or 0) > 0
                for p in m.data_points
            ),
        )
        assert retries.kind == "sum"
        durations = otlp_receiver.wait_for_metric(
            "http.client.request.duration",
            lambda m: sum(p.count or 0 for p in m.data_points) == summary.requests_received,
        )
        assert durations.unit == "s"
        assert {p.attributes.get("http.response.status_code") for p in durations.data_points} >= {
            200,
            503,
        }
        database = otlp_receiver.wait_for_metric(
            "db.client.operation.duration",
            lambda m: any(p.attributes.get("error.type") for p in m.data_points),
        )
        assert {p.attributes.get("db.system.name") for p in database.data_points} == {"sqlite"}
        assert {p.attributes.get("db.operation.name") for p in database.data_points} >= {
            "INSERT",
            "SELECT",
        }

        # Logs: each "call N" record carries the ids of its "check stock" span.
        calls = otlp_receiver.wait_for_logs(lambda r: str(r.body).startswith("call "), count=CALLS)
        for record in calls:
            assert (record.trace_id, record.span_id) in job_ids, record
        opened = otlp_receiver.wait_for_logs(
            lambda r: "opened" in str(r.body) and r.severity_text.startswith("WARN")
        )
        exported_traces = {span.trace_id for span in otlp_receiver.spans()}
        assert all(record.trace_id in exported_traces for record in opened), opened

    # The JSON console format carries the same ids as the OTLP records and the spans.
    console = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    console_calls = [r for r in console if str(r.get("message", "")).startswith("call ")]
    assert len(console_calls) == CALLS, run.stderr
    for entry in console_calls:
        assert (entry["trace_id"], entry["span_id"]) in job_ids, entry


# --------------------------------------------------------------------------- Prometheus


def _one(prometheus: PrometheusServer, promql: str, expected: float) -> None:
    samples = prometheus.wait_for_query(
        promql,
        timeout=60,
        predicate=lambda found: len(found) == 1 and sample_value(found[0]) == expected,
    )
    assert sample_value(samples[0]) == expected


def test_prometheus_scrapes_the_demos_resilience_series(
    start_prometheus: Callable[[Sequence[str]], PrometheusServer],
) -> None:
    port = free_tcp_port()
    with running_instrumented(
        DEMO,
        args=[*DEMO_ARGUMENTS, "--linger", "120"],
        env={
            **DEMO_ENVIRONMENT,
            "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
            "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
        },
        stop_signal=signal.SIGINT,
    ) as demo:
        demo.wait_for_output(r"serving metrics at http://127\.0\.0\.1:", timeout=120)
        summary = parse_summary(demo.stdout)
        check_the_story(summary)
        prometheus = start_prometheus([f"127.0.0.1:{port}"])
        for breaker in summary.breakers.values():
            name = f'resilience_circuit_breaker_name="{breaker.name}"'
            calls = "resilience_circuit_breaker_calls_total"
            _one(
                prometheus,
                f'{calls}{{{name},resilience_call_outcome="success"}}',
                breaker.successes,
            )
            _one(
                prometheus, f'{calls}{{{name},resilience_call_outcome="failure"}}', breaker.failures
            )
            _one(
                prometheus,
                f'{calls}{{{name},resilience_call_outcome="rejected"}}',
                breaker.rejected,
            )
            _one(
                prometheus,
                f"resilience_circuit_breaker_transitions_total{{{name},"
                f'resilience_circuit_breaker_state="open"}}',
                breaker.opened,
            )
            _one(
                prometheus,
                f'resilience_circuit_breaker_state{{{name},resilience_circuit_breaker_state="closed"}}',
                1,
            )
        http = summary.breaker(HTTP)
        retried = prometheus.wait_for_query(
            f'resilience_retry_attempts_total{{resilience_retry_target="{http.name}",'
            'resilience_retry_outcome="retried"}',
            timeout=60,
        )
        assert sample_value(retried[0]) > 0
        _one(
            prometheus,
            "sum(http_client_request_duration_seconds_count)",
            summary.requests_received,
        )
        inserts = prometheus.wait_for_query(
            'sum(db_client_operation_duration_seconds_count{db_system_name="sqlite",'
            'db_operation_name="INSERT"})',
            timeout=60,
        )
        assert sample_value(inserts[0]) > 0
    assert demo.result is not None
    assert demo.result.returncode == 0, demo.result.stderr
