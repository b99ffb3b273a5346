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

from otel_resilience._breaker import (
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
from otel_resilience._policy import BreakerPolicy
from otel_resilience._providers import InstalledTelemetry, installed_telemetry
from otel_resilience._registry import CircuitBreakerRegistry, default_registry
from otel_resilience._retry import Retry, RetryBudget, RetryDetails, RetryHook, current_attempt
from otel_resilience._version import __version__
from otel_resilience.health import (
    CheckResult,
    HealthStatus,
    health_report,
    register_check,
    unregister_check,
)

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
