"""The Prometheus pull endpoint, started so that a taken port never aborts the set-up.

A port is often taken for ordinary reasons: a second copy of the program, or a child
process that the launcher instruments again with the same environment. Upstream's
auto-configured reader raises in that case and takes tracing and logging down with it;
here it costs one warning and this process simply serves no metrics on that port.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["PrometheusEndpoint", "start_prometheus_endpoint"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PrometheusEndpoint:
    """A running endpoint: the metric reader to register and where it is served."""

    reader: Any
    url: str
    server: Any

    def close(self) -> None:
        """Stop serving; the reader is shut down with its meter provider."""
        self.server.shutdown()
        self.server.server_close()


def start_prometheus_endpoint(host: str, port: int) -> PrometheusEndpoint | None:
    """Serve metrics on ``host:port`` (port 0 picks a free one); ``None`` if it cannot."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as error:
        _logger.warning(
            "The Prometheus endpoint could not listen on %s:%d (%s); this process serves no "
            "metrics there, everything else goes on. Set OTEL_EXPORTER_PROMETHEUS_PORT to a "
            "free port, or 0 to pick one",
            host,
            port,
            error.strerror or error,
        )
        return None
    bound_port = server.server_address[1]
    display_host = f"[{host}]" if ":" in host else host
    return PrometheusEndpoint(
        reader=PrometheusMetricReader(),
        url=f"http://{display_host}:{bound_port}/metrics",
        server=server,
    )
