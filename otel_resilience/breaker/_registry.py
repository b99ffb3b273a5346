"""Breakers by key, created on first use from one policy, with a cap on how many are kept.

Instrumentations key breakers by endpoint (``http://api.example.com:443``). Hosts come from
data a program does not control (redirects, user-supplied URLs), so the registry keeps at
most ``max_breakers`` and lets the least recently used go first; an evicted endpoint simply
gets a fresh breaker if it is called again.

Per-endpoint overrides and exclusions are patterns (``fnmatch``: ``*.internal``) matched
against the whole key and against its host, so ``api.example.com`` covers every scheme and
port of that host and ``https://api.example.com:443`` just that one.
"""

from __future__ import annotations

import fnmatch
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

import otel_resilience.breaker._telemetry  # noqa: F401 - the registry's breakers report
from otel_resilience._fork import unlock_after_fork
from otel_resilience.breaker._breaker import CircuitBreaker
from otel_resilience.breaker._policy import BreakerPolicy
from otel_resilience.sdk.settings import current_settings

__all__ = ["CircuitBreakerRegistry", "default_registry"]


def _host_of(key: str) -> str:
    """``api.example.com`` from ``https://api.example.com:443`` (brackets kept for IPv6)."""
    return key.partition("://")[2].rpartition(":")[0] or key


def _matches(pattern: str, key: str) -> bool:
    return fnmatch.fnmatchcase(key, pattern) or fnmatch.fnmatchcase(_host_of(key), pattern)


class CircuitBreakerRegistry:
    """Returns the breaker for a key, creating it from ``policy`` or a matching override."""

    def __init__(
        self,
        policy: BreakerPolicy | None = None,
        *,
        max_breakers: int = 1000,
        overrides: Mapping[str, BreakerPolicy] | None = None,
        excluded: Iterable[str] = (),
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if max_breakers < 1:
            raise ValueError(f"max_breakers must be >= 1, got {max_breakers}")
        self.policy = policy if policy is not None else BreakerPolicy()
        self.max_breakers = max_breakers
        self._overrides = dict(overrides or {})
        self._excluded = list(excluded)
        self._clock = clock
        self._breakers: OrderedDict[str, CircuitBreaker] = OrderedDict()
        self._lock = threading.Lock()
        unlock_after_fork(self, "_lock")
        self._most_recent: tuple[str, CircuitBreaker] | None = None
        """The last key :meth:`get` returned a breaker for, and that breaker."""

    def override(self, pattern: str, policy: BreakerPolicy) -> None:
        """Endpoints matching ``pattern`` get ``policy`` from now on (existing ones too)."""
        with self._lock:
            self._overrides[pattern] = policy
            for key in [key for key in self._breakers if _matches(pattern, key)]:
                del self._breakers[key]

    def exclude(self, pattern: str) -> None:
        """Endpoints matching ``pattern`` get no breaker (nor retries); telemetry stays."""
        with self._lock:
            self._excluded.append(pattern)

    def is_excluded(self, key: str) -> bool:
        """Whether ``key`` matches an exclusion pattern."""
        if not self._excluded:  # the usual case, asked on every instrumented call
            return False
        return any(_matches(pattern, key) for pattern in self._excluded)

    def policy_for(self, key: str) -> BreakerPolicy:
        """The override whose pattern matches ``key`` (an exact key first), or the policy."""
        exact = self._overrides.get(key)
        if exact is not None:
            return exact
        for pattern, policy in self._overrides.items():
            if _matches(pattern, key):
                return policy
        return self.policy

    def get(self, key: str) -> CircuitBreaker:
        """The breaker for ``key``; created on first use, marked as recently used.

        Asked on every instrumented call, and most calls go to the endpoint the last one
        went to: that one is already the most recently used, so it is returned without the
        lock and the reordering (if it has been evicted or replaced since, the lock is
        taken as for any other key). With threads calling different endpoints at once, the
        order of use can be off by a call, which only decides which breaker goes first
        once ``max_breakers`` is reached.
        """
        recent = self._most_recent
        if recent is not None and recent[0] == key and self._breakers.get(key) is recent[1]:
            return recent[1]
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is not None:
                self._breakers.move_to_end(key)
            else:
                breaker = CircuitBreaker(key, self.policy_for(key), clock=self._clock)
                self._breakers[key] = breaker
                if len(self._breakers) > self.max_breakers:
                    self._breakers.popitem(last=False)
            self._most_recent = (key, breaker)
            return breaker

    def breakers(self) -> list[CircuitBreaker]:
        """The breakers held now, least recently used first."""
        with self._lock:
            return list(self._breakers.values())

    def __len__(self) -> int:
        return len(self._breakers)

    def __contains__(self, key: object) -> bool:
        return key in self._breakers


_default_registry: CircuitBreakerRegistry | None = None
_default_lock = threading.Lock()
unlock_after_fork(sys.modules[__name__], "_default_lock")


def default_registry() -> CircuitBreakerRegistry:
    """The process-wide registry, built from the ``OTEL_RESILIENCE_BREAKER_*`` policy.

    Instrumentations take their per-endpoint breakers from it; programs can too.
    """
    global _default_registry  # noqa: PLW0603 - one per process, created on first use
    registry = _default_registry
    if registry is None:
        with _default_lock:
            if _default_registry is None:
                settings = current_settings()
                _default_registry = CircuitBreakerRegistry(
                    settings.breaker_policy,
                    max_breakers=settings.max_breakers,
                    overrides=settings.breaker_overrides,
                    excluded=settings.breaker_excluded,
                )
            registry = _default_registry
    return registry
