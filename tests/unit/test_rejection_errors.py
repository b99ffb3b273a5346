"""A rejection has every attribute its library's own errors have, with the values they would.

Programs catch a rejection as the library's error (``except requests.RequestException as
e: e.response``), so an attribute the library's errors always have must be there on ours,
with the value a library error raised before any answer would carry, and one that raises
on theirs (httpx's ``request`` before it is set) must raise the same way on ours.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import psycopg
import psycopg2
import pymysql
import pytest
import redis
import requests
from otel_resilience_instrumentation_httpx import HTTPXCircuitOpenError
from otel_resilience_instrumentation_psycopg import PsycopgCircuitOpenError
from otel_resilience_instrumentation_psycopg2 import Psycopg2CircuitOpenError
from otel_resilience_instrumentation_pymysql import PyMySQLCircuitOpenError
from otel_resilience_instrumentation_redis import RedisCircuitOpenError
from otel_resilience_instrumentation_requests import RequestsCircuitOpenError
from otel_resilience_instrumentation_sqlite3 import SQLite3CircuitOpenError

from otel_resilience import CircuitOpenError

# Each rejection type, and the library's own error as the library raises it before any
# answer (a connection that failed).
CASES: list[tuple[type[CircuitOpenError], Any]] = [
    (RequestsCircuitOpenError, requests.exceptions.ConnectionError("refused")),
    (HTTPXCircuitOpenError, httpx.ConnectError("refused")),
    (SQLite3CircuitOpenError, sqlite3.OperationalError("unable to open database file")),
    (PsycopgCircuitOpenError, psycopg.OperationalError("connection failed")),
    (Psycopg2CircuitOpenError, psycopg2.OperationalError("connection failed")),
    (PyMySQLCircuitOpenError, pymysql.err.OperationalError(2003, "Can't connect")),
    (RedisCircuitOpenError, redis.exceptions.ConnectionError("Connection refused")),
]


def _attributes(error: BaseException) -> dict[str, str]:
    """Public, non-method attributes: their value's repr, or what reading them raises."""
    found = {}
    for name in dir(error):
        if name.startswith("_") or name in ("args", "with_traceback", "add_note"):
            continue
        try:
            value = getattr(error, name)
        except Exception as raised:
            found[name] = f"raises {type(raised).__name__}"
            continue
        if not callable(value):
            found[name] = repr(value) if value is None or isinstance(value, int | str) else "set"
    return found


@pytest.mark.parametrize(("rejection", "theirs"), CASES, ids=lambda case: str(case)[:40])
def test_a_rejection_has_the_librarys_attributes(
    rejection: type[CircuitOpenError], theirs: BaseException
) -> None:
    ours = rejection("http://127.0.0.1:1", "open", 3.0)
    assert isinstance(ours, type(theirs))
    expected = _attributes(theirs)
    actual = _attributes(ours)
    missing = {name: value for name, value in expected.items() if actual.get(name) != value}
    assert not missing, f"{rejection.__name__} differs from {type(theirs).__name__}: {missing}"
    assert (ours.name, ours.state, ours.remaining) == ("http://127.0.0.1:1", "open", 3.0)
