"""The httpx instrumentation in a program run by the real launcher, against a local HTTP server.

The tests in the test process are in tests/integration/test_httpx_instrumentation.py.
"""

from __future__ import annotations

from http_test_server import ScriptedHttpServer
from instrumented_run import run_instrumented
from otlp_receiver import OtlpReceiver

APP = """
import asyncio, httpx, sys

async def main():
    async with httpx.AsyncClient(timeout=5) as client:
        print((await client.get(sys.argv[1])).status_code)

print(httpx.get(sys.argv[1], timeout=5).status_code)
asyncio.run(main())
try:
    print(httpx.get(sys.argv[1], timeout=5).status_code)
except httpx.TransportError as error:  # the program's own except clause
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
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",  # the exporter's own HTTP requests
            "OTEL_RESILIENCE_RETRY_MAX_ATTEMPTS": "0",
            "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "2",
        },
    ).check()
    assert run.stdout.splitlines() == ["503", "503", "rejected: HTTPXCircuitOpenError"]
    spans = otlp_receiver.wait_for_spans(count=3)
    assert {s.name for s in spans} == {"GET"}  # the exporter's own POSTs are not traced
    assert {s.scope_name for s in spans} == {"otel_resilience.instrumentation.httpx"}
    assert len(http_server.received) == 2  # the third request was rejected by the breaker


def test_with_the_upstream_instrumentor_installed_there_is_one_span_per_request(
    otlp_receiver: OtlpReceiver, http_server: ScriptedHttpServer
) -> None:
    # opentelemetry-instrumentation-httpx is installed in this environment (a test
    # dependency), so the launcher finds both entry points named "httpx".
    from importlib.metadata import entry_points

    values = {e.value for e in entry_points(group="opentelemetry_instrumentor", name="httpx")}
    assert any(v.startswith("opentelemetry.instrumentation.httpx") for v in values)
    run_instrumented(
        "import httpx, sys\nhttpx.get(sys.argv[1], timeout=5)\n",
        args=[http_server.url("/ok")],
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint},
    ).check()
    (span,) = otlp_receiver.wait_for_spans()
    assert span.scope_name == "otel_resilience.instrumentation.httpx"
    assert len(otlp_receiver.spans()) == 1
    assert len(http_server.received) == 1
    assert otlp_receiver.wait_for_metric("resilience.circuit_breaker.calls")


def test_resilience_can_be_turned_off_while_telemetry_stays(
    otlp_receiver: OtlpReceiver, http_server: ScriptedHttpServer
) -> None:
    run = run_instrumented(
        APP,
        args=[http_server.url("/status/503")],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint,
            "OTEL_RESILIENCE_DISABLED": "httpx",
            "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "1",
        },
    ).check()
    assert run.stdout.splitlines() == ["503", "503", "503"]  # no breaker, no retries
    assert len(http_server.received) == 3
    assert len(otlp_receiver.wait_for_spans(count=3)) == 3
