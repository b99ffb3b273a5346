"""What spans say about SQL statements: operation, table, and text with no values in it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_resilience.instrumentation._db_client import DbEndpoint, database_key
from otel_resilience.instrumentation._postgresql import (
    endpoint_from_parameters,
    unavailable_postgresql,
)
from otel_resilience.instrumentation._sql import analyse, sanitise


@pytest.mark.parametrize(
    ("dialect", "text", "expected"),
    [
        (
            "postgresql",
            "SELECT * FROM t WHERE a = 'x' AND b = 42",
            "SELECT * FROM t WHERE a = ? AND b = ?",
        ),
        ("postgresql", "SELECT 'it''s', E'a\\'b', 1.5e3, 0x1F", "SELECT ?, ?, ?, ?"),
        ("postgresql", "SELECT $1, $tag$secret$tag$, $$also$$", "SELECT $1, ?, ?"),
        (
            "postgresql",
            "SELECT * FROM t1 WHERE c2 = %s AND c3 = %(name)s",
            "SELECT * FROM t1 WHERE c2 = %s AND c3 = %(name)s",
        ),
        ("postgresql", 'SELECT "Column1" FROM "Table"', 'SELECT "Column1" FROM "Table"'),
        (
            "mysql",
            "SELECT * FROM t WHERE a = \"x\" OR b = 'y'",
            "SELECT * FROM t WHERE a = ? OR b = ?",
        ),
        (
            "sqlite",
            "INSERT INTO t VALUES (?, :name, 'v', -7)",
            "INSERT INTO t VALUES (?, :name, ?, -?)",
        ),
        # comments are dropped: they can hold anything
        ("postgresql", "SELECT 1 -- don't 'quote' me\nFROM t", "SELECT ? FROM t"),
        ("postgresql", "SELECT x IN (1, 2, 3)", "SELECT x IN (?, ?, ?)"),
    ],
)
def test_literals_become_placeholders_and_placeholders_stay(
    dialect: str, text: str, expected: str
) -> None:
    assert sanitise(text, dialect) == expected  # type: ignore[arg-type]


@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 @.-_'\\", min_size=6),
    dialect=st.sampled_from(["postgresql", "mysql", "sqlite"]),
)
def test_a_quoted_value_never_survives(secret: str, dialect: str) -> None:
    quoted = "'" + secret.replace("\\", "\\\\").replace("'", "''") + "'"
    # upper case around it, so that no lower-case secret can match the statement's own words
    statement = analyse(f"SELECT ID FROM USERS WHERE EMAIL = {quoted} AND 1 = 1", dialect)
    assert secret.strip("'\\ ") == "" or secret not in statement.text
    assert statement.text.endswith("WHERE EMAIL = ? AND ? = ?")


def test_a_long_statement_is_cut_after_sanitising() -> None:
    text = "SELECT " + "x, " * 3000 + "'" + "secret" * 10 + "'"
    statement = analyse(text, "postgresql")
    assert len(statement.text) == 4096
    assert "secret" not in statement.text


@pytest.mark.parametrize(
    ("text", "operation", "collection", "read_only"),
    [
        ("SELECT * FROM public.users WHERE id = 1", "SELECT", "public.users", True),
        ("  /* app */ (select 1)", "SELECT", None, True),
        ("SELECT * FROM jobs FOR UPDATE SKIP LOCKED", "SELECT", "jobs", False),
        ('INSERT INTO "Orders" (id) VALUES (1)', "INSERT", "Orders", False),
        ("UPDATE ONLY accounts SET a = 1", "UPDATE", "accounts", False),
        ("DELETE FROM `logs`", "DELETE", "logs", False),
        ("CREATE TABLE IF NOT EXISTS t (a int)", "CREATE", "t", False),
        ("COPY items (a) FROM STDIN", "COPY", "items", False),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH", None, False),
        ("", None, None, False),
    ],
)
def test_operation_table_and_whether_it_only_reads(
    text: str, operation: str | None, collection: str | None, read_only: bool
) -> None:
    statement = analyse(text, "postgresql")
    assert (statement.operation, statement.collection, statement.read_only) == (
        operation,
        collection,
        read_only,
    )


def test_breaker_names_of_database_endpoints() -> None:
    assert database_key("postgresql", "DB.Example.com", 5432, "shop") == (
        "postgresql://db.example.com:5432/shop"
    )
    assert database_key("redis", "::1", 6379, "0") == "redis://[::1]:6379/0"
    assert DbEndpoint("mariadb", "127.0.0.1", 3306, "test").key == "mysql://127.0.0.1:3306/test"
    assert DbEndpoint("sqlite", None, None, "app.db").key == "sqlite:///app.db"
    assert DbEndpoint("sqlite", None, None, "/var/app.db").key == "sqlite:////var/app.db"


def test_endpoints_from_libpq_parameters_never_carry_the_password() -> None:
    endpoint = endpoint_from_parameters(
        {"host": "10.0.0.5,10.0.0.6", "port": "6432,6433", "user": "app", "password": "pw"}
    )
    assert endpoint.key == "postgresql://10.0.0.5:6432/app"  # the database defaults to the user
    assert "pw" not in repr(endpoint)
    assert endpoint_from_parameters({"host": "/run/postgresql", "dbname": "shop"}).key == (
        "postgresql:///shop"
    )


@pytest.mark.parametrize(
    ("sqlstate", "message", "unavailable"),
    [
        ("57P01", "terminating connection due to administrator command", True),
        ("53300", "sorry, too many clients already", True),
        ("08006", "connection failure", True),
        ("57014", "canceling statement due to statement timeout", True),
        ("42P01", "relation does not exist", False),
        ("23505", "duplicate key", False),
        ("28P01", "password authentication failed", False),
        (None, "connection to server at ... failed: Connection refused", True),
        (None, 'connection to server failed: FATAL:  role "x" does not exist', False),
        (None, "connection failed: FATAL:  the database system is starting up", True),
        (None, "server closed the connection unexpectedly", True),
    ],
)
def test_which_postgresql_errors_mean_the_server_is_unavailable(
    sqlstate: str | None, message: str, unavailable: bool
) -> None:
    assert unavailable_postgresql(sqlstate, message) is unavailable
