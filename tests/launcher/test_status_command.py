"""``python -m otel_resilience status``, run as a real subprocess against a real server."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from otel_resilience import CircuitBreaker
from otel_resilience.health import CheckResult, install_health_routes
from otel_resilience.health._checks import HealthChecks
from otel_resilience.health._exports import ExportOutcomes
from otel_resilience.health._identity import ServiceIdentity
from otel_resilience.health._log_drops import LogDropWatch
from otel_resilience.health._report import StatusReporter
from otel_resilience.sdk._endpoint_server import EndpointServer, start_endpoint_server
from otel_resilience.sdk.settings import HealthSettings


class Service:
    """A server whose report the test controls: its breakers and its checks."""

    def __init__(self, server: EndpointServer) -> None:
        self.server = server
        self.breakers: list[CircuitBreaker] = []
        self.checks = HealthChecks()
        reporter = StatusReporter(
            HealthSettings(critical_breakers=("db.internal",)),
            checks=self.checks,
            breakers=lambda: self.breakers,
            metrics_snapshot=dict,
            exports=ExportOutcomes(),
            log_drops=LogDropWatch(lambda: 0),
            identity=lambda: ServiceIdentity("checkout", "1.4.2"),
            uptime=lambda: 3725.0,
        )
        install_health_routes(server, reporter.settings, reporter=reporter)

    @property
    def status_url(self) -> str:
        return self.server.url_for("/status")


@pytest.fixture
def service() -> Iterator[Service]:
    server = start_endpoint_server("127.0.0.1", 0)
    assert server is not None
    yield Service(server)
    server.close()


def status_command(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otel_resilience", "status", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def trip(breaker: CircuitBreaker) -> None:
    def refused() -> None:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        breaker.call(refused)


def test_ok_prints_the_table_and_exits_0(service: Service) -> None:
    service.breakers.append(CircuitBreaker("https://api.example.com:443"))
    service.checks.register("database", lambda: CheckResult.ok("SELECT 1 answered"))
    result = status_command(service.status_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["service  checkout 1.4.2", "status   OK", "uptime   1h 02m 05s"]
    assert lines[4].split() == ["BREAKER", "STATE", "FAILURE", "RATE", "CALLS", "NEXT", "TRIAL"]
    assert lines[5].split() == ["https://api.example.com:443", "closed", "0.0%", "0", "-"]
    database = next(line for line in lines if line.startswith("database"))
    assert database.split(None, 2) == ["database", "ok", "SELECT 1 answered"]


def test_an_open_breaker_is_degraded_and_exits_1(service: Service) -> None:
    breaker = CircuitBreaker(
        "https://api.example.com:443", consecutive_failures=1, recovery_timeout=60
    )
    service.breakers.append(breaker)
    trip(breaker)
    result = status_command(service.status_url)
    assert result.returncode == 1, result.stderr
    assert "status   DEGRADED" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith("https://"))
    assert row.split()[:4] == ["https://api.example.com:443", "open", "0.0%", "1"]
    assert row.split()[4] == "in"  # "in 59.9s": when the next trial call is admitted
    assert "1 of 1 breaker(s) open: https://api.example.com:443 (open)" in result.stdout


def test_a_critical_breaker_or_a_timed_out_check_is_down_and_exits_2(service: Service) -> None:
    database = CircuitBreaker("postgresql://db.internal:5432/orders", consecutive_failures=1)
    service.breakers.append(database)
    trip(database)
    result = status_command(service.status_url)
    assert result.returncode == 2, result.stderr
    assert "status   DOWN" in result.stdout
    assert "critical breaker(s) open: postgresql://db.internal:5432/orders" in result.stdout

    database.reset()
    never = threading.Event()
    service.checks.register("payments", lambda: never.wait(30), timeout=0.2)
    try:
        result = status_command(service.status_url)
        assert result.returncode == 2, result.stderr
        payments = next(line for line in result.stdout.splitlines() if line.startswith("payments"))
        assert payments.split(None, 2) == ["payments", "down", "timed out after 0.2s"]
    finally:
        never.set()


def test_an_unreachable_port_exits_3() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Closed again: nothing listens there, so the connection is refused.
    result = status_command(f"http://127.0.0.1:{port}/status", "--timeout", "5")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.startswith(f"status unknown: cannot reach http://127.0.0.1:{port}/status")


def test_an_answer_that_is_not_a_report_exits_3(service: Service) -> None:
    service.server.add_route("/plain", lambda request: (200, "text/plain", b"hello"))
    result = status_command(service.server.url_for("/plain"))
    assert result.returncode == 3
    assert "did not answer with JSON" in result.stderr
    result = status_command(service.server.url_for("/missing"))
    assert result.returncode == 3
    assert "answered HTTP 404" in result.stderr or "did not answer" in result.stderr


def test_readyz_503_still_carries_the_verdict(service: Service) -> None:
    service.checks.register("payments", lambda: False)
    result = status_command(service.server.url_for("/readyz"))
    assert result.returncode == 2
    assert "status   DOWN" in result.stdout


def test_help_documents_the_exit_codes_and_usage_errors_exit_64() -> None:
    result = status_command("--help")
    assert result.returncode == 0
    for line in ("0   the report says ok", "1   the report says degraded", "2   the report says"):
        assert line in result.stdout
    assert "3   no report" in result.stdout
    assert "http://localhost:9464/status" in result.stdout
    assert status_command("ftp://127.0.0.1/status").returncode == 64
    assert status_command("--timeout", "0").returncode == 64
