"""Every path that takes a breaker permit gives it back, whatever raises in between.

A half-open breaker admits a few trial calls; a trial slot that is taken and never given
back is lost for good, and once every slot is lost the breaker rejects every call to the
endpoint until the program restarts. These tests make the code between admission and the
call raise (the program's own propagator, here) while the breaker is half-open, against a
real server, and check that the endpoint recovers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import httpx
import psycopg
import pytest
import requests
from http_test_server import ScriptedHttpServer
from instrumentation_harness import Instrumented, instrument
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from otel_resilience_instrumentation_httpx import HTTPXClientInstrumentor
from otel_resilience_instrumentation_psycopg import PsycopgInstrumentor
from otel_resilience_instrumentation_requests import RequestsInstrumentor
from otlp_receiver import SilentTcpServer

from otel_resilience import BreakerPolicy

POLICY = BreakerPolicy(
    consecutive_failures=1, half_open_max_calls=1, recovery_timeout=0.05, recovery_jitter=0
)


class BrokenPropagator(TextMapPropagator):
    """A propagator with a bug: injecting raises."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        return context or Context()

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        raise RuntimeError("propagator bug")

    @property
    def fields(self) -> set[str]:
        return {"x-broken"}


@pytest.fixture
def broken_propagator() -> Iterator[None]:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(BrokenPropagator())
    try:
        yield
    finally:
        propagate.set_global_textmap(previous)


def _open_then_wait_for_half_open(instrumented: Instrumented, server: ScriptedHttpServer) -> Any:
    breaker = instrumented.registry.get(f"http://127.0.0.1:{server.port}")
    breaker.force_open()
    breaker.reset()
    breaker.admit().record("failure")  # one failure opens it (consecutive_failures=1)
    assert breaker.state == "open"
    time.sleep(0.06)
    assert str(breaker.state) == "half_open"
    return breaker


@pytest.mark.usefixtures("broken_propagator")
def test_requests_a_raising_propagator_loses_no_trial_slot(http_server: ScriptedHttpServer) -> None:
    for instrumented in instrument(RequestsInstrumentor(), POLICY, retries=0):
        breaker = _open_then_wait_for_half_open(instrumented, http_server)
        for _ in range(3):  # the trial, then ordinary calls through the closed breaker
            assert requests.get(http_server.url("/ok"), timeout=5).status_code == 200
        assert breaker.state == "closed"
        assert len(http_server.received) == 3
        assert "traceparent" not in http_server.received[0].headers
        assert all(span.end_time is not None for span in instrumented.finished())


@pytest.mark.usefixtures("broken_propagator")
def test_httpx_async_a_raising_propagator_loses_no_trial_slot(
    http_server: ScriptedHttpServer,
) -> None:
    async def three_gets() -> list[int]:
        async with httpx.AsyncClient(timeout=5) as client:
            return [(await client.get(http_server.url("/ok"))).status_code for _ in range(3)]

    for instrumented in instrument(HTTPXClientInstrumentor(), POLICY, retries=0):
        breaker = _open_then_wait_for_half_open(instrumented, http_server)
        assert asyncio.run(three_gets()) == [200, 200, 200]
        assert breaker.state == "closed"


def test_a_raising_propagator_is_reported_once_not_per_request(
    http_server: ScriptedHttpServer, broken_propagator: None, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in instrument(RequestsInstrumentor(), POLICY, retries=0):
        for _ in range(5):
            requests.get(http_server.url("/ok"), timeout=5)
    warnings = [r for r in caplog.records if "propagator raised" in r.getMessage()]
    assert len(warnings) <= 1  # once per process (an earlier test may have logged it)


def test_headers_are_untouched_when_the_propagator_raises(
    http_server: ScriptedHttpServer, broken_propagator: None
) -> None:
    headers: MutableMapping[str, str] = {"X-Mine": "1"}
    for _ in instrument(RequestsInstrumentor(), POLICY, retries=0):
        requests.get(http_server.url("/ok"), headers=headers, timeout=5)
    (received,) = http_server.received
    assert received.headers["x-mine"] == "1"


def test_psycopg_a_connect_cancelled_during_a_trial_gives_its_slot_back(
    silent_collector: SilentTcpServer,
) -> None:
    """A half-open trial connect that the program cancels (asyncio.wait_for) counts as
    neither, and frees its slot: the next connect to the healthy server is admitted."""
    stalled = f"postgresql://postgres@127.0.0.1:{silent_collector.port}/test"
    key = f"postgresql://127.0.0.1:{silent_collector.port}/test"

    async def cancelled_connect() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(psycopg.AsyncConnection.connect(stalled), 0.2)

    for instrumented in instrument(PsycopgInstrumentor(), POLICY, retries=0):
        breaker = instrumented.registry.get(key)
        breaker.admit().record("failure")  # opens
        time.sleep(0.06)
        asyncio.run(cancelled_connect())  # the half-open trial, cancelled by the program
        assert breaker.stats.ignored == 1
        permit = breaker.admit()  # the one slot is free again
        permit.record("success")
        assert breaker.state == "closed"
