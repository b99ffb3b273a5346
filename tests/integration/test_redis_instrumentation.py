"""The redis-py instrumentation against the real Redis on 127.0.0.1:6379 and the real SDK.

Clients are built without redis-py's own retries (``NO_RETRY``, what ``retry=None`` gives):
redis-py 6+ retries every command by default (8.1: up to 10 times, with backoff), which
would hide what this distribution does (a dead server would take seconds per command).
How the instrumentation stops redis-py from sending a write twice is in test_redis_retry.py,
and what it keeps out of telemetry in test_redis_secrets.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from fake_clock import FakeClock
from instrumentation_harness import Instrumented
from instrumentation_harness import instrument as instrument_with
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from otel_resilience_instrumentation_redis import RedisCircuitOpenError, RedisInstrumentor
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry
from tcp_proxy import TcpProxy

from otel_resilience import BreakerPolicy, CircuitOpenError

DURATION = "db.client.operation.duration"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# Quick to open, quick to try again, closed by one successful trial.
FLAKY = BreakerPolicy(
    consecutive_failures=2, recovery_timeout=0.3, recovery_jitter=0, half_open_max_calls=1
)

NO_RETRY = Retry(NoBackoff(), 0)
ASYNC_NO_RETRY = AsyncRetry(NoBackoff(), 0)

ProxyFactory = Callable[[str, int], TcpProxy]


def client(port: int = REDIS_PORT, **options: Any) -> redis.Redis:
    return redis.Redis(host=REDIS_HOST, port=port, retry=NO_RETRY, decode_responses=True, **options)


@pytest.fixture
def key() -> Iterator[str]:
    """A key no other test uses; it and any key under it are deleted afterwards."""
    name = f"otel-resilience-test:{uuid.uuid4().hex}"
    yield name
    with suppress_instrumentation(), client() as cleanup:
        cleanup.delete(name, *cleanup.keys(f"{name}:*"))


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument_with(RedisInstrumentor())


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def everything_recorded(instrumented: Instrumented) -> str:
    """Span names and attributes, metric point attributes and breaker names, as one text."""
    spans = [f"{s.name} {attributes(s)} {s.status.description}" for s in instrumented.finished()]
    points = [str(dict(p.attributes)) for p in instrumented.duration_points(DURATION)]
    names = [breaker.name for breaker in instrumented.registry.breakers()]
    return " ".join(spans + points + names)


def test_commands_get_client_spans_and_duration_points_without_keys_or_values(
    instrumented: Instrumented, key: str
) -> None:
    redis_client = client()
    assert redis_client.set(key, "alice@example.com")
    assert redis_client.get(key) == "alice@example.com"

    set_span, get_span = instrumented.finished()
    assert (set_span.name, get_span.name) == ("SET 0", "GET 0")
    assert set_span.kind is SpanKind.CLIENT
    assert set_span.instrumentation_scope is not None
    assert set_span.instrumentation_scope.name == "otel_resilience.instrumentation.redis"
    assert attributes(set_span) == {
        "db.system.name": "redis",
        "db.namespace": "0",
        "db.operation.name": "SET",
        "db.query.text": "SET ? ?",
        "server.address": "127.0.0.1",
        "server.port": 6379,
    }
    assert attributes(get_span)["db.query.text"] == "GET ?"
    assert set_span.status.status_code is StatusCode.UNSET
    points = instrumented.duration_points(DURATION)
    assert sorted((dict(p.attributes)["db.operation.name"], p.count) for p in points) == [
        ("GET", 1),
        ("SET", 1),
    ]
    assert {dict(p.attributes)["db.system.name"] for p in points} == {"redis"}
    recorded = everything_recorded(instrumented)
    assert key not in recorded
    assert "alice@example.com" not in recorded


def test_a_pipeline_is_one_span_and_its_queued_commands_none(
    instrumented: Instrumented, key: str
) -> None:
    redis_client = client()
    with redis_client.pipeline() as transaction:
        transaction.set(key, 1)
        transaction.incr(key)  # sent as INCRBY
        transaction.get(key)
        assert transaction.execute() == [True, 2, "2"]
    with redis_client.pipeline(transaction=False) as pipeline:
        pipeline.get(key)
        pipeline.get(f"{key}:other")
        assert pipeline.execute() == ["2", None]

    multi, batch = instrumented.finished()
    assert multi.name == "MULTI 0"
    assert attributes(multi)["db.operation.name"] == "MULTI"
    assert attributes(multi)["db.query.text"] == "SET ? ?\nINCRBY ? ?\nGET ?"
    assert batch.name == "PIPELINE 0"
    assert attributes(batch)["db.query.text"] == "GET ?\nGET ?"
    assert key not in everything_recorded(instrumented)


def test_commands_run_at_once_under_watch_get_their_own_spans(
    instrumented: Instrumented, key: str
) -> None:
    redis_client = client()
    redis_client.set(key, 41)
    with redis_client.pipeline() as pipe:
        pipe.watch(key)  # type: ignore[no-untyped-call]
        current = int(str(pipe.get(key)))  # run at once: the transaction needs the value now
        pipe.multi()
        pipe.set(key, current + 1)
        assert pipe.execute() == [True]
    assert redis_client.get(key) == "42"
    names = [span.name for span in instrumented.finished()]
    assert names == ["SET 0", "WATCH 0", "GET 0", "MULTI 0", "GET 0"]


def test_an_error_the_server_answers_is_an_error_span_but_no_breaker_failure(
    instrumented: Instrumented, key: str
) -> None:
    redis_client = client()
    redis_client.set(key, "not a number")
    for _ in range(3):
        with pytest.raises(redis.exceptions.ResponseError):
            redis_client.incr(key)

    incr = instrumented.finished()[-1]
    assert incr.name == "INCRBY 0"  # what redis-py sends for incr()
    assert incr.status.status_code is StatusCode.ERROR
    assert attributes(incr)["error.type"] == "ResponseError"
    (failed,) = [p for p in instrumented.duration_points(DURATION) if "error.type" in p.attributes]
    assert (dict(failed.attributes)["db.operation.name"], failed.count) == ("INCRBY", 3)
    breaker = instrumented.registry.get("redis://127.0.0.1:6379/0")
    assert (breaker.stats.successes, breaker.stats.failures) == (4, 0)
    assert len(instrumented.finished()) == 4  # an answered error is never retried


def test_a_wrong_password_is_not_a_failure_and_appears_nowhere(
    instrumented: Instrumented, key: str
) -> None:
    redis_client = client(username="nobody", password="hunter2-secret")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis_client.get(key)
    (span,) = instrumented.finished()  # a read, but the server answered: not retried
    assert attributes(span)["error.type"] == "AuthenticationError"
    breaker = instrumented.registry.get("redis://127.0.0.1:6379/0")
    assert (breaker.stats.successes, breaker.stats.failures) == (1, 0)
    assert "hunter2" not in everything_recorded(instrumented)


def test_the_breaker_opens_when_the_server_goes_away_and_closes_when_it_is_back(
    tcp_proxy: ProxyFactory, key: str
) -> None:
    proxy = tcp_proxy(REDIS_HOST, REDIS_PORT)
    redis_client = client(proxy.port)
    clock = FakeClock()
    for instrumented in instrument_with(RedisInstrumentor(), FLAKY, retries=0, clock=clock):
        redis_client.set(key, "v")
        proxy.refuse()
        for _ in range(2):
            with pytest.raises(redis.exceptions.ConnectionError) as failed:
                redis_client.get(key)
            assert not isinstance(failed.value, CircuitOpenError)
        breaker = instrumented.registry.get(f"redis://127.0.0.1:{proxy.port}/0")
        assert breaker.state == "open"

        proxy.restore()  # back, but the breaker does not know yet
        accepted = proxy.connections_accepted
        rejected: Exception | None = None
        try:
            redis_client.get(key)
        except redis.exceptions.ConnectionError as error:  # the program's own except clause
            rejected = error
        assert isinstance(rejected, RedisCircuitOpenError)
        assert f"redis://127.0.0.1:{proxy.port}/0" in str(rejected)
        assert repr(rejected)  # redis-py's __repr__ reads attributes its __init__ sets
        assert proxy.connections_accepted == accepted  # nothing was sent
        assert attributes(instrumented.finished()[-1])["error.type"] == "RedisCircuitOpenError"

        clock.advance(breaker.seconds_until_trial())
        assert redis_client.get(key) == "v"  # the trial call
        assert str(breaker.state) == "closed"
        assert proxy.connections_accepted == accepted + 1


def test_a_read_is_retried_when_its_connection_dies_and_a_write_is_not(
    instrumented: Instrumented, tcp_proxy: ProxyFactory, key: str
) -> None:
    proxy = tcp_proxy(REDIS_HOST, REDIS_PORT)
    # One connection held by the client: the pool would replace a dead idle connection
    # before sending on it, so only a connection that dies under a command shows a retry.
    redis_client = client(proxy.port, single_connection_client=True)
    redis_client.set(key, "before")

    proxy.cut()
    assert redis_client.get(key) == "before"
    failed, retried = instrumented.finished()[1:]
    assert attributes(failed)["error.type"] == "ConnectionError"
    assert retried.status.status_code is StatusCode.UNSET

    proxy.cut()
    with pytest.raises(redis.exceptions.ConnectionError):
        redis_client.set(key, "after")
    assert [span.name for span in instrumented.finished()[3:]] == ["SET 0"]
    assert client().get(key) == "before"


def test_a_client_that_retries_by_itself_is_not_retried_again(
    instrumented: Instrumented, tcp_proxy: ProxyFactory, key: str
) -> None:
    proxy = tcp_proxy(REDIS_HOST, REDIS_PORT)
    # redis-py retries this client's commands itself (as its default does since 6.0)
    redis_client = redis.Redis(host=REDIS_HOST, port=proxy.port, retry=Retry(NoBackoff(), 1))
    redis_client.ping()
    proxy.refuse()
    with pytest.raises(redis.exceptions.ConnectionError):
        redis_client.get(key)
    # one attempt of ours, inside which redis-py tried twice: retries at one layer only
    assert [span.name for span in instrumented.finished()] == ["PING 0", "GET 0"]


def test_reads_are_not_retried_when_turned_off(tcp_proxy: ProxyFactory, key: str) -> None:
    proxy = tcp_proxy(REDIS_HOST, REDIS_PORT)
    redis_client = client(proxy.port, single_connection_client=True)
    for instrumented in instrument_with(RedisInstrumentor(), retry_read_only=False):
        redis_client.ping()
        proxy.cut()
        with pytest.raises(redis.exceptions.ConnectionError):
            redis_client.get(key)
        assert [span.name for span in instrumented.finished()] == ["PING 0", "GET 0"]


def test_a_transaction_aborted_by_a_changed_key_is_no_failure(
    instrumented: Instrumented, key: str
) -> None:
    with client().pipeline() as pipe:
        pipe.watch(key)  # type: ignore[no-untyped-call]
        client().set(key, "changed meanwhile")
        pipe.multi()
        pipe.set(key, "mine")
        with pytest.raises(redis.exceptions.WatchError):
            pipe.execute()
    assert attributes(instrumented.finished()[-1])["error.type"] == "WatchError"
    breaker = instrumented.registry.get("redis://127.0.0.1:6379/0")
    assert (breaker.stats.successes, breaker.stats.failures) == (3, 0)


def test_a_connection_lost_under_watch_counts_against_the_server(
    instrumented: Instrumented, tcp_proxy: ProxyFactory, key: str
) -> None:
    proxy = tcp_proxy(REDIS_HOST, REDIS_PORT)
    with client(proxy.port).pipeline() as pipe:
        pipe.watch(key)  # type: ignore[no-untyped-call]
        proxy.cut()
        # redis-py reports it as a WatchError: the transaction must start over.
        with pytest.raises(redis.exceptions.WatchError):
            pipe.get(key)
    _watch, get = instrumented.finished()
    assert attributes(get)["error.type"] == "WatchError"
    breaker = instrumented.registry.get(f"redis://127.0.0.1:{proxy.port}/0")
    assert (breaker.stats.successes, breaker.stats.failures) == (1, 1)  # never retried


def test_asyncio_commands_and_pipelines_get_one_span_each(
    instrumented: Instrumented, key: str
) -> None:
    async def run() -> list[Any]:
        async with redis.asyncio.Redis(
            host=REDIS_HOST, port=REDIS_PORT, retry=ASYNC_NO_RETRY, decode_responses=True
        ) as async_client:
            await async_client.set(key, "v")
            async with async_client.pipeline() as pipe:
                pipe.get(key)
                pipe.strlen(key)
                results = [await async_client.get(key), await pipe.execute()]
            async with async_client.pipeline(transaction=False) as pipe:
                pipe.exists(key)
                return [*results, await pipe.execute()]

    assert asyncio.run(run()) == ["v", ["v", 1], [1]]
    spans = instrumented.finished()
    assert [span.name for span in spans] == ["SET 0", "GET 0", "MULTI 0", "PIPELINE 0"]
    assert attributes(spans[2])["db.query.text"] == "GET ?\nSTRLEN ?"
    assert key not in everything_recorded(instrumented)


def test_asyncio_commands_are_rejected_by_an_open_breaker(
    tcp_proxy: ProxyFactory, key: str
) -> None:
    proxy = tcp_proxy(REDIS_HOST, REDIS_PORT)
    proxy.refuse()

    async def three_gets() -> list[str]:
        outcomes = []
        async with redis.asyncio.Redis(
            host=REDIS_HOST, port=proxy.port, retry=ASYNC_NO_RETRY
        ) as down:
            for _ in range(3):
                try:
                    await down.get(key)
                except redis.exceptions.ConnectionError as error:
                    outcomes.append(type(error).__name__)
        return outcomes

    for instrumented in instrument_with(RedisInstrumentor(), FLAKY, retries=0):
        assert asyncio.run(three_gets()) == [
            "ConnectionError",
            "ConnectionError",
            "RedisCircuitOpenError",
        ]
        assert len(instrumented.finished()) == 3


def test_suppressed_commands_pass_through(instrumented: Instrumented, key: str) -> None:
    with suppress_instrumentation():
        client().set(key, "v")
    assert instrumented.finished() == []
