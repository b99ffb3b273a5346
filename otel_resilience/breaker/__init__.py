"""Breaking: the circuit breaker, its policy, windows, registry and telemetry.

The public names (``CircuitBreaker``, ``BreakerPolicy``, ``CircuitBreakerRegistry``...) are
re-exported from :mod:`otel_resilience`; the modules here are private so they can change.
This package imports nothing on its own: importing one module here does not import the rest.
"""
