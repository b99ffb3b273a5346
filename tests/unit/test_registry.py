"""The breaker registry: one breaker per key, from the policy, least recently used evicted."""

from __future__ import annotations

import concurrent.futures

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


def test_override_patterns_match_hosts_and_whole_keys() -> None:
    strict = BreakerPolicy(consecutive_failures=1)
    lenient = BreakerPolicy(consecutive_failures=50)
    registry = CircuitBreakerRegistry(
        overrides={"*.internal": strict, "https://api.example.com:443": lenient}
    )
    assert registry.get("http://orders.internal:8080").policy is strict
    assert registry.get("https://api.example.com:443").policy is lenient
    assert registry.get("http://api.example.com:80").policy is registry.policy


def test_overriding_by_code_replaces_existing_breakers() -> None:
    registry = CircuitBreakerRegistry()
    before = registry.get("http://inventory:8080")
    strict = BreakerPolicy(consecutive_failures=1)
    registry.override("inventory", strict)
    after = registry.get("http://inventory:8080")
    assert after is not before
    assert after.policy is strict


def test_exclusions() -> None:
    registry = CircuitBreakerRegistry(excluded=["localhost", "*.internal"])
    assert registry.is_excluded("http://localhost:8080")
    assert registry.is_excluded("https://billing.internal:443")
    assert not registry.is_excluded("https://api.example.com:443")
    registry.exclude("https://api.example.com:443")
    assert registry.is_excluded("https://api.example.com:443")


def test_a_key_asked_again_keeps_its_breaker_until_replaced_or_evicted() -> None:
    registry = CircuitBreakerRegistry(max_breakers=2)
    first = registry.get("a")
    assert registry.get("a") is first  # the most recent key, asked again
    registry.override("a", BreakerPolicy(consecutive_failures=1))
    replaced = registry.get("a")
    assert replaced is not first
    assert replaced.policy.consecutive_failures == 1
    registry.get("b")
    registry.get("c")  # evicts a, the least recently used
    assert "a" not in registry
    assert registry.get("a") is not replaced


def test_concurrent_callers_get_each_key_one_breaker_within_the_cap() -> None:
    registry = CircuitBreakerRegistry(max_breakers=3)
    keys = [f"http://host-{n}:80" for n in range(5)]
    wrong: list[str] = []

    def call(offset: int) -> None:
        for n in range(2_000):
            key = keys[(n // 7 + offset) % len(keys)]
            if registry.get(key).name != key:
                wrong.append(key)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(call, range(8)))  # re-raises what a thread raised
    assert wrong == []
    assert len(registry) == 3
    assert len({breaker.name for breaker in registry.breakers()}) == 3
