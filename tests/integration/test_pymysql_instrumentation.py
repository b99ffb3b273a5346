"""The PyMySQL instrumentation against the real MariaDB on 127.0.0.1:3306 and the real SDK."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pymysql.connections
import pymysql.cursors
import pytest
from fake_clock import FakeClock
from instrumentation_harness import Instrumented
from instrumentation_harness import instrument as instrument_with
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from otel_resilience_instrumentation_pymysql import (
    PyMySQLCircuitOpenError,
    PyMySQLInstrumentor,
)
from otlp_receiver import unused_tcp_port
from tcp_proxy import TcpProxy

from otel_resilience import BreakerPolicy, CircuitOpenError

DURATION = "db.client.operation.duration"
HOST, PORT, DATABASE = "127.0.0.1", 3306, "test"
KEY = f"mysql://{HOST}:{PORT}/{DATABASE}"
SCOPE = "otel_resilience.instrumentation.pymysql"
# Quick to open, quick to try again, closed by one successful trial.
FLAKY = BreakerPolicy(
    consecutive_failures=2, recovery_timeout=0.3, recovery_jitter=0, half_open_max_calls=1
)
# Never opens: for tests that count failures.
PATIENT = BreakerPolicy(consecutive_failures=None, failure_rate_threshold=None)
# MariaDB interrupts a statement after this many seconds; the error means "unavailable".
STATEMENT_TIMEOUT = "SET SESSION max_statement_time = 0.05"
SLOW_SELECT = "SELECT SLEEP(1)"

ProxyFactory = Callable[[str, int], TcpProxy]


def connect(port: int = PORT, **options: Any) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host=HOST, port=port, user="root", password="", database=DATABASE, **options
    )


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def everything_recorded(instrumented: Instrumented) -> str:
    """Span names, attributes and statuses, all metrics and breaker names, as one text."""
    spans = [f"{s.name} {attributes(s)} {s.status.description}" for s in instrumented.finished()]
    data = instrumented.metrics.get_metrics_data()
    metrics = data.to_json() if data is not None else ""
    names = [breaker.name for breaker in instrumented.registry.breakers()]
    return " ".join([*spans, metrics, *names])


@pytest.fixture
def table() -> Iterator[str]:
    """A table no other test uses, with a primary key and a note; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex}"
    with suppress_instrumentation(), connect(autocommit=True) as setup, setup.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, note VARCHAR(100))")
    yield name
    with (
        suppress_instrumentation(),
        connect(autocommit=True) as cleanup,
        cleanup.cursor() as cursor,
    ):
        cursor.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument_with(PyMySQLInstrumentor())


def test_statements_get_client_spans_and_duration_points_without_values(
    instrumented: Instrumented, table: str
) -> None:
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (id, note) VALUES (%s, %s)", (1, "param-secret-4242"))
        cursor.execute(f"SELECT id FROM {table} WHERE note = 'inline-secret-7777' OR id = 1")
        assert cursor.fetchall() == ((1,),)

    insert, select = instrumented.finished()
    assert (insert.name, select.name) == (f"INSERT {table}", f"SELECT {table}")
    for span, operation in ((insert, "INSERT"), (select, "SELECT")):
        assert span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.UNSET
        assert span.instrumentation_scope is not None
        assert span.instrumentation_scope.name == SCOPE
        assert {
            key: value for key, value in attributes(span).items() if key != "db.query.text"
        } == {
            "db.system.name": "mariadb",
            "db.namespace": DATABASE,
            "db.operation.name": operation,
            "db.collection.name": table,
            "server.address": HOST,
            "server.port": PORT,
        }
    assert attributes(insert)["db.query.text"] == (
        f"INSERT INTO {table} (id, note) VALUES (%s, %s)"
    )
    assert attributes(select)["db.query.text"] == (
        f"SELECT id FROM {table} WHERE note = ? OR id = ?"
    )
    points = instrumented.duration_points(DURATION)
    assert sorted(dict(p.attributes)["db.operation.name"] for p in points) == [
        "INSERT",
        "SELECT",
    ]
    assert all(p.count == 1 and "db.query.text" not in dict(p.attributes) for p in points)
    recorded = everything_recorded(instrumented)
    assert "param-secret" not in recorded
    assert "inline-secret" not in recorded


def test_errors_the_server_answers_are_error_spans_but_no_breaker_failures(
    instrumented: Instrumented, table: str
) -> None:
    with connect(autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (id) VALUES (1)")
        with pytest.raises(pymysql.err.IntegrityError):
            cursor.execute(f"INSERT INTO {table} (id) VALUES (1)")
        with pytest.raises(pymysql.err.ProgrammingError):
            cursor.execute(f"SELECT * FROM {table}_missing")
        with pytest.raises(pymysql.err.ProgrammingError):
            cursor.execute("SELEC 1")

    failed = instrumented.finished()[1:]
    assert [attributes(s)["error.type"] for s in failed] == ["23000", "42S02", "42000"]
    assert all(s.status.status_code is StatusCode.ERROR for s in failed)
    breaker = instrumented.registry.get(KEY)
    assert breaker.state == "closed"
    stats = breaker.stats
    assert (stats.successes, stats.failures) == (5, 0)  # the connect and four statements
    error_points = [
        p for p in instrumented.duration_points(DURATION) if "error.type" in dict(p.attributes)
    ]
    assert sorted(dict(p.attributes)["error.type"] for p in error_points) == [
        "23000",
        "42000",
        "42S02",
    ]


def test_wrong_credentials_are_not_a_failure_and_the_password_appears_nowhere(
    instrumented: Instrumented, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = f"hunter2-{uuid.uuid4().hex}"
    for user in ("root", f"nobody_{uuid.uuid4().hex[:8]}"):
        with pytest.raises(pymysql.err.OperationalError) as denied:
            pymysql.connect(host=HOST, port=PORT, user=user, password=password, database=DATABASE)
        # access denied (1698: MariaDB's answer for root when its unix_socket plugin is
        # tried first): either way the server answered
        assert denied.value.args[0] in (1045, 1698)
        assert not isinstance(denied.value, CircuitOpenError)
    breaker = instrumented.registry.get(KEY)
    assert (breaker.stats.calls, breaker.stats.failures) == (2, 0)  # and not retried
    assert password not in everything_recorded(instrumented)
    assert password not in caplog.text


def test_a_statement_is_not_retried_on_a_connection_that_was_lost(
    tcp_proxy: ProxyFactory,
) -> None:
    """PyMySQL does not reconnect: a retry could only fail again, hiding the real error."""
    proxy = tcp_proxy(HOST, PORT)
    for instrumented in instrument_with(
        PyMySQLInstrumentor(), PATIENT, retries=2, retry_read_only=True
    ):
        connection = connect(proxy.port, autocommit=True)
        proxy.cut()
        with pytest.raises(pymysql.err.OperationalError) as lost, connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert lost.value.args[0] in (2006, 2013)
        assert [span.name for span in instrumented.finished()] == ["SELECT test"]


def test_an_unknown_database_is_not_a_failure(instrumented: Instrumented) -> None:
    database = f"missing_{uuid.uuid4().hex}"
    with pytest.raises(pymysql.err.OperationalError) as unknown:
        pymysql.connect(host=HOST, port=PORT, user="root", password="", database=database)
    assert unknown.value.args[0] == 1049
    breaker = instrumented.registry.get(f"mysql://{HOST}:{PORT}/{database}")
    assert (breaker.stats.calls, breaker.stats.successes) == (1, 1)


def test_the_breaker_opens_when_the_server_goes_away_and_closes_when_it_is_back(
    tcp_proxy: ProxyFactory,
) -> None:
    proxy = tcp_proxy(HOST, PORT)
    clock = FakeClock()
    for instrumented in instrument_with(PyMySQLInstrumentor(), FLAKY, retries=0, clock=clock):
        connection = connect(proxy.port)
        cursor = connection.cursor()
        cursor.execute("SELECT 1")
        breaker = instrumented.registry.get(f"mysql://{HOST}:{proxy.port}/{DATABASE}")

        proxy.refuse()
        with pytest.raises(pymysql.err.OperationalError) as lost:
            cursor.execute("SELECT 1")
        assert lost.value.args[0] in (2006, 2013)
        with pytest.raises(pymysql.err.OperationalError) as refused:
            connect(proxy.port)
        assert refused.value.args[0] == 2003
        assert breaker.state == "open"
        assert attributes(instrumented.finished()[-1])["error.type"] == "OperationalError"

        proxy.restore()  # back, but the breaker does not know yet
        accepted = proxy.connections_accepted
        rejected: Exception | None = None
        try:
            connect(proxy.port)
        except pymysql.err.OperationalError as error:  # the program's own except clause
            rejected = error
        assert isinstance(rejected, PyMySQLCircuitOpenError)
        assert isinstance(rejected, CircuitOpenError)
        assert f"mysql://{HOST}:{proxy.port}/{DATABASE}" in str(rejected)
        assert "next trial call in" in str(rejected)
        assert rejected.sqlstate is None  # what code reading PyMySQL errors may look at
        with pytest.raises(pymysql.MySQLError) as statement_rejected:
            cursor.execute("SELECT 1")
        assert isinstance(statement_rejected.value, PyMySQLCircuitOpenError)
        last = instrumented.finished()[-1]
        assert (last.name, attributes(last)["error.type"]) == (
            "SELECT test",
            "PyMySQLCircuitOpenError",
        )
        assert proxy.connections_accepted == accepted  # nothing was sent

        spans = len(instrumented.finished())
        clock.advance(breaker.seconds_until_trial())
        # The trial call; the statements PyMySQL runs while connecting are part of it.
        with (
            connect(proxy.port, init_command="SET @trial = 1", sql_mode="ANSI") as fresh,
            fresh.cursor() as fresh_cursor,
        ):
            assert breaker.stats.consecutive_failures == 0
            assert breaker.state in ("closed",)  # (not narrowed to "open" by mypy)
            fresh_cursor.execute("SELECT 2")
            assert fresh_cursor.fetchall() == ((2,),)
        assert proxy.connections_accepted == accepted + 1
        assert [s.name for s in instrumented.finished()[spans:]] == ["SELECT test"]


def test_a_connection_killed_mid_session_is_one_failure(instrumented: Instrumented) -> None:
    connection = connect()
    cursor = connection.cursor()
    cursor.execute("SELECT CONNECTION_ID()")
    (session,) = cursor.fetchone()
    with suppress_instrumentation(), connect(autocommit=True) as admin, admin.cursor() as kill:
        kill.execute(f"KILL {session}")

    with pytest.raises(pymysql.err.OperationalError) as lost:
        cursor.execute("SELECT 1")
    assert lost.value.args[0] in (2006, 2013)
    # PyMySQL has closed the connection: using it again fails before anything is sent, and
    # is the program's doing; the loss itself was counted once.
    with pytest.raises(pymysql.err.InterfaceError):
        cursor.execute("SELECT 1")
    with pytest.raises(pymysql.err.InterfaceError):
        connection.rollback()
    stats = instrumented.registry.get(KEY).stats
    assert (stats.successes, stats.failures, stats.ignored) == (2, 1, 2)
    assert [attributes(s)["error.type"] for s in instrumented.finished()[1:]] == [
        "OperationalError",
        "InterfaceError",
        "InterfaceError",
    ]


def test_connecting_is_retried_when_the_server_is_unavailable(tcp_proxy: ProxyFactory) -> None:
    proxy = tcp_proxy(HOST, PORT)
    proxy.refuse()
    for instrumented in instrument_with(PyMySQLInstrumentor(), PATIENT, retries=2):
        with pytest.raises(pymysql.err.OperationalError) as refused:
            connect(proxy.port)
        assert refused.value.args[0] == 2003
        breaker = instrumented.registry.get(f"mysql://{HOST}:{proxy.port}/{DATABASE}")
        # three attempts, one call: one failure (the breaker judges calls)
        assert (breaker.stats.calls, breaker.stats.failures) == (3, 1)

        proxy.restore()
        with connect(proxy.port) as connection:
            assert breaker.stats.successes == 1
            proxy.cut()
            with pytest.warns(DeprecationWarning):  # PyMySQL deprecates it, programs use it
                connection.ping(reconnect=True)  # reconnects through the same hook
        assert (breaker.stats.successes, breaker.stats.failures) == (2, 1)
        assert proxy.connections_accepted == 2
        assert instrumented.finished() == []  # connecting makes no span


def test_statements_are_not_retried_unless_configured() -> None:
    for instrumented in instrument_with(PyMySQLInstrumentor(), PATIENT, retry_read_only=False):
        with connect(autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(STATEMENT_TIMEOUT)
            with pytest.raises(pymysql.err.OperationalError) as interrupted:
                cursor.execute(SLOW_SELECT)
            assert interrupted.value.args[0] == 1969  # max_statement_time exceeded
        assert [s.name for s in instrumented.finished()] == ["SET test", "SELECT test"]
        assert instrumented.registry.get(KEY).stats.failures == 1


def test_a_select_outside_a_transaction_is_retried_only_when_the_server_is_unavailable(
    table: str,
) -> None:
    for instrumented in instrument_with(PyMySQLInstrumentor(), PATIENT, retry_read_only=True):
        with connect(autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(STATEMENT_TIMEOUT)
            with pytest.raises(pymysql.err.OperationalError):
                cursor.execute(SLOW_SELECT)
            with pytest.raises(pymysql.err.ProgrammingError):
                cursor.execute(f"SELECT * FROM {table}_missing")
            with pytest.raises(pymysql.err.OperationalError):
                cursor.execute(f"INSERT INTO {table} (id) SELECT SLEEP(1)")  # a write

        spans = instrumented.finished()[1:]
        assert [attributes(s).get("error.type") for s in spans] == [
            "70100",  # the first attempt and two retries, all interrupted
            "70100",
            "70100",
            "42S02",  # the server answered: not retried
            "70100",  # a write: never retried
        ]
        # two calls failed: the retried SELECT (one failure for its three attempts), the write
        assert instrumented.registry.get(KEY).stats.failures == 2


def test_a_statement_inside_a_transaction_is_never_retried() -> None:
    for instrumented in instrument_with(PyMySQLInstrumentor(), PATIENT, retry_read_only=True):
        with connect(autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(STATEMENT_TIMEOUT)
            connection.begin()
            with pytest.raises(pymysql.err.OperationalError):
                cursor.execute(SLOW_SELECT)
            connection.rollback()
        # PyMySQL's default: no autocommit, so the first statement opens a transaction.
        with connect() as connection, connection.cursor() as cursor:
            cursor.execute(STATEMENT_TIMEOUT)  # not read-only; now in a transaction
            with pytest.raises(pymysql.err.OperationalError):
                cursor.execute(SLOW_SELECT)
            connection.commit()
            with pytest.raises(pymysql.err.OperationalError):
                cursor.execute(SLOW_SELECT)  # first after the commit: retried

        names = [s.name for s in instrumented.finished()]
        assert names == [
            "SET test",
            "BEGIN test",
            "SELECT test",
            "ROLLBACK test",
            "SET test",
            "SELECT test",
            "COMMIT test",
            "SELECT test",
            "SELECT test",
            "SELECT test",
        ]


def test_executemany_is_one_span_whether_or_not_pymysql_batches_it(
    instrumented: Instrumented, table: str
) -> None:
    with connect(autocommit=True) as connection, connection.cursor() as cursor:
        cursor.executemany(  # one multi-row INSERT on the wire
            f"INSERT INTO {table} (id, note) VALUES (%s, %s)", [(1, "a"), (2, "b"), (3, "c")]
        )
        cursor.executemany(  # one execute() per row inside PyMySQL
            f"UPDATE {table} SET note = %s WHERE id = %s", [("x", 1), ("y", 2)]
        )
        cursor.execute(f"SELECT note FROM {table} ORDER BY id")
        assert cursor.fetchall() == (("x",), ("y",), ("c",))
    assert [s.name for s in instrumented.finished()] == [
        f"INSERT {table}",
        f"UPDATE {table}",
        f"SELECT {table}",
    ]


@pytest.mark.parametrize(
    "cursor_class",
    [
        pymysql.cursors.Cursor,
        pymysql.cursors.DictCursor,
        pymysql.cursors.SSCursor,
        pymysql.cursors.SSDictCursor,
    ],
)
def test_every_cursor_class_is_traced_once(
    instrumented: Instrumented, cursor_class: type[pymysql.cursors.Cursor]
) -> None:
    with connect(cursorclass=cursor_class) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT 1 AS one")
        assert len(cursor.fetchall()) == 1
    (span,) = instrumented.finished()
    assert span.name == "SELECT test"


def test_callproc_commit_and_rollback_are_spans(instrumented: Instrumented) -> None:
    procedure = f"p_{uuid.uuid4().hex}"
    with suppress_instrumentation(), connect(autocommit=True) as setup, setup.cursor() as cursor:
        cursor.execute(f"CREATE PROCEDURE {procedure}(IN secret VARCHAR(50)) SELECT 1")
    try:
        with connect() as connection, connection.cursor() as cursor:
            cursor.callproc(procedure, ("proc-secret-1234",))
            while cursor.nextset():
                pass
            connection.commit()
            connection.rollback()
    finally:
        with suppress_instrumentation(), connect(autocommit=True) as cleanup:
            cleanup.cursor().execute(f"DROP PROCEDURE {procedure}")
    call, commit, rollback = instrumented.finished()
    assert call.name == f"CALL {procedure}"
    assert attributes(call)["db.operation.name"] == "CALL"
    assert attributes(call)["db.stored_procedure.name"] == procedure
    assert attributes(commit)["db.query.text"] == "COMMIT"
    assert (commit.name, rollback.name) == ("COMMIT test", "ROLLBACK test")
    assert "proc-secret" not in everything_recorded(instrumented)


def test_suppressed_statements_pass_through(instrumented: Instrumented) -> None:
    with suppress_instrumentation(), connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert instrumented.finished() == []
    assert len(instrumented.registry) == 0


def test_resilience_can_be_turned_off_while_telemetry_stays() -> None:
    port = unused_tcp_port()
    for instrumented in instrument_with(PyMySQLInstrumentor(), FLAKY, resilience=False):
        for _ in range(3):
            with pytest.raises(pymysql.err.OperationalError) as refused:
                connect(port)
            assert refused.value.args[0] == 2003  # never rejected
        with connect() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert [s.name for s in instrumented.finished()] == ["SELECT test"]
        assert len(instrumented.registry) == 0


def test_uninstrument_restores_the_originals_exactly() -> None:
    classes = [
        pymysql.cursors.Cursor,
        pymysql.cursors.DictCursor,
        pymysql.cursors.SSCursor,
        pymysql.cursors.SSDictCursor,
        pymysql.connections.Connection,
    ]
    before = {cls: dict(vars(cls)) for cls in classes}
    original_execute = pymysql.cursors.Cursor.execute
    for instrumented in instrument_with(PyMySQLInstrumentor()):
        assert pymysql.cursors.Cursor.execute is not original_execute
        assert "execute" not in vars(pymysql.cursors.SSCursor)  # inherited, patched once
        with connect() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert len(instrumented.finished()) == 1
    for cls in classes:
        after = dict(vars(cls))
        assert after.keys() == before[cls].keys()
        assert all(after[name] is value for name, value in before[cls].items()), cls
    assert pymysql.cursors.Cursor.execute is original_execute
