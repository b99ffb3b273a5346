"""A forked child never waits on a lock that a thread of its parent held at the fork.

Pre-fork servers fork while other threads of the parent run; a lock one of them held at
that moment stays held in the child, by a thread that does not exist there. Here a parent
thread holds every lock a request passes through (the breaker registry's, the retry
budget's, the HTTP wrapper's retry table's, the module-level ones) while the parent forks;
the child then sends real requests through the instrumentation and must finish.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from http_test_server import ScriptedHttpServer
from instrumentation_harness import Instrumented, instrument
from otel_resilience_instrumentation_requests import RequestsInstrumentor

from otel_resilience.breaker import _registry
from otel_resilience.breaker import _telemetry as _breaker_telemetry
from otel_resilience.instrumentation._http_client import OutgoingHttp
from otel_resilience.metrics import _registry as _metric_registries

CHILD_SECONDS = 20


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument(RequestsInstrumentor(), retries=2)


def _locks_a_request_takes(instrumented: Instrumented, url: str) -> list[threading.Lock]:
    requests.get(url, timeout=5)  # makes the endpoint's breaker and retry
    # The instrumentation's OutgoingHttp, from the closure of the wrapper around Session.send.
    wrapper = requests.Session.send._self_wrapper  # type: ignore[attr-defined]
    (outgoing,) = (
        cell.cell_contents
        for cell in wrapper.__closure__
        if isinstance(cell.cell_contents, OutgoingHttp)
    )
    (retry,) = outgoing._endpoints._retries.values()
    return [
        instrumented.registry._lock,
        retry.budget._lock,
        outgoing._endpoints._lock,
        _registry._default_lock,
        _breaker_telemetry._instruments_lock,
        _metric_registries._scoped_lock,
    ]


def _wait(pid: int) -> int | None:
    """The child's exit status, or None if it is still running after CHILD_SECONDS."""
    deadline = time.monotonic() + CHILD_SECONDS
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


def test_a_child_forked_while_a_thread_holds_our_locks_can_still_send(
    instrumented: Instrumented, http_server: ScriptedHttpServer
) -> None:
    url = http_server.url("/ok")
    locks = _locks_a_request_takes(instrumented, url)
    holding, release = threading.Event(), threading.Event()

    def hold_every_lock() -> None:
        for lock in locks:
            lock.acquire()
        holding.set()
        release.wait(30)
        for lock in locks:
            lock.release()

    holder = threading.Thread(target=hold_every_lock)
    holder.start()
    assert holding.wait(10)
    try:
        pid = os.fork()
        if pid == 0:  # the child: exit through os._exit, whatever happens
            code = 1
            try:
                responses = [requests.get(url, timeout=5) for _ in range(3)]
                instrumented.registry.get("http://another.example:80")
                code = 0 if all(r.status_code == 200 for r in responses) else 2
            finally:
                os._exit(code)
        status = _wait(pid)
    finally:
        release.set()
        holder.join(10)
    assert status is not None, f"the forked child hung for {CHILD_SECONDS}s on a lock"
    assert status == 0
