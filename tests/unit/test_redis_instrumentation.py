"""The redis-py instrumentation where no server answers: the name it gives a socket, undoing it.

The tests against the real Redis are in tests/integration/test_redis_instrumentation.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from instrumentation_harness import Instrumented
from instrumentation_harness import instrument as instrument_with
from opentelemetry.sdk.trace import ReadableSpan
from otel_resilience_instrumentation_redis import RedisInstrumentor
from redis.backoff import NoBackoff
from redis.retry import Retry

NO_RETRY = Retry(NoBackoff(), 0)


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument_with(RedisInstrumentor())


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_a_unix_socket_client_names_the_socket_as_its_server(
    instrumented: Instrumented, tmp_path: Path
) -> None:
    socket_path = str(tmp_path / "redis.sock")  # no server there: a connection error
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis(unix_socket_path=socket_path, db=3, retry=NO_RETRY).get("k")
    spans = instrumented.finished()
    assert len(spans) == 3  # retried: nothing answered
    assert spans[0].name == "GET 3"
    assert {key: value for key, value in attributes(spans[0]).items() if key != "error.type"} == {
        "db.system.name": "redis",
        "db.namespace": "3",
        "db.operation.name": "GET",
        "db.query.text": "GET ?",
        "server.address": socket_path,
    }
    (breaker,) = instrumented.registry.breakers()
    assert socket_path in breaker.name


def test_uninstrument_restores_the_originals_exactly() -> None:
    hooked = [
        (redis.client.Redis, "execute_command"),
        (redis.client.Pipeline, "immediate_execute_command"),
        (redis.client.Pipeline, "execute"),
        (redis.asyncio.client.Redis, "execute_command"),
        (redis.asyncio.client.Pipeline, "immediate_execute_command"),
        (redis.asyncio.client.Pipeline, "execute"),
        # so that redis-py sends a write at most once
        (redis.retry.Retry, "call_with_retry"),
        (redis.asyncio.retry.Retry, "call_with_retry"),
        (redis.client.Redis, "_send_command_parse_response"),
        (redis.client.Pipeline, "_execute_transaction"),
        (redis.client.Pipeline, "_execute_pipeline"),
        (redis.asyncio.client.Redis, "_send_command_parse_response"),
        (redis.asyncio.client.Pipeline, "_execute_transaction"),
        (redis.asyncio.client.Pipeline, "_execute_pipeline"),
    ]
    originals = [vars(owner)[name] for owner, name in hooked]
    for _ in instrument_with(RedisInstrumentor()):
        assert all(vars(o)[n] is not f for (o, n), f in zip(hooked, originals, strict=True))
    assert all(vars(o)[n] is f for (o, n), f in zip(hooked, originals, strict=True))
