"""The psycopg2 instrumentation against the real PostgreSQL on 127.0.0.1:5432."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pytest
from fake_clock import FakeClock
from instrumentation_harness import Instrumented
from instrumentation_harness import instrument as instrument_with
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind, StatusCode
from otel_resilience_instrumentation_psycopg2 import (
    Psycopg2CircuitOpenError,
    Psycopg2Instrumentor,
)
from tcp_proxy import TcpProxy

from otel_resilience import BreakerPolicy, CircuitOpenError

DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
ENDPOINT = "postgresql://127.0.0.1:5432/test"
DURATION = "db.client.operation.duration"
QUICK_RECOVERY = BreakerPolicy(
    consecutive_failures=2, recovery_timeout=0.2, recovery_jitter=0, half_open_max_calls=1
)


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument_with(Psycopg2Instrumentor(), retries=0)


@pytest.fixture
def table() -> Iterator[str]:
    """A fresh table, made and dropped by an uninstrumented connection."""
    name = f"accounts_{uuid.uuid4().hex[:10]}"
    with suppress_instrumentation():
        admin = psycopg2.connect(DSN)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE TABLE {name} (id serial PRIMARY KEY, email text UNIQUE)")
    yield name
    with suppress_instrumentation(), admin.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
    admin.close()


def everything_recorded(instrumented: Instrumented) -> str:
    spans = " ".join(f"{s.name} {dict(s.attributes or {})}" for s in instrumented.finished())
    points = " ".join(repr(dict(p.attributes)) for p in instrumented.duration_points(DURATION))
    breakers = " ".join(b.name for b in instrumented.registry.breakers())
    return f"{spans} {points} {breakers}"


def test_statements_get_spans_and_duration_points(instrumented: Instrumented, table: str) -> None:
    connection = psycopg2.connect(DSN)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (email) VALUES (%s)", ("alice@example.com",))
        cursor.execute(f"SELECT id FROM {table} WHERE email = 'alice@example.com'")
        assert cursor.fetchone() == (1,)
    connection.commit()
    connection.close()

    insert, select, commit = instrumented.finished()
    assert commit.name == "COMMIT test"  # a round trip of its own
    assert select.name == f"SELECT {table}"
    assert select.kind is SpanKind.CLIENT
    assert dict(select.attributes or {}) == {
        "db.system.name": "postgresql",
        "db.namespace": "test",
        "server.address": "127.0.0.1",
        "server.port": 5432,
        "db.operation.name": "SELECT",
        "db.collection.name": table,
        "db.query.text": f"SELECT id FROM {table} WHERE email = ?",
    }
    assert insert.attributes is not None
    assert insert.attributes["db.query.text"] == f"INSERT INTO {table} (email) VALUES (%s)"
    assert "alice@example.com" not in everything_recorded(instrumented)
    points = instrumented.duration_points(DURATION)
    assert sorted(p.attributes["db.operation.name"] for p in points) == [
        "COMMIT",
        "INSERT",
        "SELECT",
    ]
    assert all(p.attributes["db.system.name"] == "postgresql" for p in points)


def test_the_traced_connection_works_with_psycopg2s_own_functions(
    instrumented: Instrumented, table: str
) -> None:
    connection = psycopg2.connect(DSN, cursor_factory=psycopg2.extras.RealDictCursor)
    assert isinstance(connection, psycopg2.extensions.connection)
    psycopg2.extras.register_uuid(conn_or_curs=connection)  # type: ignore[no-untyped-call]
    psycopg2.extensions.register_type(psycopg2.extensions.UNICODE, connection)
    with connection.cursor() as cursor:
        psycopg2.extras.execute_values(
            cursor, f"INSERT INTO {table} (email) VALUES %s", [("a@example.com",), ("b@x.io",)]
        )
        cursor.copy_expert(f"COPY {table} (email) FROM STDIN", io.StringIO("c@example.com\n"))
        cursor.execute(f"SELECT email FROM {table} ORDER BY id")
        rows: list[Any] = cursor.fetchall()
        assert [row["email"] for row in rows] == [
            "a@example.com",
            "b@x.io",
            "c@example.com",
        ]
        cursor.execute("SELECT %s::uuid", (uuid.UUID(int=1),))
        row: Any = cursor.fetchone()
        assert isinstance(row["uuid"], uuid.UUID)
    with connection.cursor(cursor_factory=psycopg2.extras.NamedTupleCursor) as named:
        named.execute(f"SELECT COUNT(*) AS n FROM {table}")  # type: ignore[no-untyped-call]
        counted: Any = named.fetchone()
        assert counted.n == 3
    connection.rollback()
    connection.close()
    names = [span.name for span in instrumented.finished()]
    assert names == [
        f"INSERT {table}",
        f"COPY {table}",
        f"SELECT {table}",
        "SELECT test",
        f"SELECT {table}",
        "ROLLBACK test",
    ]
    assert "a@example.com" not in everything_recorded(instrumented)


def test_the_applications_errors_are_error_spans_but_not_breaker_failures(
    instrumented: Instrumented, table: str
) -> None:
    connection = psycopg2.connect(DSN)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (email) VALUES ('dup@example.com')")
        with pytest.raises(psycopg2.errors.UniqueViolation):
            cursor.execute(f"INSERT INTO {table} (email) VALUES ('dup@example.com')")
        with pytest.raises(psycopg2.errors.SyntaxError):
            cursor.execute("SELEC 1")
        with pytest.raises(psycopg2.errors.UndefinedTable):
            cursor.execute("SELECT * FROM no_such_table")
    connection.close()
    spans = instrumented.finished()
    assert [s.attributes["error.type"] for s in spans[1:] if s.attributes] == [
        "23505",
        "42601",
        "42P01",
    ]
    assert all(s.status.status_code is StatusCode.ERROR for s in spans[1:])
    failed_points = [
        p for p in instrumented.duration_points(DURATION) if "error.type" in p.attributes
    ]
    assert len(failed_points) == 3
    breaker = instrumented.registry.get(ENDPOINT)
    assert breaker.stats.failures == 0
    assert breaker.state in ("closed",)  # `in`: mypy narrowed the state above


def test_an_unknown_role_is_not_a_failure_and_the_password_stays_secret(
    instrumented: Instrumented, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(psycopg2.OperationalError, match="does not exist"):
        psycopg2.connect(DSN.replace("user=postgres", "user=nobody password=hunter2-secret"))
    breaker = instrumented.registry.get(ENDPOINT)
    assert breaker.stats.failures == 0
    assert breaker.stats.successes == 1  # the server answered
    assert "hunter2-secret" not in everything_recorded(instrumented)
    assert "hunter2-secret" not in caplog.text


def test_a_terminated_backend_is_a_failure(instrumented: Instrumented) -> None:
    connection = psycopg2.connect(DSN)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone() or (None,)
    killer = psycopg2.connect(DSN)
    killer.autocommit = True
    with killer.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    killer.close()
    with pytest.raises(psycopg2.OperationalError), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert instrumented.registry.get(ENDPOINT).stats.failures == 1


def test_the_breaker_opens_rejects_without_connecting_and_recovers(
    tcp_proxy: Callable[[str, int], TcpProxy],
) -> None:
    proxy = tcp_proxy("127.0.0.1", 5432)
    dsn = f"host=127.0.0.1 port={proxy.port} dbname=test user=postgres connect_timeout=2"
    clock = FakeClock()
    for instrumented in instrument_with(
        Psycopg2Instrumentor(), QUICK_RECOVERY, retries=0, clock=clock
    ):
        connection = psycopg2.connect(dsn)
        connection.autocommit = True
        breaker = instrumented.registry.get(f"postgresql://127.0.0.1:{proxy.port}/test")
        proxy.refuse()  # the server goes away: open connections cut, new ones refused
        with pytest.raises(psycopg2.OperationalError), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(dsn)
        assert breaker.state == "open"

        accepted = proxy.connections_accepted
        proxy.restore()
        try:
            psycopg2.connect(dsn)
        except psycopg2.OperationalError as error:  # the program's own except clause
            rejected = error
        assert isinstance(rejected, Psycopg2CircuitOpenError)
        assert isinstance(rejected, CircuitOpenError)
        assert f"postgresql://127.0.0.1:{proxy.port}/test" in str(rejected)
        assert proxy.connections_accepted == accepted  # nothing reached the network

        clock.advance(breaker.seconds_until_trial())  # the next connect is the half-open trial
        again = psycopg2.connect(dsn)
        assert breaker.state in ("closed",)  # `in`: mypy narrowed the state above
        again.close()


def test_connecting_is_retried_while_the_server_is_unavailable(
    tcp_proxy: Callable[[str, int], TcpProxy],
) -> None:
    proxy = tcp_proxy("127.0.0.1", 5432)
    proxy.refuse()
    dsn = f"host=127.0.0.1 port={proxy.port} dbname=test user=postgres"
    for instrumented in instrument_with(
        Psycopg2Instrumentor(), BreakerPolicy(consecutive_failures=10), retries=2
    ):
        with pytest.raises(psycopg2.OperationalError, match="refused"):
            psycopg2.connect(dsn)
        breaker = instrumented.registry.get(f"postgresql://127.0.0.1:{proxy.port}/test")
        # the first attempt and two retries: one call, one failure (the breaker judges calls)
        assert (breaker.stats.failures, breaker.stats.ignored) == (1, 2)


def test_statements_are_never_retried_inside_a_transaction(table: str) -> None:
    timeout = "SET statement_timeout = 50"
    for instrumented in instrument_with(
        Psycopg2Instrumentor(),
        BreakerPolicy(consecutive_failures=10),
        retries=2,
        retry_read_only=True,
    ):
        connection = psycopg2.connect(DSN)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(timeout)
            instrumented.spans.clear()
            with pytest.raises(psycopg2.errors.QueryCanceled):
                cursor.execute("SELECT pg_sleep(1)")
        # outside a transaction a read-only statement cancelled on a timeout is retried
        assert [s.name for s in instrumented.finished()] == ["SELECT test"] * 3

        connection.autocommit = False  # every statement now runs in a transaction
        instrumented.spans.clear()
        with pytest.raises(psycopg2.errors.QueryCanceled), connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(1)")
        assert len(instrumented.finished()) == 1
        connection.rollback()
        connection.close()


def test_a_statement_is_not_retried_on_a_connection_that_was_lost(
    tcp_proxy: Callable[[str, int], TcpProxy],
) -> None:
    """psycopg2 does not reconnect: a retry could only fail again, hiding the real error."""
    proxy = tcp_proxy("127.0.0.1", 5432)
    dsn = f"host=127.0.0.1 port={proxy.port} dbname=test user=postgres"
    for instrumented in instrument_with(
        Psycopg2Instrumentor(),
        BreakerPolicy(consecutive_failures=10),
        retries=2,
        retry_read_only=True,
    ):
        connection = psycopg2.connect(dsn)
        connection.autocommit = True
        proxy.cut()
        with pytest.raises(psycopg2.OperationalError), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert [span.name for span in instrumented.finished()] == ["SELECT test"]
        connection.close()


def test_uninstrument_restores_the_original_connect() -> None:
    original = psycopg2.connect
    instrumentor = Psycopg2Instrumentor()
    instrumentor.instrument()
    assert psycopg2.connect is not original
    instrumentor.uninstrument()
    assert psycopg2.connect is original
    connection = psycopg2.connect(DSN)
    assert type(connection) is psycopg2.extensions.connection
    connection.close()
