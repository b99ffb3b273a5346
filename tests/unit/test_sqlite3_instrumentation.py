"""The sqlite3 instrumentation against real SQLite files and the real SDK.

SQLite runs in the test process: no server. Loading it through the launcher is in
tests/launcher/test_sqlite3_instrumentation.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_clock import FakeClock
from instrumentation_harness import Instrumented
from instrumentation_harness import instrument as instrument_with
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from otel_resilience_instrumentation_sqlite3 import SQLite3CircuitOpenError, SQLite3Instrumentor

from otel_resilience import BreakerPolicy, CircuitOpenError

DURATION = "db.client.operation.duration"


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument_with(SQLite3Instrumentor())


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    with suppress_instrumentation(), sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE)")
    setup.close()
    return path


def all_text(spans: list[ReadableSpan]) -> str:
    return " ".join(f"{span.name} {dict(span.attributes or {})}" for span in spans)


def test_every_way_of_running_a_statement_gets_one_span(
    instrumented: Instrumented, database: Path
) -> None:
    connection = sqlite3.connect(database)
    connection.execute("INSERT INTO users (email) VALUES ('alice@example.com')")
    connection.executemany("INSERT INTO users (email) VALUES (?)", [("bob@example.com",)])
    connection.cursor().execute("SELECT email FROM users WHERE id = ?", (1,))
    connection.executescript("DELETE FROM users WHERE id > 100;")
    connection.close()

    spans = instrumented.finished()
    assert [span.name for span in spans] == [
        "INSERT users",
        "INSERT users",
        "SELECT users",
        "DELETE users",
    ]
    select = spans[2]
    assert select.kind is SpanKind.CLIENT
    assert select.instrumentation_scope is not None
    assert select.instrumentation_scope.name == "otel_resilience.instrumentation.sqlite3"
    assert dict(select.attributes or {}) == {
        "db.system.name": "sqlite",
        "db.namespace": str(database),
        "db.operation.name": "SELECT",
        "db.collection.name": "users",
        "db.query.text": "SELECT email FROM users WHERE id = ?",
    }
    assert spans[0].attributes is not None
    assert spans[0].attributes["db.query.text"] == "INSERT INTO users (email) VALUES (?)"
    # neither the inlined literal nor the bound parameter reach the telemetry
    assert "alice@example.com" not in all_text(spans)
    assert "bob@example.com" not in all_text(spans)


def test_failed_statements_are_error_spans_and_are_measured(
    instrumented: Instrumented, database: Path
) -> None:
    connection = sqlite3.connect(database)
    connection.execute("SELECT 1")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        connection.execute("SELECT * FROM missing")
    connection.close()

    failed = instrumented.finished()[-1]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "OperationalError"
    points = instrumented.duration_points(DURATION)
    by_error = {point.attributes.get("error.type"): point for point in points}
    assert set(by_error) == {None, "OperationalError"}
    assert by_error[None].attributes["db.operation.name"] == "SELECT"
    assert by_error["OperationalError"].attributes["db.collection.name"] == "missing"
    assert all(point.count == 1 for point in points)


def test_a_traced_connection_is_still_a_sqlite3_connection(
    instrumented: Instrumented, database: Path, tmp_path: Path
) -> None:
    class AppConnection(sqlite3.Connection):
        def emails(self) -> list[str]:
            return [row[0] for row in self.execute("SELECT email FROM users")]

    class AppCursor(sqlite3.Cursor):
        marker = "app"

    connection = sqlite3.connect(database, factory=AppConnection)
    connection.row_factory = sqlite3.Row
    connection.execute("INSERT INTO users (email) VALUES ('carol@example.com')")
    connection.commit()
    assert isinstance(connection, AppConnection)
    assert connection.emails() == ["carol@example.com"]
    cursor = connection.cursor(AppCursor)
    assert isinstance(cursor, AppCursor)
    assert cursor.execute("SELECT COUNT(*) AS n FROM users").fetchone()["n"] == 1
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        connection.backup(copy)  # C-level type check on both connections
        assert copy.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 1
    copy.close()
    connection.close()
    names = [span.name for span in instrumented.finished()]
    assert names.count("SELECT users") == 3  # emails(), the AppCursor one, and the copy's
    assert f"COMMIT {database}" in names  # a commit is a statement of its own


def test_sqlite_has_no_breaker_by_default(instrumented: Instrumented, database: Path) -> None:
    """SQLite has no network: its breakers and retries are off unless turned on."""
    connection = sqlite3.connect(database)
    connection.execute("SELECT 1")
    connection.close()
    assert len(instrumented.finished()) == 1
    assert instrumented.registry.breakers() == []


def locked(database: Path) -> sqlite3.Connection:
    """A second connection that holds the file's exclusive lock until it is closed."""
    holder = sqlite3.connect(database, isolation_level=None)
    with suppress_instrumentation():
        holder.execute("BEGIN EXCLUSIVE")
    return holder


def test_a_locked_database_opens_the_breaker_when_resilience_is_on(database: Path) -> None:
    policy = BreakerPolicy(
        consecutive_failures=2, recovery_timeout=0.1, recovery_jitter=0, half_open_max_calls=1
    )
    clock = FakeClock()
    for instrumented in instrument_with(
        SQLite3Instrumentor(), policy, retries=0, resilience=True, clock=clock
    ):
        connection = sqlite3.connect(database, timeout=0)
        connection.execute("SELECT 1")  # the breaker exists and is closed
        breaker = instrumented.registry.get(f"sqlite:///{database}")
        holder = locked(database)
        for _ in range(2):
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                connection.execute("SELECT * FROM users")
        assert breaker.state == "open"
        with pytest.raises(sqlite3.OperationalError) as rejected:
            connection.execute("SELECT * FROM users")
        assert isinstance(rejected.value, SQLite3CircuitOpenError)
        assert isinstance(rejected.value, CircuitOpenError)
        assert f"sqlite:///{database}" in str(rejected.value)
        holder.close()
        clock.advance(0.1)  # the recovery timeout: the next call is the half-open trial
        assert connection.execute("SELECT COUNT(*) FROM users").fetchone() == (0,)
        assert breaker.state in ("closed",)  # `in`: mypy narrowed the state above
        # a programming error proves the file usable: a success for the breaker
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            connection.execute("SELECT * FROM missing")
        assert breaker.stats.consecutive_failures == 0
        connection.close()


def test_read_only_statements_are_retried_only_outside_a_transaction(database: Path) -> None:
    for instrumented in instrument_with(
        SQLite3Instrumentor(), retries=2, resilience=True, retry_read_only=True
    ):
        connection = sqlite3.connect(database, timeout=0)
        holder = locked(database)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            connection.execute("SELECT * FROM users")
        assert [span.name for span in instrumented.finished()] == ["SELECT users"] * 3
        instrumented.spans.clear()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            connection.execute("INSERT INTO users (email) VALUES ('x@example.com')")
        assert len(instrumented.finished()) == 1  # a write: never retried
        holder.close()

        connection.execute("BEGIN")  # deferred: no lock taken yet
        assert connection.in_transaction
        holder = locked(database)
        instrumented.spans.clear()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            connection.execute("SELECT * FROM users")
        assert len(instrumented.finished()) == 1  # inside a transaction: never retried
        holder.close()
        connection.rollback()
        connection.close()


def test_uninstrument_restores_the_original_connect() -> None:
    original = sqlite3.connect
    instrumentor = SQLite3Instrumentor()
    instrumentor.instrument()
    assert sqlite3.connect is not original
    instrumentor.uninstrument()
    assert sqlite3.connect is original
    assert sqlite3.dbapi2.connect is original
    connection = sqlite3.connect(":memory:")
    assert type(connection) is sqlite3.Connection
    connection.close()
