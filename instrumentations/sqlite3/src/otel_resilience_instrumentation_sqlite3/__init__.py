"""otel-resilience for the standard library's `sqlite3`: client spans, metrics, a breaker.

Under ``opentelemetry-instrument`` this instrumentor loads by itself. Without the launcher::

    import sqlite3
    from otel_resilience_instrumentation_sqlite3 import SQLite3Instrumentor

    SQLite3Instrumentor().instrument()
    connection = sqlite3.connect("app.db")
    connection.execute("SELECT 1")  # a span and a duration point

The hook is ``sqlite3.connect``: it passes the driver's own ``factory=`` a subclass of the
connection class asked for (``sqlite3.Connection`` by default), whose cursors are in turn
subclasses of the cursor class asked for. A traced connection therefore *is* a
``sqlite3.Connection``: it goes to ``sqlite3``'s own functions, backups and adapters
unchanged. ``execute``, ``executemany`` and ``executescript`` are covered on cursors and on
the connection itself (whose shortcuts the C code runs without calling the cursor's
methods, and which the upstream instrumentation misses), and so are ``commit()`` and
``rollback()`` (spans ``COMMIT`` and ``ROLLBACK``; the C code's own implicit commits, as in
``with connection:``, are not seen).

SQLite has no network, so its breakers and retries are off by default
(``OTEL_RESILIENCE_DISABLED`` lists ``sqlite3``); when turned on, one breaker per database
file, named ``sqlite:///<path as given>``, counts "busy", "locked", I/O and "cannot open"
errors as failures.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Collection
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap

from otel_resilience import CircuitOpenError
from otel_resilience.instrumentation import DbEndpoint, Dialect, OutgoingDb, TracedSql
from otel_resilience_instrumentation_sqlite3.package import _instruments

__all__ = ["SQLite3CircuitOpenError", "SQLite3Instrumentor"]

_CURSOR_METHODS = ("execute", "executemany", "executescript")
# Primary result codes meaning the file cannot be used now: BUSY, LOCKED, IOERR, FULL,
# CANTOPEN. Anything else (a syntax error, a missing table, a constraint) is the program's.
_UNAVAILABLE_CODES = frozenset({5, 6, 10, 13, 14})
_UNAVAILABLE_MESSAGES = (
    "database is locked",
    "database table is locked",
    "unable to open database",
    "disk i/o error",
    "database or disk is full",
)
_ENDPOINT_ATTRIBUTE = "_otel_resilience_endpoint"
_FACTORY_POSITION = (
    5  # connect(database, timeout, detect_types, isolation_level, check_same_thread, factory, ...)
)


class SQLite3CircuitOpenError(CircuitOpenError, sqlite3.OperationalError):
    """The database file's circuit breaker rejected the call; nothing was run."""


class _SQLite3:
    """What the core needs to know about sqlite3: its errors and its connections."""

    name = "sqlite3"
    dialect: Dialect = "sqlite"
    rejection_error: type[CircuitOpenError] = SQLite3CircuitOpenError

    def unavailable(self, error: Exception) -> bool | None:
        if not isinstance(error, sqlite3.Error):
            return None
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in _UNAVAILABLE_CODES
        message = str(error).lower()
        return any(text in message for text in _UNAVAILABLE_MESSAGES)

    def endpoint(self, connection: Any) -> DbEndpoint:
        endpoint: DbEndpoint = getattr(connection, _ENDPOINT_ATTRIBUTE)
        return endpoint

    def in_transaction(self, connection: Any) -> bool:
        """sqlite3 raises ProgrammingError for a closed connection: no retry then either."""
        return bool(connection.in_transaction)


def _endpoint(database: object, uri: bool) -> DbEndpoint:
    """``db.namespace`` is the file as given (a URI without its query), or ``:memory:``."""
    path = os.fsdecode(database) if isinstance(database, str | bytes | os.PathLike) else "?"
    if uri:
        path = path.partition("?")[0].removeprefix("file:")
    return DbEndpoint("sqlite", None, None, path)


def _traced_connection_class(traced: TracedSql, base: type[sqlite3.Connection]) -> type:
    """A subclass of ``base`` whose cursors and shortcuts are traced (one per base class)."""

    class TracedConnection(base):  # type: ignore[valid-type,misc]
        _otel_resilience_traced = True

        def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(database, *args, **kwargs)
            setattr(self, _ENDPOINT_ATTRIBUTE, _endpoint(database, bool(kwargs.get("uri"))))

        def cursor(self, factory: Any = None) -> Any:
            cursor_class = sqlite3.Cursor if factory is None else factory
            if not getattr(cursor_class, "_otel_resilience_traced", False):
                cursor_class = traced.cursor_class(cursor_class, _CURSOR_METHODS, "connection")
            return super().cursor(cursor_class)

        # The C shortcuts run the statement without calling the cursor's methods.
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            return self.cursor().execute(*args, **kwargs)

        def executemany(self, *args: Any, **kwargs: Any) -> Any:
            return self.cursor().executemany(*args, **kwargs)

        def executescript(self, *args: Any, **kwargs: Any) -> Any:
            return self.cursor().executescript(*args, **kwargs)

        # A commit or rollback is a statement of its own: it can fail, and take time.
        # Without an open transaction sqlite3 does nothing: no span for a no-op.
        def commit(self) -> None:
            if not self.in_transaction:
                return super().commit()  # type: ignore[no-any-return]
            traced.run(self, "commit", super().commit, ("COMMIT",), {})

        def rollback(self) -> None:
            if not self.in_transaction:
                return super().rollback()  # type: ignore[no-any-return]
            traced.run(self, "rollback", super().rollback, ("ROLLBACK",), {})

    TracedConnection.__name__ = TracedConnection.__qualname__ = f"Traced{base.__name__}"
    TracedConnection.__module__ = base.__module__
    return TracedConnection


class SQLite3Instrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments ``sqlite3.connect``; ``uninstrument()`` restores the original.

    Connections opened before ``instrument()`` stay as they were, and so does a ``connect``
    imported by name (``from sqlite3 import connect``) before it.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        library = _SQLite3()
        outgoing = OutgoingDb.from_options(library, kwargs)
        traced = TracedSql(outgoing, library)
        classes: dict[type, type] = {}

        def connect(
            wrapped: Callable[..., sqlite3.Connection],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> sqlite3.Connection:
            positional_factory = len(args) > _FACTORY_POSITION
            factory = (
                args[_FACTORY_POSITION]
                if positional_factory
                else kwargs.get("factory", sqlite3.Connection)
            )
            if not (isinstance(factory, type) and issubclass(factory, sqlite3.Connection)):
                return wrapped(*args, **kwargs)  # sqlite3 will say what is wrong with it
            if not getattr(factory, "_otel_resilience_traced", False):
                if factory not in classes:
                    classes[factory] = _traced_connection_class(traced, factory)
                factory = classes[factory]
            database = args[0] if args else kwargs.get("database")
            endpoint = _endpoint(database, bool(kwargs.get("uri")))
            if positional_factory:
                args = (*args[:_FACTORY_POSITION], factory, *args[_FACTORY_POSITION + 1 :])
            else:
                kwargs = {**kwargs, "factory": factory}
            return outgoing.connect(endpoint, lambda: wrapped(*args, **kwargs))

        wrapt.wrap_function_wrapper(sqlite3, "connect", connect)
        wrapt.wrap_function_wrapper(sqlite3.dbapi2, "connect", connect)

    def _uninstrument(self, **kwargs: Any) -> None:
        unwrap(sqlite3, "connect")
        unwrap(sqlite3.dbapi2, "connect")
