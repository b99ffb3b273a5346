"""The launcher serves health, status and metrics on one port, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

# Generous bound on waiting for a background thread to do something it does at once; it
# only matters when the code under test is broken (the test then fails instead of hanging).
SETTLE = 10.0


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=SETTLE) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


LAUNCHED_APP = """
import sys
from otel_resilience import CircuitBreaker, metrics

payments = CircuitBreaker("https://payments.internal:443", consecutive_failures=1,
                          recovery_timeout=120)
try:
    payments.call(lambda: (_ for _ in ()).throw(ConnectionError("refused")))
except ConnectionError:
    pass
metrics.counter("app.orders", unit="{order}").add(3, {"channel": "web"})
print("ready", flush=True)
sys.stdin.readline()
"""


def test_the_launcher_serves_health_status_and_metrics_on_one_port() -> None:
    from instrumented_run import running_instrumented
    from prometheus_server import free_tcp_port

    port = free_tcp_port()
    env = {
        "OTEL_SERVICE_NAME": "checkout",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
        "OTEL_RESILIENCE_HEALTH_ENABLED": "true",
        "OTEL_RESILIENCE_HEALTH_CRITICAL_BREAKERS": "payments.internal",
    }
    with running_instrumented(LAUNCHED_APP, env=env, eof_grace=5) as app:
        app.wait_for_output("ready")
        base = f"http://localhost:{port}"
        with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
            assert response.status == 200
        status, readiness = get_json(base + "/readyz")
        assert (status, readiness["status"]) == (503, "down")
        _, report = get_json(base + "/status")
        assert report["service"] == "checkout" and report["status"] == "down"
        (breaker,) = report["breakers"]
        assert (breaker["name"], breaker["state"]) == ("https://payments.internal:443", "open")
        scope_metrics = {
            metric["name"]: metric
            for scope in report["metrics"]["scopes"]
            for metric in scope["metrics"]
        }
        assert scope_metrics["app.orders"]["points"] == [
            {"attributes": {"channel": "web"}, "value": 3}
        ]
        with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
            exposition = response.read().decode()
        assert 'app_orders_total{channel="web"' in exposition
        assert "resilience_circuit_breaker_state{" in exposition
