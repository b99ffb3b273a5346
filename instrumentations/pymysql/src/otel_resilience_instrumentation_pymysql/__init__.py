"""otel-resilience for PyMySQL: a breaker per MySQL/MariaDB database, client spans, metrics.

Under ``opentelemetry-instrument`` this instrumentor loads by itself. Without the launcher::

    import pymysql
    from otel_resilience_instrumentation_pymysql import PyMySQLInstrumentor

    PyMySQLInstrumentor().instrument()
    connection = pymysql.connect(host="db.internal", user="app", database="shop")

PyMySQL is written in Python, so its classes are patched in place: ``execute``,
``executemany`` and ``callproc`` of the cursor classes (every cursor, whatever its class,
``DictCursor`` and the unbuffered ``SSCursor`` included, made before or after
``instrument()``), ``commit``, ``rollback`` and ``begin`` of the connection (spans ``COMMIT``,
``ROLLBACK``, ``BEGIN``: each is a round trip that can fail when the server goes away), and
``Connection.connect``, which PyMySQL runs from ``__init__`` and from
``ping(reconnect=True)``: connecting goes through the database's breaker and is retried when
the server is unavailable; it makes no span, and the ``sql_mode`` and ``init_command``
statements PyMySQL runs while connecting are part of it. Not covered: the rows an
unbuffered cursor reads later (``fetch*``), ``ping``, ``select_db``, ``kill``.

One breaker per ``mysql://host:port/database`` (MariaDB included); the span says
``mariadb`` or ``mysql`` from the server's handshake. What counts against it is listed at
:data:`UNAVAILABLE_ERRNOS`. A call the breaker rejects raises
:class:`PyMySQLCircuitOpenError`, which is also a ``pymysql.err.OperationalError``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection
from typing import Any

import pymysql
import pymysql.connections
import pymysql.cursors
import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import suppress_instrumentation, unwrap
from pymysql.constants import SERVER_STATUS

from otel_resilience import CircuitOpenError
from otel_resilience.instrumentation import DbEndpoint, Dialect, OutgoingDb, TracedSql
from otel_resilience_instrumentation_pymysql.package import _instruments

__all__ = ["UNAVAILABLE_ERRNOS", "PyMySQLCircuitOpenError", "PyMySQLInstrumentor"]

_CURSOR_METHODS = ("execute", "executemany", "callproc")
_CONNECTION_STATEMENTS = {"begin": "BEGIN", "commit": "COMMIT", "rollback": "ROLLBACK"}

UNAVAILABLE_ERRNOS = frozenset(
    {
        2002,  # CR_CONNECTION_ERROR: can't connect through the socket
        2003,  # CR_CONN_HOST_ERROR: can't connect (refused, unreachable, timed out)
        2006,  # CR_SERVER_GONE_ERROR: the server has gone away (a write failed)
        2013,  # CR_SERVER_LOST: connection lost during a query (or a read timeout)
        1040,  # ER_CON_COUNT_ERROR: too many connections
        1203,  # ER_TOO_MANY_USER_CONNECTIONS: max_user_connections reached
        1041,  # ER_OUT_OF_RESOURCES: the server is out of memory
        1053,  # ER_SERVER_SHUTDOWN: server shutdown in progress
        1927,  # ER_CONNECTION_KILLED (MariaDB): the connection was killed
        1969,  # ER_STATEMENT_TIMEOUT (MariaDB): max_statement_time exceeded
        3024,  # ER_QUERY_TIMEOUT (MySQL): max_execution_time exceeded
    }
)
"""The ``OperationalError`` numbers that mean the database is unavailable: failures for the
breaker, and worth retrying (connecting; read-only statements when configured). Every other
server error (access denied, unknown database, lock wait timeout, deadlock, syntax,
duplicate key) proves the server up and is the application's."""


class PyMySQLCircuitOpenError(CircuitOpenError, pymysql.err.OperationalError):
    """The database's circuit breaker rejected the call; nothing was sent.

    Its ``args`` are the breaker's (endpoint, state, seconds to wait), not PyMySQL's
    ``(errno, message)``: code that reads ``args[0]`` as an error number sees no known one.
    """

    # PyMySQL's Error.__init__ (which CircuitOpenError skips) would have set it.
    sqlstate: str | None = None


def _namespace(connection: Any) -> str | None:
    database = connection.db
    if isinstance(database, bytes):
        return database.decode("utf-8", "replace") or None
    return str(database) if database else None


class _PyMySQL:
    """What the core needs to know about PyMySQL: its errors and its connections."""

    name = "pymysql"
    dialect: Dialect = "mysql"
    rejection_error: type[CircuitOpenError] = PyMySQLCircuitOpenError

    def __init__(self) -> None:
        # endpoint() runs for every statement; the system is known once the server greeted.
        self._endpoints: weakref.WeakKeyDictionary[Any, tuple[str, DbEndpoint]] = (
            weakref.WeakKeyDictionary()
        )

    def unavailable(self, error: Exception) -> bool | None:
        if isinstance(error, CircuitOpenError):
            return None
        if isinstance(error, pymysql.err.OperationalError):
            return bool(error.args) and error.args[0] in UNAVAILABLE_ERRNOS
        if isinstance(error, pymysql.err.InterfaceError):
            # (0, '') is a connection closed before this call: by the program, or by
            # PyMySQL after a loss that was counted when it happened. Nothing reached the
            # server, a retry on the same connection cannot succeed, and counting it would
            # let one dead connection that a program keeps using hold the breaker open
            # against a healthy server.
            return None
        if isinstance(error, pymysql.err.MySQLError):
            return False
        if isinstance(error, OSError):  # PyMySQL wraps its socket errors; in case one escapes
            return True
        return None

    def connect_endpoint(self, connection: Any) -> DbEndpoint:
        """Before the handshake the server's flavour is unknown; the breaker key is the same."""
        return DbEndpoint("mysql", connection.host, connection.port, _namespace(connection))

    def endpoint(self, connection: Any) -> DbEndpoint:
        version: str | None = getattr(connection, "server_version", None)
        cached = self._endpoints.get(connection)
        if cached is not None and cached[0] == version:
            return cached[1]
        if version is None:  # not connected yet: the statement will fail with InterfaceError
            return self.connect_endpoint(connection)
        system = "mariadb" if "mariadb" in version.lower() else "mysql"
        endpoint = DbEndpoint(system, connection.host, connection.port, _namespace(connection))
        self._endpoints[connection] = (version, endpoint)
        return endpoint

    def in_transaction(self, connection: Any) -> bool:
        """Whether the server may hold an open transaction for this connection, or the
        connection is gone: either way a statement must not be retried on it.

        ``server_status`` is the server's own word, but PyMySQL reads it from OK packets
        only, not after a result set: without autocommit, a SELECT opens a transaction
        that ``server_status`` does not show. So, without autocommit, any statement since
        the last commit, rollback or connect (PyMySQL's ``_result``) counts as one.
        """
        if not getattr(connection, "open", True):
            return True  # lost or closed: PyMySQL does not reconnect, so nothing can run again
        status = getattr(connection, "server_status", None)
        if not isinstance(status, int):
            return True
        if status & SERVER_STATUS.SERVER_STATUS_IN_TRANS:
            return True
        if status & SERVER_STATUS.SERVER_STATUS_AUTOCOMMIT:
            return False
        return getattr(connection, "_result", None) is not None


def _quietly(call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``connect``, whose ``sql_mode`` and ``init_command`` statements are part of it.

    They are covered by the connection's own breaker call; as calls of their own they
    would take a second half-open trial, which a breaker allowing one could never give.
    """
    with suppress_instrumentation():
        return call(*args, **kwargs)


def _patch_points() -> list[tuple[type, str]]:
    """Each method on the class that defines it: patching each once covers every subclass.

    Computed the same way when undoing, so that only those are restored: a subclass that
    inherits a method must not get a copy of it in its own namespace.
    """
    cursors = [
        cls
        for cls in vars(pymysql.cursors).values()
        if isinstance(cls, type) and issubclass(cls, pymysql.cursors.Cursor)
    ]
    points: list[tuple[type, str]] = [
        (cls, method) for method in _CURSOR_METHODS for cls in cursors if method in vars(cls)
    ]
    connection = pymysql.connections.Connection
    points.extend((connection, method) for method in ("connect", *_CONNECTION_STATEMENTS))
    return points


class PyMySQLInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments PyMySQL's cursors and connections; ``uninstrument()`` restores them."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        library = _PyMySQL()
        outgoing = OutgoingDb.from_options(library, kwargs)
        traced = TracedSql(outgoing, library)

        def connect(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            if args or kwargs.get("sock") is not None:
                # A socket the program opened cannot be opened again for a retry.
                return wrapped(*args, **kwargs)
            try:
                endpoint = library.connect_endpoint(instance)
            except Exception:  # fail-safe: an unexpected connection shape goes on untouched
                return wrapped(*args, **kwargs)
            return outgoing.connect(endpoint, lambda: _quietly(wrapped, args, kwargs))

        def transaction_control(method: str) -> Callable[..., Any]:
            sql = (_CONNECTION_STATEMENTS[method],)

            def run(
                wrapped: Callable[..., Any],
                instance: Any,
                args: tuple[Any, ...],
                kwargs: dict[str, Any],
            ) -> Any:
                return traced.run(instance, method, lambda: wrapped(*args, **kwargs), sql, {})

            return run

        for owner, method in _patch_points():
            wrapper: Callable[..., Any]
            if method == "connect":
                wrapper = connect
            elif method in _CONNECTION_STATEMENTS:
                wrapper = transaction_control(method)
            else:
                wrapper = traced.wrapper(method, connection_of=lambda cursor: cursor.connection)
            wrapt.wrap_function_wrapper(owner, method, wrapper)

    def _uninstrument(self, **kwargs: Any) -> None:
        for owner, method in _patch_points():
            unwrap(owner, method)
