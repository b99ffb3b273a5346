"""otel-resilience: an OpenTelemetry distribution for resilient, observable outgoing calls.

Run a program unchanged under ``opentelemetry-instrument`` to get it all, configured by
environment variables (see the README's configuration table), or use the pieces below as a
library::

    from otel_resilience import CircuitBreaker

    breaker = CircuitBreaker("inventory-api", consecutive_failures=5, recovery_timeout=10)

    @breaker
    def fetch_stock(item: str) -> int: ...

Application metrics are in :mod:`otel_resilience.metrics`, logging in
:mod:`otel_resilience.logs`, health checks in :mod:`otel_resilience.health`.
"""

from typing import TYPE_CHECKING, Any

from otel_resilience._version import __version__

if TYPE_CHECKING:
    from otel_resilience.breaker._breaker import (
        CallEvent,
        CallListener,
        CallPermit,
        CircuitBreaker,
        CircuitBreakerListener,
        CircuitBreakerStats,
        CircuitOpenError,
        StateTransition,
        TransitionListener,
    )
    from otel_resilience.breaker._policy import BreakerPolicy
    from otel_resilience.breaker._registry import CircuitBreakerRegistry, default_registry
    from otel_resilience.health import (
        CheckResult,
        HealthStatus,
        health_report,
        register_check,
        unregister_check,
    )
    from otel_resilience.retry._retry import (
        Retry,
        RetryBudget,
        RetryDetails,
        RetryHook,
        current_attempt,
    )
    from otel_resilience.sdk._installed import InstalledTelemetry, installed_telemetry

# Imported on first use (PEP 562): the launcher imports this package to load the distro
# and configurator, and a program that uses none of the library pieces should not pay for
# their imports at start-up.
_EXPORTS = {
    "BreakerPolicy": "otel_resilience.breaker",
    "CallEvent": "otel_resilience.breaker",
    "CallListener": "otel_resilience.breaker",
    "CallPermit": "otel_resilience.breaker",
    "CheckResult": "otel_resilience.health",
    "CircuitBreaker": "otel_resilience.breaker",
    "CircuitBreakerListener": "otel_resilience.breaker",
    "CircuitBreakerRegistry": "otel_resilience.breaker",
    "CircuitBreakerStats": "otel_resilience.breaker",
    "CircuitOpenError": "otel_resilience.breaker",
    "HealthStatus": "otel_resilience.health",
    "InstalledTelemetry": "otel_resilience.sdk._installed",
    "Retry": "otel_resilience.retry._retry",
    "RetryBudget": "otel_resilience.retry._retry",
    "RetryDetails": "otel_resilience.retry._retry",
    "RetryHook": "otel_resilience.retry._retry",
    "StateTransition": "otel_resilience.breaker",
    "TransitionListener": "otel_resilience.breaker",
    "current_attempt": "otel_resilience.retry._retry",
    "default_registry": "otel_resilience.breaker",
    "health_report": "otel_resilience.health",
    "installed_telemetry": "otel_resilience.sdk._installed",
    "register_check": "otel_resilience.health",
    "unregister_check": "otel_resilience.health",
}


_SUBPACKAGES = frozenset(
    {"breaker", "health", "instrumentation", "logs", "metrics", "retry", "sdk"}
)


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBPACKAGES:  # ``otel_resilience.metrics`` after a bare ``import otel_resilience``
        return importlib.import_module(f"otel_resilience.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_resilience' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BreakerPolicy",
    "CallEvent",
    "CallListener",
    "CallPermit",
    "CheckResult",
    "CircuitBreaker",
    "CircuitBreakerListener",
    "CircuitBreakerRegistry",
    "CircuitBreakerStats",
    "CircuitOpenError",
    "HealthStatus",
    "InstalledTelemetry",
    "Retry",
    "RetryBudget",
    "RetryDetails",
    "RetryHook",
    "StateTransition",
    "TransitionListener",
    "__version__",
    "current_attempt",
    "default_registry",
    "health_report",
    "installed_telemetry",
    "register_check",
    "unregister_check",
]
