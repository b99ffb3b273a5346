"""The redis instrumentation in a program run by the real launcher, against the real Redis.

The tests in the test process are in tests/integration/test_redis_instrumentation.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from instrumented_run import run_instrumented
from opentelemetry.instrumentation.utils import suppress_instrumentation
from otlp_receiver import OtlpReceiver, unused_tcp_port
from redis.backoff import NoBackoff
from redis.retry import Retry

DURATION = "db.client.operation.duration"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


NO_RETRY = Retry(NoBackoff(), 0)


def client(port: int = REDIS_PORT, **options: Any) -> redis.Redis:
    return redis.Redis(host=REDIS_HOST, port=port, retry=NO_RETRY, decode_responses=True, **options)


@pytest.fixture
def key() -> Iterator[str]:
    """A key no other test uses; it and any key under it are deleted afterwards."""
    name = f"otel-resilience-test:{uuid.uuid4().hex}"
    yield name
    with suppress_instrumentation(), client() as cleanup:
        cleanup.delete(name, *cleanup.keys(f"{name}:*"))


APP = """
import redis, sys
key, down_port = sys.argv[1], int(sys.argv[2])
up = redis.Redis(host="127.0.0.1", port=6379, retry=None, decode_responses=True)
up.set(key, "a private note")
print(up.get(key))
up.delete(key)
down = redis.Redis(host="127.0.0.1", port=down_port, retry=None)
for _ in range(3):
    try:
        down.set(key, "x")
    except redis.exceptions.ConnectionError as error:  # the program's own except clause
        print("failed:", type(error).__name__)
"""


def test_loaded_by_the_launcher_with_environment_variables_only(
    otlp_receiver: OtlpReceiver, key: str
) -> None:
    down_port = unused_tcp_port()
    run = run_instrumented(
        APP,
        args=[key, str(down_port)],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint,
            "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "2",
        },
    ).check()
    assert run.stdout.splitlines() == [
        "a private note",
        "failed: ConnectionError",
        "failed: ConnectionError",
        "failed: RedisCircuitOpenError",
    ]
    spans = otlp_receiver.wait_for_spans(count=6)
    assert [span.name for span in spans] == ["SET 0", "GET 0", "DEL 0"] + ["SET 0"] * 3
    assert {span.scope_name for span in spans} == {"otel_resilience.instrumentation.redis"}
    assert spans[-1].attributes["error.type"] == "RedisCircuitOpenError"
    assert spans[-1].attributes["server.port"] == down_port
    assert otlp_receiver.wait_for_metric(DURATION)
    assert otlp_receiver.wait_for_metric("resilience.circuit_breaker.calls")
    assert "a private note" not in repr(otlp_receiver.spans())
    assert key not in repr(otlp_receiver.spans())


def test_with_the_upstream_instrumentor_installed_there_is_one_span_per_command(
    otlp_receiver: OtlpReceiver, key: str
) -> None:
    # opentelemetry-instrumentation-redis is installed too (a test dependency): the
    # launcher finds two entry points named "redis" and the distro keeps only ours.
    from importlib.metadata import entry_points

    values = {e.value for e in entry_points(group="opentelemetry_instrumentor", name="redis")}
    assert any(v.startswith("opentelemetry.instrumentation.redis") for v in values)
    run_instrumented(
        "import redis, sys\nredis.Redis(retry=None).exists(sys.argv[1])\n",
        args=[key],
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint},
    ).check()
    (span,) = otlp_receiver.wait_for_spans()
    assert span.scope_name == "otel_resilience.instrumentation.redis"
    assert span.name == "EXISTS 0"
    assert len(otlp_receiver.spans()) == 1
