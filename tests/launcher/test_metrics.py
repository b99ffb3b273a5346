"""The metrics helpers' values leave an instrumented program: to a real Prometheus and over OTLP.

The values themselves, the snapshot and the Prometheus text are in tests/unit/test_metrics.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from instrumented_run import run_instrumented, running_instrumented
from otlp_receiver import OtlpReceiver
from prometheus_server import PrometheusServer, free_tcp_port, sample_value

SCRAPED_APP = """
import sys
from otel_resilience import metrics

orders = metrics.counter("app.orders", unit="{order}", description="Orders placed")
web = orders.labels(channel="web")
for _ in range(41):
    web.inc()
orders.add(1, {"channel": "shop"})
with metrics.timer("app.checkout.duration").time({"channel": "web"}):
    pass
metrics.gauge("app.queue.depth", unit="{job}").set(12)
print("ready", flush=True)
sys.stdin.readline()
"""


def test_a_real_prometheus_scrapes_the_values(
    start_prometheus: Callable[[Sequence[str]], PrometheusServer],
) -> None:
    port = free_tcp_port()
    with running_instrumented(
        SCRAPED_APP, env={"OTEL_EXPORTER_PROMETHEUS_PORT": str(port)}, eof_grace=5
    ) as app:
        app.wait_for_output("ready")
        prometheus = start_prometheus([f"127.0.0.1:{port}"])
        (web,) = prometheus.wait_for_query('app_orders_total{channel="web"}')
        assert sample_value(web) == 41
        (shop,) = prometheus.wait_for_query('app_orders_total{channel="shop"}')
        assert sample_value(shop) == 1
        (count,) = prometheus.wait_for_query('app_checkout_duration_seconds_count{channel="web"}')
        assert sample_value(count) == 1
        (depth,) = prometheus.wait_for_query("app_queue_depth")
        assert sample_value(depth) == 12
        assert web["metric"]["otel_scope_name"] == "otel_resilience.metrics"


# --- OTLP --------------------------------------------------------------------------------------


OTLP_APP = """
from otel_resilience import metrics

orders = metrics.counter("app.orders", unit="{order}", description="Orders placed")
orders.add(2, {"channel": "web"})
orders.labels(channel="shop").inc()
latency = metrics.timer("app.checkout.duration", description="Checkout time")
for value in (0.004, 0.3):
    latency.labels(channel="web").record(value)
metrics.gauge("app.queue.depth", unit="{job}").set(12)

# A retry (an SDK counter of the otel_resilience meter) around a breaker (the registry of
# the same scope): both must arrive, in one scope.
from otel_resilience import CircuitBreaker, Retry

breaker = CircuitBreaker("http://inventory:8080")
retry = Retry("http://inventory:8080", max_attempts=2, initial_backoff=0, max_backoff=0)
outcomes = iter([ConnectionError("refused"), None])

def flaky():
    outcome = next(outcomes)
    if outcome is not None:
        raise outcome

retry.call(breaker.call, flaky)
"""


def test_values_reach_the_otlp_receiver_with_names_units_and_descriptions(
    otlp_receiver: OtlpReceiver,
) -> None:
    run = run_instrumented(
        OTLP_APP, env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint}
    ).check()
    assert "temporality" not in run.stderr, "the default OTLP exporter is cumulative"

    orders = otlp_receiver.wait_for_metric("app.orders")
    assert (orders.unit, orders.description, orders.is_monotonic) == (
        "{order}",
        "Orders placed",
        True,
    )
    assert orders.scope_name == "otel_resilience.metrics"
    assert {point.attributes["channel"]: point.value for point in orders.data_points} == {
        "web": 2,
        "shop": 1,
    }
    assert "service.name" in orders.resource_attributes

    latency = otlp_receiver.wait_for_metric("app.checkout.duration")
    (point,) = latency.data_points
    assert (latency.unit, point.count, point.min, point.max) == ("s", 2, 0.004, 0.3)
    assert sum(point.bucket_counts) == 2 and point.explicit_bounds[0] == 0.005

    depth = otlp_receiver.wait_for_metric("app.queue.depth")
    assert [point.value for point in depth.data_points] == [12]

    retries = otlp_receiver.wait_for_metric("resilience.retry.attempts")
    calls = otlp_receiver.wait_for_metric("resilience.circuit_breaker.calls")
    assert retries.scope_name == calls.scope_name == "otel_resilience"
    assert {p.attributes["resilience.call.outcome"]: p.value for p in calls.data_points} == {
        "success": 1,
        "failure": 1,
        "rejected": 0,
        "ignored": 0,
    }
