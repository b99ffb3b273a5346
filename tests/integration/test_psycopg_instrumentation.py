"""The psycopg 3 instrumentation against the real PostgreSQL on 127.0.0.1 and the real SDK."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fake_clock import FakeClock
from instrumentation_harness import Instrumented
from instrumentation_harness import instrument as instrument_with
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from otel_resilience_instrumentation_psycopg import (
    PsycopgCircuitOpenError,
    PsycopgInstrumentor,
)
from psycopg import sql
from psycopg.types.json import Jsonb, set_json_dumps
from tcp_proxy import TcpProxy

from otel_resilience import BreakerPolicy, CircuitOpenError

HOST, PORT, DATABASE, USER = "127.0.0.1", 5432, "test", "postgres"
KEY = f"postgresql://{HOST}:{PORT}/{DATABASE}"
DURATION = "db.client.operation.duration"
ProxyFactory = Callable[[str, int], TcpProxy]


def connect(host: str = HOST, port: int = PORT, **options: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(host=host, port=port, dbname=DATABASE, user=USER, **options)


def instrument(
    policy: BreakerPolicy | None = None, retries: int = 2, **options: Any
) -> Iterator[Instrumented]:
    yield from instrument_with(PsycopgInstrumentor(), policy, retries, **options)


def quick_recovery(failures: int = 2) -> BreakerPolicy:
    return BreakerPolicy(
        consecutive_failures=failures,
        recovery_timeout=0.2,
        recovery_jitter=0,
        half_open_max_calls=1,
    )


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument()


@pytest.fixture
def table() -> Iterator[str]:
    """A table of its own for the test: ``(id int primary key, name text)``."""
    name = sql.Identifier(f"t_{uuid.uuid4().hex[:12]}")
    with suppress_instrumentation(), connect(autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, name text)").format(name))
    yield name.as_string()[1:-1]
    with suppress_instrumentation(), connect(autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE {}").format(name))


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def everything_recorded(instrumented: Instrumented) -> str:
    """Every span name, attribute, status, event, metric attribute and breaker name."""
    recorded: list[object] = []
    for span in instrumented.finished():
        recorded += [span.name, attributes(span), span.status.description]
        recorded += [(event.name, dict(event.attributes or {})) for event in span.events]
    recorded += [dict(point.attributes) for point in instrumented.duration_points(DURATION)]
    recorded += [breaker.name for breaker in instrumented.registry.breakers()]
    return repr(recorded)


def wait_until_gone(pid: int) -> None:
    with suppress_instrumentation(), connect(autocommit=True) as conn:
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            time.sleep(0.01)


# --- spans and metrics -------------------------------------------------------------------------


def test_a_statement_gets_a_client_span_and_a_duration_point(
    instrumented: Instrumented, table: str
) -> None:
    with connect(autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} (id, name) VALUES (%s, 'a-literal')", [7])
    (span,) = instrumented.finished()
    assert (span.name, span.kind) == (f"INSERT {table}", SpanKind.CLIENT)
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "otel_resilience.instrumentation.psycopg"
    assert attributes(span) == {
        "db.system.name": "postgresql",
        "db.namespace": DATABASE,
        "server.address": HOST,
        "server.port": PORT,
        "db.operation.name": "INSERT",
        "db.collection.name": table,
        "db.query.text": f"INSERT INTO {table} (id, name) VALUES (%s, ?)",
    }
    assert span.status.status_code == StatusCode.UNSET
    (point,) = instrumented.duration_points(DURATION)
    assert point.count == 1
    assert dict(point.attributes) == {
        key: value for key, value in attributes(span).items() if key != "db.query.text"
    }


def test_no_literal_parameter_or_password_is_recorded_anywhere(
    instrumented: Instrumented, table: str
) -> None:
    conninfo = f"postgresql://{USER}:hunter2@{HOST}:{PORT}/{DATABASE}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO {table} VALUES (1, %s), (2, 'literal-secret'), (3, $$dollar-secret$$)",
            ["parameter-secret"],
        )
        conn.cursor().executemany(
            f"INSERT INTO {table} VALUES (%s, %s)", [(10, "many-secret"), (11, "many-secret")]
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(f"INSERT INTO {table} VALUES (10, 'failed-secret')")
    recorded = everything_recorded(instrumented)
    assert len(instrumented.finished()) == 3
    assert "secret" not in recorded
    assert "hunter2" not in recorded


def test_conn_execute_executemany_and_every_cursor_kind_make_one_span_per_call(
    instrumented: Instrumented, table: str
) -> None:
    with connect() as conn:
        conn.execute(f"SELECT * FROM {table}")
        conn.cursor().executemany(f"INSERT INTO {table} VALUES (%s, %s)", [(1, "a"), (2, "b")])
        psycopg.ClientCursor(conn).execute(f"SELECT name FROM {table} WHERE id = %s", [1])
        with conn.cursor("named") as server_cursor:  # server-side: the DECLARE is the span
            server_cursor.execute(f"SELECT id FROM {table}")
            assert server_cursor.fetchall() == [(1,), (2,)]
    names = [span.name for span in instrumented.finished()]
    assert names == [
        f"SELECT {table}",
        f"INSERT {table}",
        f"SELECT {table}",
        f"SELECT {table}",
        "COMMIT test",  # leaving the block commits what the statements opened: a round trip
    ]
    # ClientCursor merges the value into the text when sending; the span has the placeholder.
    assert attributes(instrumented.finished()[2])["db.query.text"] == (
        f"SELECT name FROM {table} WHERE id = %s"
    )


def test_a_composed_query_is_rendered_and_its_literals_sanitised(
    instrumented: Instrumented, table: str
) -> None:
    query = sql.SQL("SELECT {column} FROM {table} WHERE name = {name} AND id > {id}").format(
        column=sql.Identifier("name"),
        table=sql.Identifier(table),
        name=sql.Literal("secret"),
        id=sql.Literal(987654321),
    )
    with connect() as conn:
        conn.execute(query)
    span, commit = instrumented.finished()
    assert commit.name == "COMMIT test"
    assert span.name == f"SELECT {table}"
    assert attributes(span)["db.collection.name"] == table
    assert attributes(span)["db.query.text"] == (
        f'SELECT "name" FROM "{table}" WHERE name = ? AND id > ?'
    )
    recorded = everything_recorded(instrumented)
    assert "secret" not in recorded
    assert "987654321" not in recorded


def test_application_errors_are_error_spans_but_not_breaker_failures(
    instrumented: Instrumented, table: str
) -> None:
    with connect(autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} VALUES (1, 'a')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(f"INSERT INTO {table} VALUES (1, 'b')")
        with pytest.raises(psycopg.errors.SyntaxError):
            conn.execute("SELEC 1")
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute(f"SELECT * FROM missing_{table}")
    failed = instrumented.finished()[1:]
    assert [attributes(span)["error.type"] for span in failed] == ["23505", "42601", "42P01"]
    assert all(span.status.status_code == StatusCode.ERROR for span in failed)
    error_types = sorted(
        dict(point.attributes).get("error.type", "")
        for point in instrumented.duration_points(DURATION)
    )
    assert error_types == ["", "23505", "42601", "42P01"]  # failed operations are timed too
    stats = instrumented.registry.get(KEY).stats
    assert (stats.successes, stats.failures) == (5, 0)  # the connect and four statements


def test_a_terminated_backend_is_an_unavailable_error(instrumented: Instrumented) -> None:
    with connect(autocommit=True) as victim, connect(autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid])
        wait_until_gone(victim.info.backend_pid)
        cursor = victim.cursor()
        with pytest.raises(psycopg.errors.AdminShutdown):
            cursor.execute("SELECT 1")
        assert victim.broken
        with pytest.raises(psycopg.OperationalError):  # the dead connection, used again
            cursor.execute("SELECT 1")
    first, again = instrumented.finished()[-2:]
    assert attributes(first)["error.type"] == "57P01"
    assert attributes(again)["error.type"] == "OperationalError"
    assert instrumented.registry.get(KEY).stats.failures == 1  # the server failed once


def test_a_connection_closed_by_the_program_is_not_a_breaker_failure(
    instrumented: Instrumented,
) -> None:
    conn = connect()
    cursor = conn.cursor()
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        cursor.execute("SELECT 1")
    stats = instrumented.registry.get(KEY).stats
    assert (stats.successes, stats.failures) == (1, 0)  # the connect; nothing else counted


# --- the breaker ---------------------------------------------------------------------------


def test_the_breaker_opens_when_the_server_goes_away_rejects_offline_and_recovers(
    tcp_proxy: ProxyFactory,
) -> None:
    proxy = tcp_proxy(HOST, PORT)
    key = f"postgresql://{HOST}:{proxy.port}/{DATABASE}"
    clock = FakeClock()
    for instrumented in instrument(quick_recovery(failures=2), retries=0, clock=clock):
        conn = connect(port=proxy.port, autocommit=True)
        conn.execute("SELECT 1")
        proxy.refuse()  # the server goes away: the open connection is cut, new ones refused
        with pytest.raises(psycopg.OperationalError) as cut:
            conn.execute("SELECT 1")
        assert not isinstance(cut.value, CircuitOpenError)
        with pytest.raises(psycopg.OperationalError) as refused:
            connect(port=proxy.port)
        assert not isinstance(refused.value, CircuitOpenError)
        breaker = instrumented.registry.get(key)
        assert breaker.state == "open"

        proxy.restore()  # the server is back, but the breaker does not know it yet
        accepted = proxy.connections_accepted
        with pytest.raises(psycopg.OperationalError) as rejected:
            connect(port=proxy.port)
        assert isinstance(rejected.value, PsycopgCircuitOpenError)
        assert isinstance(rejected.value, psycopg.Error)
        assert key in str(rejected.value)
        assert "next trial call in" in str(rejected.value)
        assert rejected.value.sqlstate is None
        assert proxy.connections_accepted == accepted  # nothing touched the network

        clock.advance(breaker.seconds_until_trial())  # one trial call is let through
        with connect(port=proxy.port, autocommit=True) as recovered:
            assert recovered.execute("SELECT 1").fetchone() == (1,)
        assert instrumented.registry.get(key).state == "closed"
        conn.close()


def test_an_open_breaker_rejects_statements_on_open_connections(
    instrumented: Instrumented, table: str
) -> None:
    with connect(autocommit=True) as conn:
        instrumented.registry.get(KEY).force_open()
        try:
            conn.execute(f"INSERT INTO {table} VALUES (1, 'never sent')")
        except psycopg.Error as error:  # an application's own except clause
            assert isinstance(error, PsycopgCircuitOpenError)
        else:
            pytest.fail("the statement was not rejected")
        instrumented.registry.get(KEY).reset()
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    rejected = instrumented.finished()[0]
    assert attributes(rejected)["error.type"] == "PsycopgCircuitOpenError"
    assert rejected.status.status_code == StatusCode.ERROR


def test_a_refused_connection_is_a_failure_and_is_retried(tcp_proxy: ProxyFactory) -> None:
    proxy = tcp_proxy(HOST, PORT)
    proxy.refuse()
    for instrumented in instrument(BreakerPolicy(consecutive_failures=10), retries=2):
        with pytest.raises(psycopg.OperationalError):
            connect(port=proxy.port)
        stats = instrumented.registry.get(f"postgresql://{HOST}:{proxy.port}/{DATABASE}").stats
        # the first attempt and two retries: one call, one failure (the breaker judges calls)
        assert (stats.failures, stats.ignored) == (1, 2)


@pytest.mark.parametrize(
    "login",
    [{"user": f"nobody_{uuid.uuid4().hex[:8]}"}, {"dbname": f"nowhere_{uuid.uuid4().hex[:8]}"}],
    ids=["unknown role", "unknown database"],
)
def test_a_refused_login_is_not_a_breaker_failure_and_is_not_retried(
    tcp_proxy: ProxyFactory, login: dict[str, str]
) -> None:
    proxy = tcp_proxy(HOST, PORT)
    for instrumented in instrument(BreakerPolicy(consecutive_failures=1), retries=2):
        params: dict[str, Any] = {
            "host": HOST,
            "port": proxy.port,
            "dbname": DATABASE,
            "user": USER,
            **login,
        }
        with pytest.raises(psycopg.OperationalError) as refused:
            psycopg.connect(**params)
        assert "does not exist" in str(refused.value)
        assert proxy.connections_accepted == 1  # not retried
        dbname = params["dbname"]
        stats = instrumented.registry.get(f"postgresql://{HOST}:{proxy.port}/{dbname}").stats
        assert (stats.successes, stats.failures) == (1, 0)


def test_connecting_and_statements_share_the_endpoints_breaker(
    instrumented: Instrumented, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGHOST", raising=False)
    monkeypatch.setenv("PGDATABASE", DATABASE)
    monkeypatch.setenv("PGUSER", USER)
    with psycopg.connect(f"postgresql://{USER}@{HOST}:{PORT}/{DATABASE}") as by_url:
        by_url.execute("SELECT 1")
    with psycopg.Connection.connect(host=HOST) as from_environment:
        from_environment.execute("SELECT 1")
    with psycopg.connect() as unix_socket:  # no host: libpq's default Unix-domain socket
        unix_socket.execute("SELECT 1")
    assert {breaker.name for breaker in instrumented.registry.breakers()} == {
        KEY,
        f"postgresql:///{DATABASE}",  # a Unix-domain socket: no host, no port
    }
    # two connects, two statements, and the two commits that leaving the blocks made
    assert instrumented.registry.get(KEY).stats.successes == 6
    assert instrumented.registry.get(f"postgresql:///{DATABASE}").stats.successes == 3
    socket_span = instrumented.finished()[-1]
    assert "server.address" not in attributes(socket_span)
    assert attributes(socket_span)["db.namespace"] == DATABASE


# --- retries -------------------------------------------------------------------------------


def timed_out_select(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.QueryCanceled):
        conn.execute("SELECT pg_sleep(1)")


def test_statements_are_not_retried_unless_configured() -> None:
    for instrumented in instrument(retries=2):
        with connect(autocommit=True, options="-c statement_timeout=50") as conn:
            timed_out_select(conn)
        (span,) = instrumented.finished()
        assert attributes(span)["error.type"] == "57014"
        assert instrumented.registry.get(KEY).stats.failures == 1  # a timeout: unavailable


def test_a_timed_out_read_only_statement_is_retried_when_configured() -> None:
    for instrumented in instrument(retries=2, retry_read_only=True):
        with connect(autocommit=True, options="-c statement_timeout=50") as conn:
            timed_out_select(conn)
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute("DO $$ BEGIN PERFORM pg_sleep(1); END $$")  # not read-only
        spans = instrumented.finished()
        assert [span.name for span in spans] == ["SELECT test"] * 3 + ["DO test"]
        assert {attributes(span)["error.type"] for span in spans} == {"57014"}


def in_a_transaction_after_a_first_statement(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT 1")
    timed_out_select(conn)


def in_a_transaction_block(conn: psycopg.Connection[Any]) -> None:
    conn.autocommit = True
    with conn.transaction():
        timed_out_select(conn)


def as_the_first_statement_with_autocommit_off(conn: psycopg.Connection[Any]) -> None:
    timed_out_select(conn)  # psycopg opens a transaction: a retry would find it aborted


@pytest.mark.parametrize(
    "run",
    [
        in_a_transaction_after_a_first_statement,
        in_a_transaction_block,
        as_the_first_statement_with_autocommit_off,
    ],
)
def test_no_retry_inside_a_transaction(run: Callable[[psycopg.Connection[Any]], None]) -> None:
    for instrumented in instrument(retries=2, retry_read_only=True):
        with connect(options="-c statement_timeout=50") as conn:
            run(conn)
        error_types = [attributes(span).get("error.type") for span in instrumented.finished()]
        assert error_types.count("57014") == 1


# --- async ---------------------------------------------------------------------------------


async def connect_async(
    host: str = HOST, port: int = PORT, **options: Any
) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(
        host=host, port=port, dbname=DATABASE, user=USER, **options
    )


def test_async_statements_are_spans(instrumented: Instrumented, table: str) -> None:
    async def main() -> None:
        async with await connect_async() as conn:
            await conn.execute(f"INSERT INTO {table} VALUES (%s, 'secret')", [1])
            cursor = conn.cursor()
            await cursor.executemany(f"INSERT INTO {table} VALUES (%s, %s)", [(2, "x"), (3, "y")])
            await conn.execute(
                sql.SQL("SELECT * FROM {} WHERE name = {}").format(
                    sql.Identifier(table), sql.Literal("secret")
                )
            )
            async with conn.cursor("named") as server_cursor:
                await server_cursor.execute(f"SELECT id FROM {table}")
                assert len(await server_cursor.fetchall()) == 3
            with pytest.raises(psycopg.errors.UndefinedTable):
                await conn.execute("SELECT * FROM no_such_table_here")

    asyncio.run(main())
    spans = instrumented.finished()
    assert [span.name for span in spans] == [
        f"INSERT {table}",
        f"INSERT {table}",
        f"SELECT {table}",
        f"SELECT {table}",
        "SELECT no_such_table_here",
        "COMMIT test",  # leaving the block commits (the server rolls the failed one back)
    ]
    assert attributes(spans[2])["db.query.text"] == f'SELECT * FROM "{table}" WHERE name = ?'
    assert attributes(spans[-2])["error.type"] == "42P01"
    assert "secret" not in everything_recorded(instrumented)
    # One point per operation, table and error.type: INSERT t, SELECT t, failed SELECT,
    # ROLLBACK.
    assert sum(point.count for point in instrumented.duration_points(DURATION)) == 6
    assert len(instrumented.duration_points(DURATION)) == 4


def test_async_connect_and_statements_go_through_the_breaker(tcp_proxy: ProxyFactory) -> None:
    proxy = tcp_proxy(HOST, PORT)

    async def main() -> None:
        conn = await connect_async(port=proxy.port, autocommit=True)
        await conn.execute("SELECT 1")
        proxy.refuse()
        with pytest.raises(psycopg.OperationalError):
            await conn.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError):
            await connect_async(port=proxy.port)
        proxy.restore()
        accepted = proxy.connections_accepted
        with pytest.raises(PsycopgCircuitOpenError):
            await connect_async(port=proxy.port)
        assert proxy.connections_accepted == accepted
        clock.advance(instrumented.registry.get(key).seconds_until_trial())
        async with await connect_async(port=proxy.port, autocommit=True) as recovered:
            await recovered.execute("SELECT 1")
            instrumented.registry.get(key).force_open()
            with pytest.raises(PsycopgCircuitOpenError):
                await recovered.execute("SELECT 1")
        await conn.close()

    key = f"postgresql://{HOST}:{proxy.port}/{DATABASE}"
    clock = FakeClock()
    for instrumented in instrument(quick_recovery(failures=2), retries=0, clock=clock):
        asyncio.run(main())
        error_types = [attributes(span).get("error.type") for span in instrumented.finished()]
        assert error_types[0] is None
        assert error_types[-1] == "PsycopgCircuitOpenError"


def test_async_timed_out_read_only_statement_is_retried_when_configured() -> None:
    async def main() -> None:
        async with await connect_async(autocommit=True, options="-c statement_timeout=50") as conn:
            with pytest.raises(psycopg.errors.QueryCanceled):
                await conn.execute("SELECT pg_sleep(1)")

    for instrumented in instrument(retries=2, retry_read_only=True):
        asyncio.run(main())
        assert len(instrumented.finished()) == 3


# --- the instrumentation itself ----------------------------------------------------------------


def test_psycopg_own_functions_take_an_instrumented_connection(
    instrumented: Instrumented,
) -> None:
    with connect() as conn:
        assert type(conn) is psycopg.Connection  # patched in place: no proxy
        set_json_dumps(lambda value: json.dumps(value, sort_keys=True), context=conn)
        cursor = conn.execute("SELECT %s::jsonb", [Jsonb({"b": 1, "a": 2})])
        assert cursor.fetchone() == ({"a": 2, "b": 1},)
        assert conn.adapters is not None
    assert [span.name for span in instrumented.finished()] == ["SELECT test", "COMMIT test"]


def test_suppressed_statements_pass_through(instrumented: Instrumented) -> None:
    with suppress_instrumentation(), connect() as conn:
        conn.execute("SELECT 1")
    assert instrumented.finished() == []
    assert len(instrumented.registry) == 0


def test_resilience_can_be_turned_off_while_telemetry_stays() -> None:
    for instrumented in instrument(resilience=False):
        with connect() as conn:
            conn.execute("SELECT 1")
        assert [span.name for span in instrumented.finished()] == ["SELECT test", "COMMIT test"]
        assert len(instrumented.registry) == 0


def test_uninstrument_restores_the_originals() -> None:
    originals = {
        "psycopg.connect": psycopg.connect,
        "Connection.connect": vars(psycopg.Connection)["connect"],
        "AsyncConnection.connect": vars(psycopg.AsyncConnection)["connect"],
        "Cursor.execute": psycopg.Cursor.execute,
        "Cursor.executemany": psycopg.Cursor.executemany,
        "ServerCursor.execute": psycopg.ServerCursor.execute,
        "AsyncCursor.execute": psycopg.AsyncCursor.execute,
        "AsyncCursor.executemany": psycopg.AsyncCursor.executemany,
        "AsyncServerCursor.execute": psycopg.AsyncServerCursor.execute,
    }

    def current() -> dict[str, object]:
        return {
            "psycopg.connect": psycopg.connect,
            "Connection.connect": vars(psycopg.Connection)["connect"],
            "AsyncConnection.connect": vars(psycopg.AsyncConnection)["connect"],
            "Cursor.execute": psycopg.Cursor.execute,
            "Cursor.executemany": psycopg.Cursor.executemany,
            "ServerCursor.execute": psycopg.ServerCursor.execute,
            "AsyncCursor.execute": psycopg.AsyncCursor.execute,
            "AsyncCursor.executemany": psycopg.AsyncCursor.executemany,
            "AsyncServerCursor.execute": psycopg.AsyncServerCursor.execute,
        }

    for _instrumented in instrument():
        assert all(current()[name] is not original for name, original in originals.items())
    assert all(current()[name] is original for name, original in originals.items())

    class Subclass(psycopg.Connection[Any]):
        pass

    with Subclass.connect(host=HOST, dbname=DATABASE, user=USER) as conn:
        assert type(conn) is Subclass  # the classmethod, not a method bound to Connection
        conn.execute("SELECT 1")
    assert _instrumented.finished() == []
