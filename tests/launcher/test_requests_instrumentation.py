"""The requests instrumentation in a program run by the real launcher, against a local HTTP server.

The tests in the test process are in tests/integration/test_requests_instrumentation.py.
"""

from __future__ import annotations

from http_test_server import ScriptedHttpServer
from instrumented_run import run_instrumented
from otlp_receiver import OtlpReceiver

APP = """
import requests, sys
for _ in range(3):
    try:
        print(requests.get(sys.argv[1], timeout=5).status_code)
    except requests.exceptions.ConnectionError as error:  # the program's own except clause
        print("rejected:", type(error).__name__)
"""


def test_loaded_by_the_launcher_with_environment_variables_only(
    otlp_receiver: OtlpReceiver, http_server: ScriptedHttpServer
) -> None:
    run = run_instrumented(
        APP,
        args=[http_server.url("/status/503")],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.http_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",  # the exporter itself uses requests
            "OTEL_RESILIENCE_RETRY_MAX_ATTEMPTS": "0",
            "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "2",
        },
    ).check()
    assert run.stdout.splitlines() == ["503", "503", "rejected: RequestsCircuitOpenError"]
    spans = otlp_receiver.wait_for_spans(count=3)
    assert {s.name for s in spans} == {"GET"}  # the exporter's own POSTs are not traced
    assert len(http_server.received) == 2  # the third request was rejected by the breaker


def test_with_the_upstream_instrumentor_installed_there_is_one_span_per_request(
    otlp_receiver: OtlpReceiver, http_server: ScriptedHttpServer
) -> None:
    # opentelemetry-instrumentation-requests is installed in this environment (a test
    # dependency), so the launcher finds both entry points named "requests".
    from importlib.metadata import entry_points

    values = {e.value for e in entry_points(group="opentelemetry_instrumentor", name="requests")}
    assert any(v.startswith("opentelemetry.instrumentation.requests") for v in values)
    run_instrumented(
        "import requests, sys\nrequests.get(sys.argv[1], timeout=5)\n",
        args=[http_server.url("/ok")],
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint},
    ).check()
    (span,) = otlp_receiver.wait_for_spans()
    assert span.scope_name == "otel_resilience.instrumentation.requests"
    assert len(otlp_receiver.spans()) == 1
    assert otlp_receiver.wait_for_metric("resilience.circuit_breaker.calls")


def test_resilience_can_be_turned_off_while_telemetry_stays(
    otlp_receiver: OtlpReceiver, http_server: ScriptedHttpServer
) -> None:
    run = run_instrumented(
        APP,
        args=[http_server.url("/status/503")],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint,
            "OTEL_RESILIENCE_DISABLED": "requests",
            "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "1",
        },
    ).check()
    assert run.stdout.splitlines() == ["503", "503", "503"]  # no breaker, no retries
    assert len(http_server.received) == 3
    assert len(otlp_receiver.wait_for_spans(count=3)) == 3


def test_per_endpoint_overrides_from_the_environment(
    otlp_receiver: OtlpReceiver, http_server: ScriptedHttpServer
) -> None:
    run = run_instrumented(
        APP,
        args=[http_server.url("/status/503")],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint,
            "OTEL_RESILIENCE_RETRY_MAX_ATTEMPTS": "0",
            "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "10",
            "OTEL_RESILIENCE_BREAKER_OVERRIDES": '{"127.0.0.1": {"consecutive_failures": 1}}',
        },
    ).check()
    assert run.stdout.splitlines() == [
        "503",
        "rejected: RequestsCircuitOpenError",
        "rejected: RequestsCircuitOpenError",
    ]
    assert len(http_server.received) == 1
