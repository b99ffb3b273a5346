"""`opentelemetry-instrument` loads our distro and configurator: every signal, every protocol.

Each test runs a small program, unchanged, under the real launcher in a subprocess, and
checks what arrives at a real OTLP receiver or what a real Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from instrumented_run import run_instrumented, running_instrumented
from otlp_receiver import OtlpReceiver
from prometheus_server import PrometheusServer, free_tcp_port, sample_value

from otel_resilience.sdk._views import SECONDS_BUCKETS

APP = """
import logging
from opentelemetry import metrics, trace
from otel_resilience import installed_telemetry

tracer = trace.get_tracer("test.app")
meter = metrics.get_meter("test.app")
duration = meter.create_histogram("app.request.duration", unit="s", description="Request time.")
orders = meter.create_counter("app.orders", unit="{order}", description="Orders taken.")

with tracer.start_as_current_span("checkout") as span:
    duration.record(0.042, {"route": "/checkout"})
    orders.add(3, {"route": "/checkout"})
    logging.getLogger("test.app").warning("order %s placed", 17)
    print("trace_id", format(span.get_span_context().trace_id, "032x"))
print("configured", installed_telemetry() is not None)
"""


def _trace_id(stdout: str) -> str:
    for line in stdout.splitlines():
        if line.startswith("trace_id "):
            return line.split()[1]
    raise AssertionError(f"the app printed no trace id:\n{stdout}")


@pytest.mark.parametrize(
    ("protocol", "endpoint_of"),
    [
        ("grpc", lambda receiver: receiver.grpc_endpoint),
        ("http/protobuf", lambda receiver: receiver.http_endpoint),
    ],
)
def test_every_signal_reaches_the_collector_over(
    protocol: str, endpoint_of: Callable[[OtlpReceiver], str], otlp_receiver: OtlpReceiver
) -> None:
    run = run_instrumented(
        APP,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint_of(otlp_receiver),
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_SERVICE_NAME": "checkout-service",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
        },
    ).check()
    assert "configured True" in run.stdout
    trace_id = _trace_id(run.stdout)

    (span,) = otlp_receiver.wait_for_spans(lambda s: s.name == "checkout")
    assert span.protocol == protocol
    assert span.trace_id == trace_id
    assert span.resource_attributes["service.name"] == "checkout-service"
    assert span.resource_attributes["deployment.environment.name"] == "test"
    assert span.resource_attributes["telemetry.distro.name"] == "otel-resilience"
    assert span.resource_attributes["service.instance.id"]

    histogram = otlp_receiver.wait_for_metric("app.request.duration")
    assert histogram.protocol == protocol
    assert (histogram.unit, histogram.description) == ("s", "Request time.")
    (point,) = histogram.data_points
    assert point.explicit_bounds == list(SECONDS_BUCKETS)
    assert point.count == 1
    assert point.bucket_counts[SECONDS_BUCKETS.index(0.05)] == 1  # 0.042 s lands in (0.025, 0.05]

    counter = otlp_receiver.wait_for_metric("app.orders")
    assert counter.data_points[0].value == 3

    (record,) = otlp_receiver.wait_for_logs(lambda r: r.body == "order 17 placed")
    assert record.protocol == protocol
    assert record.severity_text == "WARN"
    assert record.trace_id == trace_id
    assert record.span_id == span.span_id


def test_each_signal_can_choose_its_own_protocol(otlp_receiver: OtlpReceiver) -> None:
    run_instrumented(
        APP,
        env={
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": otlp_receiver.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": otlp_receiver.http_endpoint + "/v1/metrics",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
            "OTEL_LOGS_EXPORTER": "none",
        },
    ).check()
    assert otlp_receiver.wait_for_spans()[0].protocol == "grpc"
    assert otlp_receiver.wait_for_metric("app.orders").protocol == "http/protobuf"
    assert otlp_receiver.logs() == []


def test_console_exporter_prints_spans() -> None:
    run = run_instrumented(APP, env={"OTEL_TRACES_EXPORTER": "console"}).check()
    assert '"name": "checkout"' in run.stdout


def test_sdk_disabled_installs_nothing() -> None:
    run = run_instrumented(APP, env={"OTEL_SDK_DISABLED": "true"}).check()
    assert "configured False" in run.stdout


SERVING_APP = (
    APP
    + """
import sys
print("ready", flush=True)
sys.stdin.readline()
"""
)


def _scrape_until(prometheus: PrometheusServer, promql: str) -> list[dict[str, Any]]:
    return prometheus.wait_for_query(promql, timeout=60)


def test_prometheus_scrapes_the_embedded_default_endpoint(
    start_prometheus: Callable[[Sequence[str]], PrometheusServer],
) -> None:
    port = free_tcp_port()
    with running_instrumented(
        SERVING_APP,
        env={"OTEL_EXPORTER_PROMETHEUS_PORT": str(port), "OTEL_SERVICE_NAME": "checkout-service"},
        eof_grace=5,
    ) as app:
        app.wait_for_output("ready")
        prometheus = start_prometheus([f"127.0.0.1:{port}"])
        (orders,) = _scrape_until(prometheus, 'app_orders_total{route="/checkout"}')
        assert sample_value(orders) == 3
        (bucket,) = _scrape_until(
            prometheus, 'app_request_duration_seconds_bucket{route="/checkout", le="0.05"}'
        )
        assert sample_value(bucket) == 1
        (info,) = _scrape_until(prometheus, "target_info")
        assert info["metric"]["service_name"] == "checkout-service"
        assert info["metric"]["telemetry_distro_name"] == "otel-resilience"
    assert app.result is not None
    assert app.result.returncode == 0, app.result.stderr


LOGGING_APP = """
import logging, sys
logging.getLogger("app").warning("before any configuration")
logging.basicConfig(level=logging.INFO, format="APP %(levelname)s %(message)s", stream=sys.stdout)
logging.getLogger("app").info("after basicConfig")
"""


def test_the_programs_own_logging_configuration_still_works(otlp_receiver: OtlpReceiver) -> None:
    run = run_instrumented(
        LOGGING_APP, env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint}
    ).check()
    # Python's last-resort handler still prints an unconfigured program's warnings ...
    assert "before any configuration" in run.stderr
    # ... and basicConfig() still configures logging although our handler is on the root.
    assert run.stdout.splitlines() == ["APP INFO after basicConfig"]
    assert run.stderr.count("before any configuration") == 1
    bodies = {record.body for record in otlp_receiver.wait_for_logs(count=2)}
    assert bodies == {"before any configuration", "after basicConfig"}
