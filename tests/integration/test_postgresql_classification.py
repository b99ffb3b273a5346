"""Which PostgreSQL errors blame the server: only those are counted and retried.

Against the real PostgreSQL on 127.0.0.1, through psycopg and psycopg2: a connection string
libpq rejects before contacting anyone, a ``target_session_attrs`` the answering server does
not match, and the program's own ``cancel()`` of a statement say nothing against the server,
so they are neither retried nor counted, and a correct connection afterwards is admitted.
A statement timeout (the same SQLSTATE as a cancel) and a refused connection still count.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import psycopg2
import pytest
from instrumentation_harness import Instrumented, instrument
from otel_resilience_instrumentation_psycopg import PsycopgInstrumentor
from otel_resilience_instrumentation_psycopg2 import Psycopg2Instrumentor
from otlp_receiver import unused_tcp_port

from otel_resilience import BreakerPolicy

DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
KEY = "postgresql://127.0.0.1:5432/test"
POLICY = BreakerPolicy(consecutive_failures=1, recovery_jitter=0)


def _psycopg_connect(dsn: str) -> Any:
    return psycopg.connect(dsn)  # looked up now: the instrumentation replaces it


def _psycopg2_connect(dsn: str) -> Any:
    return psycopg2.connect(dsn)  # looked up now: the instrumentation replaces it


DRIVERS: list[tuple[Any, Callable[[str], Any]]] = [
    (PsycopgInstrumentor, _psycopg_connect),
    (Psycopg2Instrumentor, _psycopg2_connect),
]


def _untouched(instrumented: Instrumented, calls: int) -> None:
    breaker = instrumented.registry.get(KEY)
    assert breaker.state == "closed"
    stats = breaker.stats
    assert (stats.failures, stats.rejections) == (0, 0)
    assert stats.calls == calls, "each call went through the breaker, once (no retry)"
    with psycopg.connect(DSN) as connection:  # a correct connection is still admitted
        connection.execute("SELECT 1")


@pytest.mark.parametrize(("instrumentor", "connect"), DRIVERS)
@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("target_session_attrs=nosuchmode", "invalid target_session_attrs value"),
        ("target_session_attrs=read-only", "session is not read-only"),
        ("target_session_attrs=standby", "not in hot standby mode"),
    ],
)
def test_the_callers_connection_options_never_open_the_breaker(
    instrumentor: Any, connect: Callable[[str], Any], option: str, message: str
) -> None:
    for instrumented in instrument(instrumentor(), POLICY, retries=2):
        for _ in range(3):
            with pytest.raises(Exception, match=message):
                connect(f"{DSN} {option}")
        _untouched(instrumented, calls=3)


def test_the_programs_own_cancel_is_not_the_servers_failure() -> None:
    for instrumented in instrument(PsycopgInstrumentor(), POLICY, retries=2):
        with psycopg.connect(DSN, autocommit=True) as connection:
            for _ in range(2):
                timer = threading.Timer(0.2, connection.cancel)
                timer.start()
                with pytest.raises(psycopg.errors.QueryCanceled, match="user request"):
                    connection.execute("SELECT pg_sleep(5)")
                timer.join()
        _untouched(instrumented, calls=3)  # the connect and the two cancelled statements


def test_a_statement_timeout_and_a_refused_connection_still_count() -> None:
    for instrumented in instrument(PsycopgInstrumentor(), POLICY, retries=0):
        with psycopg.connect(DSN, autocommit=True) as connection:
            connection.execute("SET statement_timeout = 100")
            with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
                connection.execute("SELECT pg_sleep(5)")
        assert instrumented.registry.get(KEY).state == "open"
        refused = unused_tcp_port()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(f"host=127.0.0.1 port={refused} dbname=test user=postgres")
        assert instrumented.registry.get(f"postgresql://127.0.0.1:{refused}/test").state == "open"
