"""Tests of the test-support helpers against the real Prometheus and the real launcher.

If these fail, every end-to-end test built on the helpers is suspect, so they are kept
separate and cheap (one shared Prometheus for the query tests).
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_server import (
    PrometheusError,
    PrometheusQueryError,
    PrometheusServer,
    free_tcp_port,
    sample_value,
)

GAUGE = "support_fixture_test_gauge"


class Endpoint:
    """An in-process /metrics endpoint with one gauge, served by prometheus_client."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.gauge = Gauge(GAUGE, "Gauge scraped by the helper tests.", registry=self.registry)
        self.gauge.set(42.5)
        # Port 0: the kernel picks, so there is no race with other tests for the port.
        self.server, self.thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.port: int = self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint()
    try:
        yield ep
    finally:
        ep.close()


@pytest.fixture(scope="module")
def prometheus(endpoint: Endpoint) -> Iterator[PrometheusServer]:
    # No skip when it is missing: `make test` installs it, and a missing component must fail.
    assert shutil.which("prometheus"), "prometheus is not installed: run `make test`"
    with PrometheusServer([f"127.0.0.1:{endpoint.port}"]) as prom:
        yield prom


# --------------------------------------------------------------------------- Prometheus


def test_free_tcp_port_is_bindable() -> None:
    port = free_tcp_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_for_query_sees_gauge(prometheus: PrometheusServer, endpoint: Endpoint) -> None:
    result = prometheus.wait_for_query(GAUGE, timeout=30)
    assert [sample_value(s) for s in result] == [42.5]
    assert result[0]["metric"]["job"] == "test"
    assert result[0]["metric"]["instance"] == f"127.0.0.1:{endpoint.port}"


def test_wait_for_query_predicate_sees_update(
    prometheus: PrometheusServer, endpoint: Endpoint
) -> None:
    prometheus.wait_for_query(GAUGE, timeout=30)
    endpoint.gauge.set(7)
    result = prometheus.wait_for_query(
        GAUGE, timeout=15, predicate=lambda r: sample_value(r[0]) == 7
    )
    assert sample_value(result[0]) == 7
    endpoint.gauge.set(42.5)


def test_targets_health_reports_up(prometheus: PrometheusServer, endpoint: Endpoint) -> None:
    prometheus.wait_for_query("up{job='test'} == 1", timeout=30)
    (target,) = prometheus.targets_health()
    assert target["health"] == "up"
    assert target["scrapeUrl"] == f"http://127.0.0.1:{endpoint.port}/metrics"


def test_bad_query_raises_prometheus_message(prometheus: PrometheusServer) -> None:
    with pytest.raises(PrometheusQueryError, match="parse error") as info:
        prometheus.query("sum(rate(")
    assert info.value.error_type == "bad_data"
    assert info.value.http_status == 400
    assert "sum(rate(" in str(info.value)
    # A syntax error can never heal, so waiting must not burn the whole timeout.
    with pytest.raises(PrometheusQueryError):
        prometheus.wait_for_query("sum(rate(", timeout=60)


def test_wait_for_query_timeout_explains(prometheus: PrometheusServer, endpoint: Endpoint) -> None:
    prometheus.wait_for_query(GAUGE, timeout=30)  # targets are scraped by now
    with pytest.raises(AssertionError) as info:
        prometheus.wait_for_query("no_such_metric_anywhere", timeout=1.0)
    message = str(info.value)
    assert "no_such_metric_anywhere" in message
    assert "Last result: []" in message
    assert f"http://127.0.0.1:{endpoint.port}/metrics: health=up" in message


def test_start_failure_shows_prometheus_log(tmp_path: Path) -> None:
    rules = tmp_path / "broken.rules.yml"
    rules.write_text("groups:\n  - name: x\n    rules:\n      - record: a\n        expr: 'sum('\n")
    server = PrometheusServer([], rule_files=[rules])
    with pytest.raises(
        PrometheusError, match=r"(?s)exited with code 1.*broken\.rules\.yml.*parse error"
    ):
        server.start()
    # Failed start cleans up after itself.
    with pytest.raises(PrometheusError, match="not running"):
        _ = server.url
