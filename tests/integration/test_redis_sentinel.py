"""Redis Sentinel: each service has its own breaker, so one failed service rejects no other.

A Sentinel pool learns its server only at connect time, so every Sentinel-managed client
once shared one breaker named ``redis:///<db>``. A real Sentinel (``redis-server
--sentinel``) on 127.0.0.1 monitors two services: ``up`` is the real Redis, ``down`` points
at a port nobody listens on.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from instrumentation_harness import Instrumented, instrument
from otel_resilience_instrumentation_redis import RedisInstrumentor
from otlp_receiver import unused_tcp_port
from redis.sentinel import Sentinel

from otel_resilience import BreakerPolicy


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[Sentinel]:
    server = shutil.which("redis-server")
    assert server is not None, "redis-server (Debian's redis package) runs the Sentinel"
    port = unused_tcp_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        "sentinel monitor up 127.0.0.1 6379 1\n"
        f"sentinel monitor down 127.0.0.1 {unused_tcp_port()} 1\n"
    )
    process = subprocess.Popen(
        [server, str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the Sentinel did not start"
                time.sleep(0.05)
        yield Sentinel([("127.0.0.1", port)], socket_timeout=1)
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    policy = BreakerPolicy(consecutive_failures=1, recovery_jitter=0)
    yield from instrument(RedisInstrumentor(), policy, retries=0)


def test_a_failed_service_does_not_reject_another(
    sentinel: Sentinel, instrumented: Instrumented
) -> None:
    down = sentinel.master_for("down", socket_timeout=1)
    up = sentinel.master_for("up", socket_timeout=1)
    with pytest.raises(redis.exceptions.ConnectionError):
        down.ping()
    with pytest.raises(redis.exceptions.ConnectionError, match="rejected"):
        down.ping()  # its own breaker is open
    key = "otel-resilience-sentinel-test"
    assert up.set(key, "1")
    assert up.get(key) == b"1"
    up.delete(key)
    assert instrumented.registry.get("redis+sentinel://down/0").state == "open"
    up_breaker = instrumented.registry.get("redis+sentinel://up/0")
    assert up_breaker.state == "closed"
    assert up_breaker.stats.successes == 3
