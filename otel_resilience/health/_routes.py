"""``/healthz``, ``/readyz`` and ``/status`` on an :class:`EndpointServer`.

``/healthz`` is liveness: it answers 200 whenever the process can serve a request at all,
and runs no check, so that an orchestrator restarts a process only when it is wedged, not
when a dependency is away. ``/readyz`` is readiness: 503 while the report is ``down`` (a
critical check failed or a critical breaker is open), so traffic goes elsewhere until it
recovers. ``/status`` is the whole report for people and for ``python -m otel_resilience
status``; it answers 200 whatever the verdict, which is in its body.
"""

from __future__ import annotations

import json
from typing import Any

from otel_resilience.health._checks import HealthChecks
from otel_resilience.health._report import MetricsSnapshot, StatusReporter
from otel_resilience.health._status import HealthStatus
from otel_resilience.sdk._endpoint_server import EndpointRequest, EndpointResponse, EndpointServer
from otel_resilience.sdk.settings import HealthSettings

__all__ = ["HEALTH_PATHS", "install_health_routes"]

HEALTH_PATHS = ("/healthz", "/readyz", "/status")

_JSON = "application/json"
# Probes and people must see the current state, never a proxy's copy of an old one.
_NO_STORE = (("Cache-Control", "no-store"),)
_ALIVE = EndpointResponse(200, "text/plain; charset=utf-8", b"ok\n", _NO_STORE)


def _json_response(status: int, document: dict[str, Any]) -> EndpointResponse:
    body = json.dumps(document, separators=(",", ":")).encode()
    return EndpointResponse(status, _JSON, body, _NO_STORE)


def install_health_routes(
    server: EndpointServer,
    settings: HealthSettings,
    *,
    checks: HealthChecks | None = None,
    metrics_snapshot: MetricsSnapshot | None = None,
    reporter: StatusReporter | None = None,
) -> StatusReporter:
    """Serve the health routes on ``server``; returns the reporter behind them.

    ``checks`` and ``metrics_snapshot`` default to the process's own (see
    :class:`StatusReporter`); pass ``reporter`` to choose every source.
    """
    if reporter is None:
        reporter = StatusReporter(settings, checks=checks, metrics_snapshot=metrics_snapshot)

    def liveness(request: EndpointRequest) -> EndpointResponse:
        return _ALIVE

    def readiness(request: EndpointRequest) -> EndpointResponse:
        status, body = reporter.readiness()
        return _json_response(503 if status is HealthStatus.DOWN else 200, body)

    def status(request: EndpointRequest) -> EndpointResponse:
        return _json_response(200, reporter.report())

    server.add_route("/healthz", liveness)
    server.add_route("/readyz", readiness)
    server.add_route("/status", status)
    return reporter
