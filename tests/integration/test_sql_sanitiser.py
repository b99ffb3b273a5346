"""The real servers read the literals where the SQL tokenizer does.

What the tokenizer calls a literal, PostgreSQL, MariaDB and SQLite return as a value: so the
literals it hides are the ones the server sees. The tokenizer's own tests are in
tests/unit/test_sql_sanitiser.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pymysql
import pytest

from otel_resilience.instrumentation._sql import Dialect, sanitise

SECRET = "s3cr3t-XYZ"  # searched case-insensitively
SECRET_NUMBER = "7355608"


def leaked(text: str) -> bool:
    return SECRET.lower() in text.lower() or "s3cr3t" in text.lower() or SECRET_NUMBER in text


@pytest.fixture(scope="module")
def postgresql() -> Iterator[Callable[[str], list[tuple[Any, ...]]]]:
    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres") as connection:
        yield lambda text: connection.execute(text).fetchall()


@pytest.fixture(scope="module")
def mariadb() -> Iterator[Callable[[str], list[tuple[Any, ...]]]]:
    connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test")

    def run(text: str) -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(text)  # no arguments: PyMySQL sends the text as it is
            return list(cursor.fetchall())

    yield run
    connection.close()


@pytest.fixture(scope="module")
def sqlite() -> Iterator[Callable[[str], list[tuple[Any, ...]]]]:
    connection = sqlite3.connect(":memory:")
    yield lambda text: connection.execute(text).fetchall()
    connection.close()


SERVER_CASES: list[tuple[str, str, list[tuple[Any, ...]], str]] = [
    ("postgresql", r"SELECT 'C:\', 's3cr3t-XYZ'", [("C:\\", SECRET)], "SELECT ?, ?"),
    (
        "postgresql",
        """SELECT "it's" FROM (SELECT 's3cr3t-XYZ' AS "it's") AS t""",
        [(SECRET,)],
        """SELECT "it's" FROM (SELECT ? AS "it's") AS t""",
    ),
    ("postgresql", "SELECT $a$ x $$ s3cr3t-XYZ $$ y $a$", [(f" x $$ {SECRET} $$ y ",)], "SELECT ?"),
    ("postgresql", "SELECT /* a /* b */ 's3cr3t-XYZ' */ 1", [(1,)], "SELECT ?"),
    ("postgresql", "SELECT E'a'\n'\\' s3cr3t-XYZ '", [(f"a' {SECRET} ",)], "SELECT ?"),
    ("postgresql", "SELECT 'a' -- c\n's3cr3t-XYZ'", [(f"a{SECRET}",)], "SELECT ?"),
    ("postgresql", "SELECT 1 -- c\r, 's3cr3t-XYZ'", [(1, SECRET)], "SELECT ? , ?"),
    ("mysql", r"SELECT 'C:\\', 's3cr3t-XYZ'", [("C:\\", SECRET)], "SELECT ?, ?"),
    ("mysql", 'SELECT "s3cr3t-XYZ", "it\\"s"', [(SECRET, 'it"s')], "SELECT ?, ?"),
    (
        "mysql",
        "SELECT `it's` FROM (SELECT 's3cr3t-XYZ' AS `it's`) AS t",
        [(SECRET,)],
        "SELECT `it's` FROM (SELECT ? AS `it's`) AS t",
    ),
    ("mysql", "SELECT 1 # it's\n, 's3cr3t-XYZ'", [(1, SECRET)], "SELECT ? , ?"),
    ("mysql", "SELECT 1 -- it's\n, 's3cr3t-XYZ'", [(1, SECRET)], "SELECT ? , ?"),
    ("mysql", "SELECT 1--1, 's3cr3t-XYZ'", [(2, SECRET)], "SELECT ?--?, ?"),
    ("mysql", "SELECT /*! 's3cr3t-XYZ' */", [(SECRET,)], "SELECT /*! ? */"),
    ("mysql", "SELECT 1 /*!99999 , 's3cr3t-XYZ' */", [(1,)], "SELECT ? /*! , ? */"),
    ("sqlite", r"SELECT 'C:\', 's3cr3t-XYZ'", [("C:\\", SECRET)], "SELECT ?, ?"),
    ("sqlite", 'SELECT "s3cr3t-XYZ"', [(SECRET,)], "SELECT ?"),
    (
        "sqlite",
        "SELECT [it's], `it's` FROM (SELECT 's3cr3t-XYZ' AS [it's])",
        [(SECRET, SECRET)],
        "SELECT [it's], `it's` FROM (SELECT ? AS [it's])",
    ),
    (
        "sqlite",
        'SELECT "t"."a" FROM (SELECT \'s3cr3t-XYZ\' AS a) AS "t"',
        [(SECRET,)],
        'SELECT "t"."a" FROM (SELECT ? AS a) AS "t"',
    ),
    ("sqlite", "SELECT 1 -- c\r, 's3cr3t-XYZ'\n", [(1,)], "SELECT ?"),
    ("sqlite", "SELECT 1 /* 's3cr3t-XYZ'", [(1,)], "SELECT ?"),
]


@pytest.mark.parametrize(("dialect", "text", "rows", "expected"), SERVER_CASES)
def test_the_server_reads_the_literals_where_the_tokenizer_does(
    dialect: Dialect,
    text: str,
    rows: list[tuple[Any, ...]],
    expected: str,
    request: pytest.FixtureRequest,
) -> None:
    run = request.getfixturevalue(
        {"postgresql": "postgresql", "mysql": "mariadb"}.get(dialect, dialect)
    )
    assert run(text) == rows
    assert sanitise(text, dialect) == expected
    assert not leaked(expected)


def test_a_statement_the_other_string_setting_reads_otherwise_is_not_shown() -> None:
    # Default settings: an alias after a string ending in a backslash (PostgreSQL), or one
    # string running into the comment (MySQL). Other setting: the other way round.
    text = "SELECT 'C:\\' AS s3cr3t_xyz -- '\n"
    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres") as connection:
        assert connection.execute(text).fetchall() == [("C:\\",)]
        connection.execute("SET standard_conforming_strings = off")
        assert connection.execute(text).fetchall() == [("C:' AS s3cr3t_xyz -- ",)]
    mariadb = pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test")
    try:
        with mariadb.cursor() as cursor:
            cursor.execute(text)
            assert list(cursor.fetchall()) == [("C:' AS s3cr3t_xyz -- ",)]
            cursor.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
            cursor.execute(text)
            assert list(cursor.fetchall()) == [("C:\\",)]
    finally:
        mariadb.close()
    assert sanitise(text, "postgresql") == "SELECT ?"
    assert sanitise(text, "mysql") == "SELECT ?"
