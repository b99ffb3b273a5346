"""Each endpoint's breaker and retries, for the adapters' outgoing calls, HTTP and DB alike.

The breaker comes from the registry (one per endpoint key, shared by every library that
calls the endpoint); a retry is made per endpoint and purpose from the retry settings the
instrumentor was given, and kept, evicted oldest first like the breakers, so an endpoint's
retry budget lives as long as its breaker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from otel_resilience._fork import unlock_after_fork
from otel_resilience.breaker._breaker import CircuitBreaker
from otel_resilience.breaker._registry import CircuitBreakerRegistry, default_registry
from otel_resilience.retry._retry import Retry
from otel_resilience.sdk.settings import RetrySettings, Settings, settings_from_options

__all__ = ["AdapterOptions", "EndpointResilience"]


@dataclass(frozen=True, slots=True)
class AdapterOptions:
    """An instrumentor's ``instrument(**options)`` resolved against its settings.

    ``options["settings"]`` is what the launcher's configurator read and validated (the
    distro passes it to our instrumentors); an instrumentor used in code without it reads
    the environment once. Explicit ``retry`` and ``resilience`` options override them.
    """

    settings: Settings
    tracer_provider: Any
    meter_provider: Any
    registry: CircuitBreakerRegistry | None
    retry: RetrySettings
    resilience: bool

    @classmethod
    def resolve(cls, library_name: str, options: Mapping[str, Any]) -> AdapterOptions:
        settings = settings_from_options(options)
        resilience = options.get("resilience")
        return cls(
            settings,
            options.get("tracer_provider"),
            options.get("meter_provider"),
            options.get("registry"),
            options.get("retry") or settings.retry,
            settings.resilience_enabled(library_name) if resilience is None else resilience,
        )


class EndpointResilience:
    """The breakers and retries of one adapter's endpoints."""

    __slots__ = ("__weakref__", "_lock", "_registry", "_retries", "enabled", "retry_settings")

    def __init__(
        self,
        registry: CircuitBreakerRegistry | None,
        retry_settings: RetrySettings | None,
        enabled: bool,
    ) -> None:
        self._registry = registry
        self.retry_settings = retry_settings
        self.enabled = enabled  # OTEL_RESILIENCE_DISABLED: spans and metrics stay
        self._retries: dict[Hashable, Retry] = {}
        self._lock = threading.Lock()
        unlock_after_fork(self, "_lock")

    def registry(self) -> CircuitBreakerRegistry:
        return self._registry if self._registry is not None else default_registry()

    def breaker(self, key: str) -> CircuitBreaker | None:
        """The endpoint's breaker; ``None`` when resilience is off, or off for it."""
        if not self.enabled:
            return None
        registry = self.registry()
        return None if registry.is_excluded(key) else registry.get(key)

    def retry(
        self,
        slot: Hashable,
        breaker: CircuitBreaker,
        make: Callable[[RetrySettings], Retry],
        kept: int = 1,
    ) -> Retry | None:
        """The retry kept in ``slot`` for ``breaker`` (made by ``make`` on first use, or
        when the breaker was replaced); ``None`` when retries are off. ``kept`` retries per
        breaker are held at most (one per purpose)."""
        settings = self.retry_settings
        if settings is None or settings.max_retries == 0:
            return None
        retry = self._retries.get(slot)
        if retry is None or retry.breaker is not breaker:
            retry = make(settings)
            with self._lock:
                if len(self._retries) >= self.registry().max_breakers * kept:
                    self._retries.pop(next(iter(self._retries)))  # the oldest
                self._retries[slot] = retry
        return retry
