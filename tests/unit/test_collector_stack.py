"""The local stack in collector/: what a user checks before ``docker compose up``.

No Docker engine runs in the tests, so they read the files the way the tools would: the
collector config as the collector wires it (pipelines, component ids, ports) and the Grafana
data sources against the services they point at. The checks that run a tool (the compose
specification, ``promtool``) are in tests/launcher/test_collector_stack.py.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from collector_files import load

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR = ROOT / "collector"
COMPOSE = COLLECTOR / "compose.yaml"
OTELCOL = COLLECTOR / "otelcol.yaml"
PROMETHEUS_CONFIG = COLLECTOR / "prometheus" / "prometheus.yml"
DATASOURCES = COLLECTOR / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
TEMPO = COLLECTOR / "tempo" / "tempo.yaml"
LOKI = COLLECTOR / "loki" / "loki.yaml"

SERVICES = {"otel-collector", "prometheus", "grafana", "tempo", "loki"}
DEPRECATED_EXPORTERS = {"otlp", "otlphttp", "logging"}
"""Renamed to otlp_grpc / otlp_http in collector v0.144; `logging` is gone (use `debug`)."""


def port_of(endpoint: str) -> int:
    """The port of ``host:port`` or of a URL."""
    if "://" in endpoint:
        port = urlsplit(endpoint).port
        assert port is not None, f"{endpoint} names no port"
        return port
    return int(endpoint.rsplit(":", 1)[1])


def host_of(endpoint: str) -> str:
    if "://" in endpoint:
        host = urlsplit(endpoint).hostname
        assert host is not None, endpoint
        return host
    return endpoint.rsplit(":", 1)[0]


def component_type(component_id: str) -> str:
    """``otlp_grpc/tempo`` -> ``otlp_grpc``: the collector's ``type[/name]`` ids."""
    return component_id.split("/", 1)[0]


def bind_mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of a compose service's ``./`` bind mounts."""
    mounts: dict[str, Path] = {}
    for volume in load(COMPOSE)["services"][service].get("volumes", []):
        assert isinstance(volume, str), f"{service}: use the short volume syntax: {volume!r}"
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = (COLLECTOR / source).resolve()
    return mounts


def container_port(service: str, published: int) -> int:
    """The container port that the host's 127.0.0.1:``published`` reaches."""
    for entry in load(COMPOSE)["services"][service].get("ports", []):
        _address, host_port, inside = str(entry).split(":")
        if int(host_port) == published:
            return int(inside)
    raise AssertionError(f"{service} publishes no port {published}")


def test_compose_runs_the_stack_from_pinned_images() -> None:
    services = load(COMPOSE)["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        image, _, tag = service["image"].rpartition(":")
        assert image and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: pin a version: {tag}"
    image, _, tag = services["otel-collector"]["image"].rpartition(":")
    assert image == "otel/opentelemetry-collector-contrib"
    # The exporter names otlp_grpc / otlp_http exist from v0.144 on.
    assert tuple(int(part) for part in tag.split(".")) >= (0, 144, 0)


def test_every_file_the_stack_mounts_is_in_the_repository() -> None:
    for service in SERVICES:
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{service} mounts {source} at {target}: it does not exist"


def test_the_collector_reads_the_config_the_compose_file_mounts() -> None:
    collector = load(COMPOSE)["services"]["otel-collector"]
    (argument,) = [arg for arg in collector["command"] if arg.startswith("--config=")]
    config_path = argument.removeprefix("--config=")
    assert bind_mounts("otel-collector")[config_path] == OTELCOL


def test_grafana_gets_the_provisioning_and_the_dashboards() -> None:
    mounts = bind_mounts("grafana")
    assert mounts["/etc/grafana/provisioning"] == COLLECTOR / "grafana" / "provisioning"
    assert mounts["/var/lib/grafana/dashboards"] == COLLECTOR / "grafana" / "dashboards"


def test_ports_are_published_on_the_loopback_interface_only() -> None:
    for name, service in load(COMPOSE)["services"].items():
        for entry in service.get("ports", []):
            assert str(entry).startswith("127.0.0.1:"), f"{name} publishes {entry} to every host"
    # A program on the host sends OTLP to localhost:4317 (gRPC) or localhost:4318 (HTTP).
    assert container_port("otel-collector", 4317) == 4317
    assert container_port("otel-collector", 4318) == 4318


def test_prometheus_can_reach_a_program_on_the_host() -> None:
    prometheus = load(COMPOSE)["services"]["prometheus"]
    assert "host.docker.internal:host-gateway" in prometheus["extra_hosts"]
    targets = {
        target
        for job in load(PROMETHEUS_CONFIG)["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    # The distribution's Prometheus endpoint, on its default port.
    assert "host.docker.internal:9464" in targets


# ------------------------------------------------------------------------------ collector


def test_every_pipeline_starts_with_the_memory_limiter_and_batches() -> None:
    pipelines = load(OTELCOL)["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}
    for name, pipeline in pipelines.items():
        processors = [component_type(p) for p in pipeline["processors"]]
        assert processors[0] == "memory_limiter", f"{name}: memory_limiter must come first"
        assert "batch" in processors, name
        assert "debug" in [component_type(e) for e in pipeline["exporters"]], name


def test_every_component_the_pipelines_use_is_defined_and_every_defined_one_is_used() -> None:
    config = load(OTELCOL)
    pipelines = config["service"]["pipelines"]
    for kind in ("receivers", "processors", "exporters"):
        used = {component for pipeline in pipelines.values() for component in pipeline[kind]}
        assert used == set(config[kind]), kind
    assert set(config["service"].get("extensions", [])) == set(config.get("extensions", {}))


def test_no_component_uses_a_removed_or_renamed_exporter_name() -> None:
    exporters = {component_type(exporter) for exporter in load(OTELCOL)["exporters"]}
    assert not exporters & DEPRECATED_EXPORTERS, exporters & DEPRECATED_EXPORTERS


def test_otlp_is_received_on_4317_and_4318_from_other_containers() -> None:
    protocols = load(OTELCOL)["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"


def exporters_of(signal: str) -> dict[str, Any]:
    config = load(OTELCOL)
    return {
        component_type(exporter): config["exporters"][exporter]
        for exporter in config["service"]["pipelines"][signal]["exporters"]
    }


def test_traces_go_to_tempo_over_otlp_grpc() -> None:
    exporter = exporters_of("traces")["otlp_grpc"]
    tempo_grpc = load(TEMPO)["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]
    assert host_of(exporter["endpoint"]) == "tempo"
    assert port_of(exporter["endpoint"]) == port_of(tempo_grpc["endpoint"])
    # Tempo 2.7+ listens on localhost unless told otherwise, out of the collector's reach.
    assert host_of(tempo_grpc["endpoint"]) == "0.0.0.0"


def test_logs_go_to_lokis_otlp_endpoint() -> None:
    exporter = exporters_of("logs")["otlp_http"]
    url = urlsplit(exporter["endpoint"])
    assert (url.hostname, url.port, url.path) == (
        "loki",
        load(LOKI)["server"]["http_listen_port"],
        "/otlp",
    )
    # OTLP ingestion keeps trace_id and span_id as structured metadata.
    assert load(LOKI)["limits_config"]["allow_structured_metadata"] is True


def test_prometheus_scrapes_the_collectors_metrics_keeping_job_and_instance() -> None:
    exporter = exporters_of("metrics")["prometheus"]
    port = port_of(exporter["endpoint"])
    (job,) = [
        job
        for job in load(PROMETHEUS_CONFIG)["scrape_configs"]
        if f"otel-collector:{port}" in job["static_configs"][0]["targets"]
    ]
    assert job["honor_labels"] is True


def test_prometheus_loads_the_alert_rules_but_not_their_tests() -> None:
    mounts = bind_mounts("prometheus")
    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS_CONFIG
    loaded: set[Path] = set()
    for pattern in load(PROMETHEUS_CONFIG)["rule_files"]:
        directory = str(PurePosixPath(pattern).parent)
        assert directory in mounts, f"rule_files {pattern}: {directory} is not mounted"
        loaded |= set(mounts[directory].glob(PurePosixPath(pattern).name))
    rules = set((COLLECTOR / "prometheus" / "rules").glob("*.rules.yaml"))
    assert rules
    assert loaded == rules
    assert not any(path.name.endswith(".test.yaml") for path in loaded)


# ------------------------------------------------------------------------------ grafana


def datasources() -> dict[str, Any]:
    return {source["uid"]: source for source in load(DATASOURCES)["datasources"]}


def test_data_sources_have_fixed_uids_the_dashboards_can_use() -> None:
    sources = datasources()
    assert set(sources) == {"prometheus", "tempo", "loki"}
    assert {uid: source["type"] for uid, source in sources.items()} == {
        "prometheus": "prometheus",
        "tempo": "tempo",
        "loki": "loki",
    }
    assert [uid for uid, source in sources.items() if source.get("isDefault")] == ["prometheus"]


def test_data_sources_point_at_the_compose_services() -> None:
    listening = {
        "prometheus": 9090,
        "tempo": load(TEMPO)["server"]["http_listen_port"],
        "loki": load(LOKI)["server"]["http_listen_port"],
    }
    services = load(COMPOSE)["services"]
    for uid, source in datasources().items():
        url = urlsplit(source["url"])
        assert url.hostname in services, f"{uid}: {source['url']} is not a compose service"
        assert (url.hostname, url.port) == (uid, listening[uid])


def test_traces_logs_and_metrics_link_to_each_other() -> None:
    sources = datasources()
    tempo, loki, prometheus = sources["tempo"], sources["loki"], sources["prometheus"]
    assert tempo["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert tempo["jsonData"]["tracesToMetrics"]["datasourceUid"] == "prometheus"
    (trace_link,) = loki["jsonData"]["derivedFields"]
    assert (trace_link["datasourceUid"], trace_link["matcherRegex"]) == ("tempo", "trace_id")
    (exemplars,) = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert exemplars["datasourceUid"] == "tempo"


def test_link_templates_survive_grafanas_environment_expansion() -> None:
    # Grafana replaces $NAME and ${NAME} in provisioning files with environment variables;
    # a template variable such as ${__trace.traceId} must be written $${...}.
    values: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, str):
            values.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(load(DATASOURCES))
    unescaped = [value for value in values if re.search(r"(?<!\$)\$(?!\$)\{?\w", value)]
    assert not unescaped, unescaped
    assert any("$${__trace.traceId}" in value for value in values)
