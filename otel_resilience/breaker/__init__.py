"""Breaking: the circuit breaker, its policy, windows, registry and telemetry.

The public names are re-exported from :mod:`otel_resilience` (and from here). Importing this
package imports nothing until a name is asked for (the settings import the policy module at
start-up, and must not pay for the breaker); asking for one also subscribes the breakers'
telemetry (:mod:`._telemetry`), so breakers made through the public names report metrics,
span events and log records.
"""

from typing import TYPE_CHECKING, Any

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

_EXPORTS = {
    "BreakerPolicy": "_policy",
    "CallEvent": "_breaker",
    "CallListener": "_breaker",
    "CallPermit": "_breaker",
    "CircuitBreaker": "_breaker",
    "CircuitBreakerListener": "_breaker",
    "CircuitBreakerRegistry": "_registry",
    "CircuitBreakerStats": "_breaker",
    "CircuitOpenError": "_breaker",
    "StateTransition": "_breaker",
    "TransitionListener": "_breaker",
    "default_registry": "_registry",
}


def __getattr__(name: str) -> Any:
    import importlib

    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    importlib.import_module(f"{__name__}._telemetry")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BreakerPolicy",
    "CallEvent",
    "CallListener",
    "CallPermit",
    "CircuitBreaker",
    "CircuitBreakerListener",
    "CircuitBreakerRegistry",
    "CircuitBreakerStats",
    "CircuitOpenError",
    "StateTransition",
    "TransitionListener",
    "default_registry",
]
