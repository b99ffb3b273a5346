"""The metrics helpers: exact values, label sets, the cap, fork, and the text they render.

Values are checked where a user would look: the snapshot and its JSON and the Prometheus
text (parsed with prometheus_client's own parser and compared with what the OpenTelemetry
Prometheus exporter writes for the same instruments). A real Prometheus scraping an
instrumented program, and the OTLP test receiver, are in tests/launcher/test_metrics.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from typing import Any

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from otel_resilience import metrics
from otel_resilience.metrics import MetricRegistry
from otel_resilience.metrics._prometheus_text import render_registries, render_target_info


def _only_scope(registry: MetricRegistry) -> dict[str, dict[str, Any]]:
    (scope,) = metrics.snapshot([registry])["scopes"]
    return {metric["name"]: metric for metric in scope["metrics"]}


def _values(metric: dict[str, Any]) -> dict[tuple[tuple[str, Any], ...], Any]:
    return {
        tuple(sorted(point["attributes"].items())): point.get("value", point.get("count"))
        for point in metric["points"]
    }


# --- values and label sets ---------------------------------------------------------------


def test_counter_mapping_and_bound_updates_land_in_one_series() -> None:
    registry = MetricRegistry("test.app", cardinality_limit=100)
    orders = registry.counter("app.orders", unit="{order}", description="Orders placed")
    orders.add(1, {"channel": "web", "region": "eu"})
    orders.add(2, {"region": "eu", "channel": "web"})  # another spelling of the same set
    orders.labels(channel="web", region="eu").inc()
    orders.add(5, {"channel": "shop", "region": "eu"})
    orders.add(7)

    metric = _only_scope(registry)["app.orders"]
    assert (metric["type"], metric["unit"], metric["description"]) == (
        "counter",
        "{order}",
        "Orders placed",
    )
    assert _values(metric) == {
        (("channel", "web"), ("region", "eu")): 4,
        (("channel", "shop"), ("region", "eu")): 5,
        (): 7,
    }


def test_gauge_sets_adds_and_subtracts() -> None:
    registry = MetricRegistry("test.app")
    depth = registry.gauge("app.queue.depth", unit="{job}")
    depth.set(10, {"queue": "mail"})
    depth.add(5, {"queue": "mail"})
    depth.dec(3, {"queue": "mail"})
    depth.labels(queue="sms").set(-2)
    assert _values(_only_scope(registry)["app.queue.depth"]) == {
        (("queue", "mail"),): 12,
        (("queue", "sms"),): -2,
    }


def test_histogram_buckets_are_inclusive_of_their_upper_bound() -> None:
    registry = MetricRegistry("test.app")
    sizes = registry.histogram("app.payload.size", unit="By", buckets=[100, 1000])
    for value in (50, 100, 101, 1000, 5000):
        sizes.record(value)
    (point,) = _only_scope(registry)["app.payload.size"]["points"]
    assert point["explicit_bounds"] == [100.0, 1000.0]
    assert point["bucket_counts"] == [2, 2, 1]
    assert (point["count"], point["sum"], point["min"], point["max"]) == (5, 6251, 50, 5000)


def test_seconds_histograms_get_the_semantic_convention_buckets() -> None:
    registry = MetricRegistry("test.app")
    from otel_resilience.sdk._views import SECONDS_BUCKETS

    assert registry.timer("app.duration").buckets == SECONDS_BUCKETS
    assert registry.histogram("app.wait", unit="s").buckets == SECONDS_BUCKETS
    assert registry.histogram("app.size", unit="By").buckets[:3] == (0.0, 5.0, 10.0)


def test_timer_times_blocks_and_functions_including_failures() -> None:
    registry = MetricRegistry("test.app")
    checkout = registry.timer("app.checkout.duration", labels=("channel",))

    with checkout.time({"channel": "web"}):
        pass
    with pytest.raises(RuntimeError), checkout.labels("web").time():
        raise RuntimeError("payment declined")

    @checkout
    def sync_work() -> str:
        return "done"

    @checkout.labels("shop")
    async def async_work() -> str:
        await asyncio.sleep(0)
        return "done"

    assert sync_work() == "done"
    assert asyncio.run(async_work()) == "done"
    counts = _values(_only_scope(registry)["app.checkout.duration"])
    assert counts == {(("channel", "web"),): 2, (): 1, (("channel", "shop"),): 1}


def test_declared_labels_are_checked_where_code_binds() -> None:
    registry = MetricRegistry("test.app")
    requests = registry.counter("app.requests", labels=("route", "code"))
    assert requests.labels("/x", "200") is requests.labels(code="200", route="/x")
    with pytest.raises(ValueError, match="expected the labels route, code"):
        requests.labels(route="/x")
    with pytest.raises(ValueError, match="expected 2 label values"):
        requests.labels("/x")


@pytest.mark.parametrize("name", ["", "1st", "app orders", "app.orders!", "x" * 256])
def test_invalid_names_fail_at_creation_with_a_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match="invalid metric name"):
        MetricRegistry("test.app").counter(name)


def test_same_name_returns_the_instrument_and_a_different_kind_is_refused() -> None:
    registry = MetricRegistry("test.app")
    jobs = registry.counter("app.jobs", unit="{job}")
    assert registry.counter("app.jobs", unit="{job}") is jobs
    with pytest.raises(ValueError, match="already exists"):
        registry.gauge("app.jobs", unit="{job}")
    with pytest.raises(ValueError, match="already exists"):
        registry.counter("app.jobs", unit="s")
    with pytest.raises(ValueError, match="strictly increasing"):
        registry.histogram("app.size", buckets=[10, 5])


def test_negative_counter_updates_are_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = MetricRegistry("test.app")
    jobs = registry.counter("app.jobs")
    jobs.add(3)
    with caplog.at_level(logging.WARNING, "otel_resilience.metrics"):
        jobs.add(-1)
    assert _values(_only_scope(registry)["app.jobs"]) == {(): 3}
    assert "only goes up" in caplog.text


def test_the_cardinality_cap_sends_new_label_sets_to_one_overflow_series(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = MetricRegistry("test.app", cardinality_limit=10)
    logins = registry.counter("app.logins")
    with caplog.at_level(logging.WARNING, "otel_resilience.metrics"):
        for user in range(50):
            logins.add(1, {"user": str(user)})
    values = _values(_only_scope(registry)["app.logins"])
    assert len(values) == 10
    assert values[(("otel.metric.overflow", True),)] == 41
    assert sum(values.values()) == 50, "nothing is lost"
    assert caplog.text.count("cardinality limit") == 1


def test_unhashable_attribute_values_are_exported_as_sequences() -> None:
    registry = MetricRegistry("test.app")
    hits = registry.counter("app.hits")
    hits.add(1, {"tags": ["a", "b"]})
    hits.add(1, {"tags": ["a", "b"]})
    assert _values(_only_scope(registry)["app.hits"]) == {(("tags", ("a", "b")),): 2}


# --- exactness under threads and fork -------------------------------------------------------


def test_counts_are_exact_under_eight_threads() -> None:
    registry = MetricRegistry("test.app")
    hits = registry.counter("app.hits")
    latency = registry.histogram("app.latency", unit="s")
    bound = hits.labels(route="/bound")
    per_thread = 20_000
    barrier = threading.Barrier(8)

    def hammer() -> None:
        barrier.wait()
        for _ in range(per_thread):
            hits.add(1, {"route": "/mapped"})
            bound.inc()
            latency.record(0.01)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _values(_only_scope(registry)["app.hits"]) == {
        (("route", "/mapped"),): 8 * per_thread,
        (("route", "/bound"),): 8 * per_thread,
    }
    (point,) = _only_scope(registry)["app.latency"]["points"]
    assert point["count"] == 8 * per_thread
    assert point["sum"] == pytest.approx(8 * per_thread * 0.01)


def test_a_forked_child_counts_from_zero_and_the_parent_keeps_its_counts() -> None:
    registry = MetricRegistry("test.app")
    jobs = registry.counter("app.jobs")
    bound = jobs.labels(queue="mail")
    jobs.add(5)
    bound.inc(3)

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it sees, after counting one job of its own
        try:
            bound.inc()
            os.write(write_end, json.dumps(metrics.snapshot([registry])).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child = json.loads(pipe.read())
    os.waitpid(pid, 0)

    child_values = {
        tuple(sorted(point["attributes"].items())): point["value"]
        for point in child["scopes"][0]["metrics"][0]["points"]
    }
    assert child_values == {(): 0, (("queue", "mail"),): 1}
    assert _values(_only_scope(registry)["app.jobs"]) == {(): 5, (("queue", "mail"),): 3}


# --- the JSON snapshot ---------------------------------------------------------------------


def test_the_json_snapshot_follows_the_documented_schema() -> None:
    registry = MetricRegistry("test.json", version="1.2")
    registry.counter("app.orders", unit="{order}").add(2, {"channel": "web"})
    registry.gauge("app.depth").set(3.5)
    registry.timer("app.duration")  # created, never recorded: no points, min/max absent
    registry.histogram("app.size", unit="By", buckets=[10]).record(4)
    registry.observable_gauge("app.temperature", lambda: [(21.5, {"room": "lab"})], unit="Cel")

    document = json.loads(metrics.snapshot_json([registry]))
    (scope,) = document["scopes"]
    assert (scope["name"], scope["version"]) == ("test.json", "1.2")
    by_name = {metric["name"]: metric for metric in scope["metrics"]}
    assert set(by_name) == {
        "app.orders",
        "app.depth",
        "app.duration",
        "app.size",
        "app.temperature",
    }
    for metric in by_name.values():
        assert set(metric) == {"name", "type", "unit", "description", "points"}
        assert metric["type"] in {"counter", "gauge", "histogram"}
    assert by_name["app.orders"]["points"] == [{"attributes": {"channel": "web"}, "value": 2}]
    assert by_name["app.temperature"]["points"] == [{"attributes": {"room": "lab"}, "value": 21.5}]
    assert by_name["app.duration"]["points"] == []
    (size,) = by_name["app.size"]["points"]
    assert size == {
        "attributes": {},
        "count": 1,
        "sum": 4,
        "min": 4,
        "max": 4,
        "explicit_bounds": [10.0],
        "bucket_counts": [1, 0],
    }


# --- Prometheus ------------------------------------------------------------------------------


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _without_empty_labels(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (name, tuple((key, value) for key, value in labels if value != "")): number
        for (name, labels), number in samples.items()
    }


def test_prometheus_text_matches_what_the_opentelemetry_exporter_writes() -> None:
    """Our renderer and the upstream Prometheus reader agree sample for sample."""
    registry = MetricRegistry("test.compare", version="2.0")
    ours_counter = registry.counter("app.requests", unit="{request}", description="Requests")
    ours_histogram = registry.histogram("app.wait", unit="s", description='Say "why"\\ here')
    ours_gauge = registry.gauge("app.queue.depth", unit="1", description="Depth")

    prometheus_registry = CollectorRegistry()
    reader = PrometheusMetricReader()
    prometheus_registry.register(reader._collector)
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("test.compare", "2.0")
    sdk_counter = meter.create_counter("app.requests", unit="{request}", description="Requests")
    sdk_histogram = meter.create_histogram(
        "app.wait",
        unit="s",
        description='Say "why"\\ here',
        explicit_bucket_boundaries_advisory=list(ours_histogram.buckets),
    )
    sdk_gauge = meter.create_up_down_counter("app.queue.depth", unit="1", description="Depth")

    attribute_sets: list[dict[str, str | int]] = [
        {"route": "/a", "code": 200},
        {"route": 'odd "quoted"\nroute'},
    ]
    for attributes in attribute_sets:
        ours_counter.add(3, attributes)
        sdk_counter.add(3, attributes)
        for value in (0.003, 0.2, 12.0):
            ours_histogram.record(value, attributes)
            sdk_histogram.record(value, attributes)
        ours_gauge.set(7, attributes)
        sdk_gauge.add(7, attributes)

    from prometheus_client import generate_latest

    theirs = _samples(generate_latest(prometheus_registry).decode())
    ours = _samples(render_registries([registry]))
    assert ours, "the registry renders samples"
    # The exporter back-fills labels a point lacks with "": equal in Prometheus to no label.
    assert _without_empty_labels(ours) == _without_empty_labels(
        {key: value for key, value in theirs.items() if key[0] != "target_info"}
    )
    provider.shutdown()


def test_target_info_written_with_the_registries_matches_the_exporters() -> None:
    """A process whose metrics all live in registries still has ``target_info`` to join on.

    The exporter writes it only in a scrape with SDK data; the endpoint then writes it from
    the same resource, which must come out exactly as the exporter's.
    """
    from opentelemetry.sdk.resources import Resource
    from prometheus_client import generate_latest

    resource = Resource(
        {
            "service.name": "checkout",
            "deployment.environment.name": 'odd "quoted"\nvalue',
            "host.tags": ("a", "b"),
            "process.pid": 4242,
            "9starts.with.digit": "x",
        }
    )
    prometheus_registry = CollectorRegistry()
    reader = PrometheusMetricReader()
    prometheus_registry.register(reader._collector)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    provider.get_meter("test.target_info").create_counter("app.any").add(1)
    theirs = {
        key: value
        for key, value in _samples(generate_latest(prometheus_registry).decode()).items()
        if key[0] == "target_info"
    }
    provider.shutdown()

    ours = _samples(render_target_info(resource.attributes))
    assert len(theirs) == 1
    assert ours == theirs
