"""Health checks and a status report, served as ``/healthz``, ``/readyz`` and ``/status``.

Zero-code, under ``opentelemetry-instrument``: ``OTEL_RESILIENCE_HEALTH_ENABLED=true`` serves
the three routes (see the README's "Health and status"), and ``python -m otel_resilience
status`` prints the report. Built in: every circuit breaker's state (an open one makes the
report ``degraded``, or ``down`` when it matches ``OTEL_RESILIENCE_HEALTH_CRITICAL_BREAKERS``),
the exporters' latest results and the log writers' drops. A program adds its own::

    from otel_resilience.health import CheckResult, register_check

    def database() -> CheckResult:
        connection.execute("SELECT 1")
        return CheckResult.ok("SELECT 1 answered")

    register_check("database", database, timeout=1.0)

    async def cache() -> bool:  # async checks too; True is ok, False is down
        return await redis_client.ping()

    register_check("cache", cache, critical=False)  # can only make the report degraded

A check that raises or outlives its timeout is reported as ``down`` with the reason; it
never raises into the program, and a hung check occupies one thread, however often it is
probed.
"""

from typing import TYPE_CHECKING, Any

from otel_resilience.health._status import CheckResult, HealthStatus

if TYPE_CHECKING:
    from otel_resilience.health._checks import CheckFunction, register_check, unregister_check
    from otel_resilience.health._report import health_report
    from otel_resilience.health._routes import install_health_routes

# Imported on first use (PEP 562): the providers record export outcomes here at every
# start-up, and the checks, report and routes (with their HTTP server) are needed only
# when a program registers a check or serves the routes.
_EXPORTS = {
    "CheckFunction": "otel_resilience.health._checks",
    "health_report": "otel_resilience.health._report",
    "install_health_routes": "otel_resilience.health._routes",
    "register_check": "otel_resilience.health._checks",
    "unregister_check": "otel_resilience.health._checks",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_resilience.health' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CheckFunction",
    "CheckResult",
    "HealthStatus",
    "health_report",
    "install_health_routes",
    "register_check",
    "unregister_check",
]
