"""Each redirect hop is a request of its own: its span, its breaker, its retries.

Two real servers: the origin answers 302 to a target on the other one. The origin's
breaker must hear only the origin's answer (it answered correctly), the target's breaker
the target's, and a retry must resend only the hop that failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
import requests
from http_test_server import ScriptedHttpServer, scripted_http_server
from instrumentation_harness import Instrumented, instrument
from otel_resilience_instrumentation_httpx import HTTPXClientInstrumentor
from otel_resilience_instrumentation_requests import RequestsInstrumentor

from otel_resilience import BreakerPolicy


@pytest.fixture
def target() -> Iterator[ScriptedHttpServer]:
    with scripted_http_server() as server:
        yield server


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument(RequestsInstrumentor(), BreakerPolicy(recovery_jitter=0), retries=2)


def _redirect(origin: ScriptedHttpServer, to: str) -> str:
    return origin.url(f"/redirect/{quote(to, safe='')}")


def test_a_redirected_request_is_one_span_per_hop(
    instrumented: Instrumented, http_server: ScriptedHttpServer, target: ScriptedHttpServer
) -> None:
    response = requests.get(_redirect(http_server, target.url("/ok")), timeout=5)
    assert response.status_code == 200
    assert [hop.status_code for hop in response.history] == [302]
    assert response.url == target.url("/ok")
    spans = instrumented.finished()
    assert [(s.attributes or {}).get("http.response.status_code") for s in spans] == [302, 200]
    assert [(s.attributes or {}).get("server.port") for s in spans] == [
        http_server.port,
        target.port,
    ]
    assert len(http_server.received) == len(target.received) == 1


def test_a_failing_target_is_retried_alone_and_charged_to_the_target(
    instrumented: Instrumented, http_server: ScriptedHttpServer, target: ScriptedHttpServer
) -> None:
    response = requests.get(_redirect(http_server, target.url("/status/503")), timeout=5)
    assert response.status_code == 503
    assert len(http_server.received) == 1  # the origin answered once, correctly
    assert len(target.received) == 3  # only the failing hop was resent
    origin = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}").stats
    failing = instrumented.registry.get(f"http://127.0.0.1:{target.port}").stats
    assert (origin.successes, origin.failures) == (1, 0)
    assert failing.failures == 1


def test_an_open_target_breaker_rejects_the_hop_not_the_origin(
    instrumented: Instrumented, http_server: ScriptedHttpServer, target: ScriptedHttpServer
) -> None:
    instrumented.registry.get(f"http://127.0.0.1:{target.port}").force_open()
    with pytest.raises(requests.exceptions.ConnectionError, match="rejected") as rejected:
        requests.get(_redirect(http_server, target.url("/ok")), timeout=5)
    assert rejected.value.request is not None
    assert rejected.value.request.url == target.url("/ok")  # the hop that was not sent
    assert len(http_server.received) == 1
    assert target.received == []
    origin = instrumented.registry.get(f"http://127.0.0.1:{http_server.port}")
    assert origin.state == "closed"


def test_redirects_not_followed_stay_one_hop(
    instrumented: Instrumented, http_server: ScriptedHttpServer, target: ScriptedHttpServer
) -> None:
    url = _redirect(http_server, target.url("/ok"))
    response = requests.get(url, timeout=5, allow_redirects=False)
    assert response.status_code == 302
    assert response.next is not None and response.next.url == target.url("/ok")
    assert target.received == []
    with requests.Session() as session:  # a session's own redirect settings are kept
        session.max_redirects = 0
        with pytest.raises(requests.exceptions.TooManyRedirects):
            session.get(url, timeout=5)


def test_each_hop_carries_its_resend_count(
    instrumented: Instrumented, http_server: ScriptedHttpServer, target: ScriptedHttpServer
) -> None:
    """``http.request.resend_count``: resends for any reason, redirects included."""
    to_target = target.url("/flaky/hop/1")  # the target's first answer is a 503, then 200
    url = _redirect(http_server, _redirect(http_server, to_target))
    assert requests.get(url, timeout=5).status_code == 200
    counts = [
        (s.attributes or {}).get("http.request.resend_count") for s in instrumented.finished()
    ]
    assert counts == [None, 1, 2, 3]  # hop 0, hop 1, hop 2 (503), hop 2 retried


def test_httpx_hops_carry_their_resend_count(
    http_server: ScriptedHttpServer, target: ScriptedHttpServer
) -> None:
    url = _redirect(http_server, target.url("/ok"))
    for instrumented in instrument(HTTPXClientInstrumentor(), retries=2):
        response = httpx.get(url, timeout=5, follow_redirects=True)
        assert response.status_code == 200
        again = httpx.get(target.url("/ok"), timeout=5)  # a new call starts from none
        assert again.status_code == 200
        spans = instrumented.finished()
        counts = [(s.attributes or {}).get("http.request.resend_count") for s in spans]
        assert counts == [None, 1, None]
