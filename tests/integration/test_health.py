"""Health checks, the status report and the endpoint server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fake_clock import FakeClock
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_resilience import CircuitBreaker
from otel_resilience.health import (
    CheckResult,
    HealthStatus,
    install_health_routes,
)
from otel_resilience.health._checks import HealthChecks
from otel_resilience.health._exports import (
    ExportOutcomes,
    RecordingMetricExporter,
    RecordingSpanExporter,
    record_export_outcomes,
)
from otel_resilience.health._identity import ServiceIdentity
from otel_resilience.health._log_drops import LogDropWatch, current_log_drops
from otel_resilience.health._report import StatusReporter
from otel_resilience.sdk._endpoint_server import (
    EndpointRequest,
    EndpointResponse,
    EndpointServer,
    start_endpoint_server,
)
from otel_resilience.sdk.settings import HealthSettings

# Generous bound on waiting for a background thread to do something it does at once; it
# only matters when the code under test is broken (the test then fails instead of hanging).
SETTLE = 10.0


@pytest.fixture
def server() -> Iterator[EndpointServer]:
    started = start_endpoint_server("127.0.0.1", 0)
    assert started is not None
    yield started
    started.close()


class Health:
    """A server with health routes fed by breakers and checks the test controls."""

    def __init__(self, server: EndpointServer, settings: HealthSettings) -> None:
        self.server = server
        self.breakers: list[CircuitBreaker] = []
        self.checks = HealthChecks()
        self.exports = ExportOutcomes()
        self.drops = 0
        self.metrics: dict[str, Any] = {"resilience.retries": 3}
        self.reporter = StatusReporter(
            settings,
            checks=self.checks,
            breakers=lambda: self.breakers,
            metrics_snapshot=lambda: self.metrics,
            exports=self.exports,
            log_drops=LogDropWatch(lambda: self.drops),
            identity=lambda: ServiceIdentity("checkout", "1.4.2"),
        )
        install_health_routes(server, settings, reporter=self.reporter)

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        return get_json(self.server.url_for(path))


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=SETTLE) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def check_named(document: dict[str, Any], name: str) -> dict[str, Any]:
    found = [check for check in document["checks"] if check["name"] == name]
    assert len(found) == 1, document["checks"]
    result: dict[str, Any] = found[0]
    return result


@pytest.fixture
def health(server: EndpointServer) -> Health:
    return Health(server, HealthSettings(check_timeout=2.0))


def fail(breaker: CircuitBreaker, times: int) -> None:
    def broken() -> None:
        raise ConnectionError("refused")

    for _ in range(times):
        with pytest.raises(ConnectionError):
            breaker.call(broken)


# --- the endpoint server ---------------------------------------------------------------------


def test_routes_answer_get_and_head_and_unknown_paths_get_404(server: EndpointServer) -> None:
    seen: list[EndpointRequest] = []

    def hello(request: EndpointRequest) -> tuple[int, str, bytes]:
        seen.append(request)
        return 200, "text/plain", b"hello\n"

    server.add_route("/hello", hello)
    with urllib.request.urlopen(server.url_for("/hello?x=1"), timeout=SETTLE) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain"
        assert response.read() == b"hello\n"
    assert seen[0].path == "/hello"
    assert seen[0].query == "x=1"
    assert seen[0].headers["accept-encoding"] == "identity"

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=SETTLE)
    connection.request("HEAD", "/hello")
    head = connection.getresponse()
    assert head.status == 200
    assert head.headers["Content-Length"] == "6"
    assert head.read() == b""
    connection.request("GET", "/nowhere")  # same keep-alive connection
    missing = connection.getresponse()
    assert missing.status == 404
    missing.read()
    connection.close()


def test_response_headers_from_a_handler(server: EndpointServer) -> None:
    server.add_route(
        "/zipped", lambda request: EndpointResponse(200, "text/plain", b"x", (("X-Test", "1"),))
    )
    with urllib.request.urlopen(server.url_for("/zipped"), timeout=SETTLE) as response:
        assert response.headers["X-Test"] == "1"


def test_a_raising_handler_gets_500_and_the_server_keeps_serving(
    server: EndpointServer, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: EndpointRequest) -> tuple[int, str, bytes]:
        raise RuntimeError("bug")

    server.add_route("/broken", broken)
    server.add_route("/fine", lambda request: (200, "text/plain", b"fine"))
    with caplog.at_level(logging.DEBUG, logger="otel_resilience.sdk._endpoint_server"):
        for _ in range(3):
            with pytest.raises(urllib.error.HTTPError) as raised:
                urllib.request.urlopen(server.url_for("/broken"), timeout=SETTLE)
            body = raised.value.read()
            assert raised.value.code == 500
            assert body == b"internal error while answering /broken: RuntimeError\n"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # repeats are debug: a probe must not flood the log
    with urllib.request.urlopen(server.url_for("/fine"), timeout=SETTLE) as response:
        assert response.read() == b"fine"


def test_a_taken_port_gives_none_and_one_warning(
    taken_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        assert start_endpoint_server("127.0.0.1", taken_port) is None
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert f"could not listen on 127.0.0.1:{taken_port}" in message
    assert "OTEL_RESILIENCE_HEALTH_PORT" in message


def test_close_releases_the_port_and_is_idempotent() -> None:
    first = start_endpoint_server("127.0.0.1", 0)
    assert first is not None
    port = first.port
    first.close()
    first.close()
    again = start_endpoint_server("127.0.0.1", port)
    assert again is not None
    again.close()


# --- liveness, readiness and breakers ---------------------------------------------------------


def test_healthz_answers_while_the_process_serves(health: Health) -> None:
    with urllib.request.urlopen(health.server.url_for("/healthz"), timeout=SETTLE) as response:
        assert response.status == 200
        assert response.read() == b"ok\n"
        assert response.headers["Cache-Control"] == "no-store"


def test_status_follows_a_breaker_as_it_opens_and_closes(health: Health) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        "http://inventory.internal:8080",
        consecutive_failures=2,
        recovery_timeout=5.0,
        half_open_max_calls=1,
        clock=clock,
    )
    health.breakers.append(breaker)

    code, document = health.get("/status")
    assert code == 200
    assert document["status"] == "ok"
    assert document["service"] == "checkout"
    assert document["version"] == "1.4.2"
    assert document["metrics"] == {"resilience.retries": 3}
    assert document["breakers"][0]["state"] == "closed"

    fail(breaker, 2)
    code, document = health.get("/status")
    assert document["status"] == "degraded"
    entry = document["breakers"][0]
    assert entry["name"] == "http://inventory.internal:8080"
    assert entry["state"] == "open"
    assert entry["failures"] == 2
    assert entry["calls"] == 2
    assert entry["seconds_until_next_trial"] > 0
    detail = check_named(document, "circuit_breakers")["detail"]
    assert "http://inventory.internal:8080 (open)" in detail
    code, ready = health.get("/readyz")
    assert code == 200  # not a critical breaker: degraded, still ready
    assert ready["status"] == "degraded"

    clock.advance(3600)
    assert health.get("/status")[1]["breakers"][0]["state"] == "half_open"
    breaker.call(lambda: None)
    code, document = health.get("/status")
    assert document["status"] == "ok"
    assert document["breakers"][0]["state"] == "closed"


def test_an_open_critical_breaker_makes_readyz_fail(server: EndpointServer) -> None:
    health = Health(server, HealthSettings(critical_breakers=("*.internal",)))
    critical = CircuitBreaker("postgresql://db.internal:5432/orders", consecutive_failures=1)
    other = CircuitBreaker("https://api.example.com:443", consecutive_failures=1)
    health.breakers += [critical, other]

    fail(other, 1)
    code, ready = health.get("/readyz")
    assert (code, ready["status"]) == (200, "degraded")

    fail(critical, 1)
    code, ready = health.get("/readyz")
    assert code == 503
    assert ready["status"] == "down"
    detail = check_named(ready, "circuit_breakers")["detail"]
    assert detail == "critical breaker(s) open: postgresql://db.internal:5432/orders (open)"

    critical.reset()
    assert health.get("/readyz")[0] == 200


def test_a_forced_open_breaker_has_no_next_trial_and_the_json_stays_strict(
    health: Health,
) -> None:
    breaker = CircuitBreaker("maintenance")
    breaker.force_open()
    health.breakers.append(breaker)
    health.metrics = {"max": float("inf"), "nested": [float("nan"), 1.5]}
    with urllib.request.urlopen(health.server.url_for("/status"), timeout=SETTLE) as response:
        text = response.read().decode()

    def reject(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    document = json.loads(text, parse_constant=reject)
    assert document["breakers"][0]["state"] == "forced_open"
    assert document["breakers"][0]["seconds_until_next_trial"] is None
    assert document["metrics"] == {"max": None, "nested": [None, 1.5]}


# --- registered checks --------------------------------------------------------------------------


def test_a_check_that_outlives_its_timeout_is_down_and_runs_once(health: Health) -> None:
    release = threading.Event()
    calls: list[int] = []

    def hangs() -> CheckResult:
        calls.append(1)
        release.wait(SETTLE)
        return CheckResult.ok()

    health.checks.register("payments", hangs, timeout=0.2)
    try:
        code, ready = health.get("/readyz")
        assert code == 503
        assert ready["status"] == "down"
        first = check_named(ready, "payments")
        assert first["status"] == "down"
        assert first["detail"] == "timed out after 0.2s"

        code, ready = health.get("/readyz")
        again = check_named(ready, "payments")
        assert again["status"] == "down"
        assert "timed out" in again["detail"]
        assert "still running since an earlier request" in again["detail"]
        assert calls == [1]  # a hung check holds one thread, not one per probe
    finally:
        release.set()


def test_a_non_critical_check_can_only_degrade(health: Health) -> None:
    def broken() -> CheckResult:
        raise RuntimeError("cache unreachable")

    health.checks.register("cache", broken, critical=False)
    code, ready = health.get("/readyz")
    assert code == 200
    assert check_named(ready, "cache") == {
        "name": "cache",
        "status": "degraded",
        "detail": "raised RuntimeError: cache unreachable",
        "duration_seconds": check_named(ready, "cache")["duration_seconds"],
    }


@pytest.mark.parametrize(
    ("returned", "status", "detail"),
    [
        (None, "ok", ""),
        (True, "ok", ""),
        (False, "down", "the check returned False"),
        (HealthStatus.DEGRADED, "degraded", ""),
        (CheckResult.degraded("queue\nbacklog  120"), "degraded", "queue backlog 120"),
        (42, "down", "the check returned int; expected CheckResult, HealthStatus, bool or None"),
    ],
)
def test_what_a_check_returns(health: Health, returned: object, status: str, detail: str) -> None:
    health.checks.register("it", lambda: returned)  # type: ignore[arg-type,return-value]
    entry = check_named(health.get("/status")[1], "it")
    assert (entry["status"], entry["detail"]) == (status, detail)


def test_async_checks_run_and_a_slow_one_is_cancelled(health: Health) -> None:
    cancelled = threading.Event()

    async def quick() -> CheckResult:
        await asyncio.sleep(0)
        return CheckResult.ok("replica lag 0.1s")

    async def stuck() -> bool:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return True

    health.checks.register("replica", quick)
    health.checks.register("broker", stuck, timeout=0.2)
    document = health.get("/status")[1]
    assert document["status"] == "down"
    assert check_named(document, "replica")["status"] == "ok"
    assert check_named(document, "replica")["detail"] == "replica lag 0.1s"
    broker = check_named(document, "broker")
    assert broker["status"] == "down"
    assert "timed out after 0.2s" in broker["detail"]
    assert cancelled.wait(SETTLE)  # the coroutine was cancelled: its thread ends


def test_credentials_in_a_failure_never_reach_the_report(health: Health) -> None:
    def database() -> None:
        raise ConnectionError(
            "cannot connect to postgresql://orders:s3cret@db.internal:5432/orders "
            "(dsn: host=db.internal password=s3cret user=orders)"
        )

    health.checks.register("database", database)
    detail = check_named(health.get("/status")[1], "database")["detail"]
    assert "s3cret" not in detail
    assert detail == (
        "raised ConnectionError: cannot connect to "
        "postgresql://REDACTED:REDACTED@db.internal:5432/orders "
        "(dsn: host=db.internal password=REDACTED user=orders)"
    )


def test_credentials_a_real_client_error_quotes_never_reach_the_report(health: Health) -> None:
    secret = "s3cr3t-XYZ"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    def upstream() -> None:  # urllib3 quotes the path and query in its message
        requests.get(f"http://127.0.0.1:{closed_port}/v1/items?token={secret}", timeout=5)

    def database() -> None:
        raise ConnectionError(
            f"no connection (host=127.0.0.1 sslpassword={secret} user=app) "
            f"after sending Bearer {secret}"
        )

    health.checks.register("upstream", upstream)
    health.checks.register("database", database)
    document = health.get("/status")[1]
    upstream_detail = check_named(document, "upstream")["detail"]
    database_detail = check_named(document, "database")["detail"]
    assert secret not in upstream_detail
    assert "Max retries exceeded with url: /v1/items?token=REDACTED" in upstream_detail
    assert database_detail == (
        "raised ConnectionError: no connection (host=127.0.0.1 sslpassword=REDACTED user=app) "
        "after sending Bearer REDACTED"
    )


def test_registering_again_replaces_and_unregistering_removes(health: Health) -> None:
    health.checks.register("db", lambda: False)
    health.checks.register("db", lambda: True)
    assert health.checks.names() == ["db"]
    assert check_named(health.get("/status")[1], "db")["status"] == "ok"
    assert health.checks.unregister("db")
    assert not health.checks.unregister("db")
    assert [c["name"] for c in health.get("/status")[1]["checks"]] == [
        "circuit_breakers",
        "exporters",
        "log_queue",
    ]


def test_broken_sources_are_reported_not_raised(health: Health) -> None:
    def no_breakers() -> list[CircuitBreaker]:
        raise RuntimeError("registry bug")

    def no_metrics() -> dict[str, Any]:
        raise RuntimeError("snapshot bug")

    reporter = StatusReporter(
        HealthSettings(), checks=HealthChecks(), breakers=no_breakers, metrics_snapshot=no_metrics
    )
    document = reporter.report()
    assert document["metrics"] == {}
    assert document["status"] == "degraded"
    entry = check_named(document, "circuit_breakers")
    assert entry["detail"] == "the built-in check raised RuntimeError: registry bug"


def test_export_results_of_real_sdk_exporters_are_recorded(health: Health) -> None:
    spans = RecordingSpanExporter(InMemorySpanExporter(), health.exports)
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(spans))
    tracer.get_tracer("test").start_span("works").end()
    assert spans.wrapped.get_finished_spans()[0].name == "works"

    console = ConsoleMetricExporter(out=io.StringIO())
    metric_exporter = RecordingMetricExporter(console, health.exports)
    assert metric_exporter._preferred_temporality == console._preferred_temporality
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
    meters = MeterProvider(metric_readers=[reader])
    meters.get_meter("test").create_counter("things").add(1)
    meters.force_flush()

    # As the configurator wraps them: any signal's exporter, typed Any.
    logs_exporter = record_export_outcomes("logs", InMemoryLogRecordExporter(), health.exports)  # type: ignore[no-untyped-call]
    loggers = LoggerProvider()
    loggers.add_log_record_processor(SimpleLogRecordProcessor(logs_exporter))
    loggers.get_logger("test").emit(body="hello")

    entry = check_named(health.get("/status")[1], "exporters")
    assert entry["status"] == "ok"
    assert entry["detail"] == "latest exports succeeded: logs, metrics, traces"

    spans.shutdown()  # the in-memory exporter refuses exports from now on
    tracer.get_tracer("test").start_span("lost").end()
    code, ready = health.get("/readyz")
    assert code == 200  # lost telemetry degrades; it does not take the program out
    entry = check_named(ready, "exporters")
    assert entry["status"] == "degraded"
    assert entry["detail"].startswith("traces: the last 1 export(s) failed")
    assert "(InMemorySpanExporter returned FAILURE)" in entry["detail"]
    meters.shutdown()
    loggers.shutdown()
    tracer.shutdown()


def test_log_drops_reach_the_report(health: Health) -> None:
    health.drops = 3
    entry = check_named(health.get("/status")[1], "log_queue")
    assert entry["status"] == "degraded"
    assert isinstance(current_log_drops(), int)
