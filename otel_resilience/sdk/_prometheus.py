"""The Prometheus pull endpoint, started so that a taken port never aborts the set-up.

A port is often taken for ordinary reasons: a second copy of the program, or a child
process that the launcher instruments again with the same environment. Upstream's
auto-configured reader raises in that case and takes tracing and logging down with it;
here it costs one warning and this process simply serves no metrics on that port.

``/metrics`` answers with two parts: the SDK's instruments (any instrument the program or
a library creates through the OpenTelemetry API) rendered by the upstream Prometheus
reader, and the metric registries
(:mod:`otel_resilience.metrics`, the breakers' instruments, the instrumentations' duration
histograms) rendered directly from their series, which is what keeps a scrape of thousands
of series in milliseconds. ``target_info`` (the resource, which dashboards join on) comes
with the first part when the SDK has data, and is written with the second otherwise. The
server is shared with the health and status routes.
"""

from __future__ import annotations

import functools
import gzip
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from otel_resilience.metrics._prometheus_text import (
    CONTENT_TYPE,
    TARGET_INFO_TYPE_LINE,
    render_registries,
    render_target_info,
)
from otel_resilience.metrics._registry import all_registries
from otel_resilience.sdk._endpoint_server import (
    EndpointRequest,
    EndpointResponse,
    EndpointServer,
    start_endpoint_server,
)

__all__ = ["PrometheusEndpoint", "metrics_response", "start_prometheus_endpoint"]

_TARGET_INFO_TYPE_LINE = TARGET_INFO_TYPE_LINE.encode()


@dataclass(frozen=True, slots=True)
class PrometheusEndpoint:
    """A running endpoint: the metric reader to register and where it is served."""

    reader: Any
    url: str
    server: EndpointServer

    def close(self) -> None:
        """Stop serving; the reader is shut down with its meter provider."""
        self.server.close()


def metrics_response(
    request: EndpointRequest, resource_attributes: Mapping[str, Any] | None = None
) -> EndpointResponse:
    """The text exposition of the SDK's instruments and of every metric registry, with
    ``target_info`` from ``resource_attributes`` when the SDK's part has none."""
    from prometheus_client import REGISTRY, generate_latest

    sdk_part = generate_latest(REGISTRY)
    registries_part = render_registries(all_registries())
    if resource_attributes is not None and _TARGET_INFO_TYPE_LINE not in sdk_part:
        registries_part = render_target_info(resource_attributes) + registries_part
    body = sdk_part + registries_part.encode()
    if "gzip" in request.headers.get("accept-encoding", ""):
        return EndpointResponse(
            200, CONTENT_TYPE, gzip.compress(body, compresslevel=1), (("Content-Encoding", "gzip"),)
        )
    return EndpointResponse(200, CONTENT_TYPE, body)


def start_prometheus_endpoint(
    host: str, port: int, resource_attributes: Mapping[str, Any] | None = None
) -> PrometheusEndpoint | None:
    """Serve metrics on ``host:port`` (port 0 picks a free one); ``None`` if it cannot.

    ``resource_attributes`` (the meter provider's resource) make ``target_info``.
    """
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    server = start_endpoint_server(
        host,
        port,
        purpose="Prometheus endpoint",
        port_variable="OTEL_EXPORTER_PROMETHEUS_PORT",
    )
    if server is None:
        return None
    server.add_route(
        "/metrics", functools.partial(metrics_response, resource_attributes=resource_attributes)
    )
    return PrometheusEndpoint(
        reader=PrometheusMetricReader(), url=server.url_for("/metrics"), server=server
    )
