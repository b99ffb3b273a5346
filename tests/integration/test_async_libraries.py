"""Async retries wait through whichever library runs the program: asyncio or trio.

httpx's ``AsyncClient`` runs under trio as well as asyncio, directly or through anyio. A
retry's wait that called ``asyncio.sleep`` raised ``RuntimeError: no running event loop``
under trio, out of the program's request. Each test makes a request whose first attempt is
answered 503 by a real server, so that the retry must wait once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import anyio
import httpx
import pytest
import trio
from http_test_server import ScriptedHttpServer
from instrumentation_harness import Instrumented, instrument
from otel_resilience_instrumentation_httpx import HTTPXClientInstrumentor


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument(HTTPXClientInstrumentor(), retries=2, backoff=0.01)


async def _get(url: str) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(url)).status_code


def test_a_retry_under_trio_waits_with_trio(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    assert trio.run(_get, http_server.url("/flaky/trio/1")) == 200
    assert len(http_server.received) == 2
    assert len(instrumented.finished()) == 2


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_a_retry_under_anyio_waits_with_its_backend(
    instrumented: Instrumented, http_server: ScriptedHttpServer, backend: str
) -> None:
    url = http_server.url(f"/flaky/anyio-{backend}/1")
    assert anyio.run(_get, url, backend=backend) == 200
    assert len(http_server.received) == 2


def test_a_retry_under_asyncio_still_waits_with_asyncio(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    assert asyncio.run(_get(http_server.url("/flaky/asyncio/1"))) == 200
    assert len(http_server.received) == 2
