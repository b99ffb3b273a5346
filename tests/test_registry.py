"""The breaker registry: one breaker per key, from the policy, least recently used evicted."""

from __future__ import annotations

from otel_resilience import BreakerPolicy, CircuitBreakerRegistry


def test_the_same_key_gets_the_same_breaker_built_from_the_policy() -> None:
    policy = BreakerPolicy(consecutive_failures=2)
    registry = CircuitBreakerRegistry(policy)
    breaker = registry.get("http://inventory:8080")
    assert registry.get("http://inventory:8080") is breaker
    assert breaker.name == "http://inventory:8080"
    assert breaker.policy is policy


def test_per_key_overrides() -> None:
    strict = BreakerPolicy(consecutive_failures=1)
    registry = CircuitBreakerRegistry(overrides={"postgresql://db:5432/app": strict})
    assert registry.get("postgresql://db:5432/app").policy is strict
    assert registry.get("http://other:80").policy is registry.policy


def test_least_recently_used_breakers_go_first() -> None:
    registry = CircuitBreakerRegistry(max_breakers=3)
    first = registry.get("a")
    registry.get("b")
    registry.get("c")
    registry.get("a")  # a is now the most recently used
    registry.get("d")
    assert len(registry) == 3
    assert "b" not in registry
    assert [b.name for b in registry.breakers()] == ["c", "a", "d"]
    assert registry.get("a") is first
