"""otel-resilience for psycopg 3 (sync and async): a circuit breaker, retries, spans, metrics.

Under ``opentelemetry-instrument`` this instrumentor loads by itself. Without the launcher::

    import psycopg
    from otel_resilience_instrumentation_psycopg import PsycopgInstrumentor

    PsycopgInstrumentor().instrument()
    with psycopg.connect("host=db.internal dbname=shop") as conn:  # through the breaker
        conn.execute("SELECT * FROM items WHERE id = %s", [42])  # breaker, span, metrics

What is covered. psycopg's classes are patched in place (no proxy objects), so a connection
stays a real ``psycopg.Connection``: ``conn.adapters``, ``register_*`` and
``set_json_dumps(context=conn)`` keep working, and connections or cursors made before
instrumentation are covered too.

* Connecting: ``psycopg.connect``, ``Connection.connect`` and ``AsyncConnection.connect``
  (so also a pool's connections) go through the endpoint's breaker and are retried while
  the server is unavailable. Connecting makes no span.
* Statements: ``execute`` and ``executemany`` of every cursor, sync and async (``Cursor``,
  ``ClientCursor``, ``RawCursor`` and their async twins inherit them), and ``execute`` of
  server-side cursors (the ``DECLARE``; their later fetches are not spans).
  ``conn.execute(...)`` is one span: it runs a cursor's ``execute``.
* Not covered: ``cursor.stream()`` and ``cursor.copy()``, which hand back an iterator or a
  context manager, so no single call spans the operation.
* In pipeline mode (``conn.pipeline()``) a span ends when its statement is queued, not
  when its result arrives: a statement's error is raised later (at the pipeline's sync,
  or its end), outside its span, and the breaker does not hear of it.

Queries may be text, bytes or ``psycopg.sql`` objects; the latter are rendered with the
cursor (``Literal`` values inline) and then sanitised, so ``db.query.text`` never holds a
literal or a parameter value.

Endpoints. A breaker per ``postgresql://host:port/dbname`` (the same as psycopg2's), read
from ``connection.info`` once per connection, and before connecting from the conninfo
string, the keyword arguments and libpq's defaults (``PG*`` variables, the OS user), so
that both land on the same breaker. A Unix-domain socket has no host or port in the
conventions' sense: its breaker is ``postgresql:///dbname`` and its spans have no
``server.address``. With several hosts (``host=a,b``) connecting counts against the first
one, and a ``service=`` entry (``pg_service.conf``) is not read for it. No user or
password is recorded anywhere.

What counts against the breaker (and is retried): the SQLSTATE classes 08 (connection),
53 (insufficient resources, e.g. too many connections) and 58 (system error), and 57P01
to 57P05 (the server shutting down or starting up, a session ended) and 57014 (a
statement timeout); an ``OperationalError`` without a SQLSTATE (refused, reset, "server
closed the connection unexpectedly"), except a login the server refused with a
``FATAL:`` (a wrong password, an unknown role or database: it answered) unless it says it
is busy (starting up, shutting down, too many clients). Every other SQLSTATE (syntax,
unknown table, duplicate key) proves the server up. Errors raised before anything was
sent (a closed cursor, a connection closed by the program or already broken and counted,
a wrong number of parameters) count as neither.

Statements are retried only when ``retry_read_only`` is on
(``OTEL_RESILIENCE_DB_RETRY_READ_ONLY``), only read-only ones, and only on an autocommit
connection outside ``conn.transaction()`` and pipeline mode: with autocommit off every
statement is part of the transaction psycopg opens, which the failure leaves aborted.

A call the breaker rejects raises :class:`PsycopgCircuitOpenError`, which is also a
``psycopg.OperationalError`` (so a ``psycopg.Error``): nothing was sent, and existing
``except`` clauses catch it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import weakref
from collections.abc import Callable, Collection
from typing import Any

import psycopg
import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap
from psycopg import pq, sql
from psycopg.conninfo import conninfo_to_dict

from otel_resilience import CircuitOpenError
from otel_resilience.instrumentation import (
    DbEndpoint,
    Dialect,
    OutgoingDb,
    TracedSql,
    endpoint_from_parameters,
    endpoint_of_connection_info,
    unavailable_postgresql,
    unlock_after_fork,
)
from otel_resilience_instrumentation_psycopg.package import _instruments

__all__ = ["PsycopgCircuitOpenError", "PsycopgInstrumentor"]

_logger = logging.getLogger(__name__)


class PsycopgCircuitOpenError(CircuitOpenError, psycopg.OperationalError):
    """The endpoint's circuit breaker rejected the call; nothing was sent."""

    # psycopg.Error's __init__ does not run (see CircuitOpenError): start from "no server
    # diagnostics" so that ``.sqlstate``, ``.pgconn`` and ``.diag`` read as on a client error.
    _info = None
    _encoding = "utf-8"
    _pgconn = None


# psycopg's errors for a connection used after it was closed or after it failed (a failure
# counted when it happened): nothing reaches the server, so they count as neither.
_ALREADY_CLOSED = frozenset({"the connection is closed", "the connection is lost"})
# What libpq reads from the environment, and the user name it defaults to.
_DEFAULTED = (b"host", b"hostaddr", b"port", b"user", b"dbname")


class _Psycopg:
    """What the core needs to know about psycopg: its errors, endpoints and transactions."""

    name: str = "psycopg"
    rejection_error: type[CircuitOpenError] = PsycopgCircuitOpenError
    dialect: Dialect = "postgresql"

    def __init__(self) -> None:
        self._endpoints: weakref.WeakKeyDictionary[Any, DbEndpoint] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        unlock_after_fork(self, "_lock")

    def unavailable(self, error: Exception) -> bool | None:
        if not isinstance(error, psycopg.Error):
            return None
        if error.sqlstate:
            return unavailable_postgresql(error.sqlstate, str(error))
        if isinstance(error, psycopg.errors.PipelineAborted):
            return False  # an earlier statement of the pipeline failed: the server answered
        if isinstance(error, psycopg.OperationalError):
            message = str(error)
            return None if message in _ALREADY_CLOSED else unavailable_postgresql(None, message)
        return None  # InterfaceError, ProgrammingError...: raised before anything was sent

    def endpoint(self, connection: Any) -> DbEndpoint:
        endpoint = self._endpoints.get(connection)
        if endpoint is None:
            info = connection.info
            endpoint = endpoint_of_connection_info(info.host, info.port, info.dbname)
            with self._lock:
                self._endpoints[connection] = endpoint
        return endpoint

    def in_transaction(self, connection: Any) -> bool:
        """Whether a statement run now would be part of a transaction.

        With autocommit off it always would (psycopg opens one), and a failure would leave
        that transaction aborted for the retry; pipeline mode counts as one too.
        """
        return bool(
            not connection.autocommit
            or connection.info.transaction_status != pq.TransactionStatus.IDLE
            or connection.pgconn.pipeline_status
        )


def _connect_endpoint(
    keywords: frozenset[str], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> DbEndpoint:
    """The endpoint a ``connect(conninfo, **kwargs)`` call goes to, as libpq will read it."""
    conninfo = args[0] if args else kwargs.get("conninfo", "")
    given = {k: v for k, v in kwargs.items() if k not in keywords and k != "conninfo"}
    # libpq's defaults: the PG* variables and, for the user (so the database), the OS user.
    defaults = {
        option.keyword.decode(): option.val.decode()
        for option in pq.Conninfo.get_defaults()
        if option.val is not None and option.keyword in _DEFAULTED
    }
    return endpoint_from_parameters({**defaults, **conninfo_to_dict(conninfo, **given)})


def _statement_text(query: object, cursor: Any) -> object:
    """A ``psycopg.sql`` object rendered with the cursor; ``None`` if it cannot be."""
    if isinstance(query, sql.Composable):
        try:
            return query.as_string(cursor)
        except Exception:  # an unrenderable query is traced without its text
            return None
    return query


def _query(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    return args[0] if args else kwargs.get("query")


def _restore_classmethod(owner: type, name: str) -> None:
    """Put back a classmethod wrapped by wrapt, as the very same object.

    ``unwrap`` reads the attribute through the class, which binds it, and would put back a
    bound method (bound to ``owner``, wrong for subclasses) instead of the classmethod.
    """
    wrapper = vars(owner).get(name)
    if isinstance(wrapper, wrapt.FunctionWrapper):
        setattr(owner, name, wrapper.__wrapped__)


_CURSOR_METHODS: tuple[tuple[type, str], ...] = (
    (psycopg.Cursor, "execute"),
    (psycopg.Cursor, "executemany"),
    (psycopg.ServerCursor, "execute"),
)


def _transaction_open(connection: Any) -> bool:
    """Whether a commit or rollback now would go to the server (else psycopg does nothing)."""
    try:
        return bool(connection.info.transaction_status != pq.TransactionStatus.IDLE)
    except Exception:  # a closed connection: let psycopg say so, untraced
        return False


# A commit or rollback is a round trip of its own: it can fail, and take time.
_CONNECTION_METHODS: tuple[tuple[type, str], ...] = (
    (psycopg.Connection, "commit"),
    (psycopg.Connection, "rollback"),
)
_ASYNC_CONNECTION_METHODS: tuple[tuple[type, str], ...] = (
    (psycopg.AsyncConnection, "commit"),
    (psycopg.AsyncConnection, "rollback"),
)
_ASYNC_CURSOR_METHODS: tuple[tuple[type, str], ...] = (
    (psycopg.AsyncCursor, "execute"),
    (psycopg.AsyncCursor, "executemany"),
    (psycopg.AsyncServerCursor, "execute"),
)


class PsycopgInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments psycopg 3, sync and async; ``uninstrument()`` restores the originals."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        driver = _Psycopg()
        outgoing = OutgoingDb.from_options(driver, kwargs)
        traced = TracedSql(outgoing, driver)
        # connect()'s own keywords (autocommit, row_factory...) are not connection parameters.
        keywords = frozenset(
            parameter.name
            for parameter in inspect.signature(psycopg.Connection.connect).parameters.values()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        )

        def endpoint_of_connect(args: tuple[Any, ...], kwargs: Any) -> DbEndpoint | None:
            try:
                return _connect_endpoint(keywords, args, kwargs)
            except Exception:  # fail-safe: psycopg will report a malformed conninfo itself
                _logger.debug("psycopg connect not instrumented", exc_info=True)
                return None

        def connect(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
            endpoint = endpoint_of_connect(args, kwargs)
            if endpoint is None:
                return wrapped(*args, **kwargs)
            return outgoing.connect(endpoint, lambda: wrapped(*args, **kwargs))

        async def connect_async(
            wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Any
        ) -> Any:
            endpoint = endpoint_of_connect(args, kwargs)
            if endpoint is None:
                return await wrapped(*args, **kwargs)
            return await outgoing.connect_async(endpoint, lambda: wrapped(*args, **kwargs))

        def cursor_method(method: str) -> Callable[..., Any]:
            def traced_method(
                wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Any
            ) -> Any:
                query = _statement_text(_query(args, kwargs), instance)
                return traced.run(
                    instance.connection, method, lambda: wrapped(*args, **kwargs), (query,), {}
                )

            return traced_method

        def async_cursor_method(method: str) -> Callable[..., Any]:
            async def traced_method(
                wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Any
            ) -> Any:
                query = _statement_text(_query(args, kwargs), instance)
                return await traced.run_async(
                    instance.connection, method, lambda: wrapped(*args, **kwargs), (query,), {}
                )

            return traced_method

        def connection_method(method: str) -> Callable[..., Any]:
            def traced_method(
                wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Any
            ) -> Any:
                call = functools.partial(wrapped, *args, **kwargs)
                if not _transaction_open(instance):
                    return call()  # nothing to commit or roll back: no round trip, no span
                return traced.run(instance, method, call, (method.upper(),), {})

            return traced_method

        def async_connection_method(method: str) -> Callable[..., Any]:
            async def traced_method(
                wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Any
            ) -> Any:
                call = functools.partial(wrapped, *args, **kwargs)
                if not _transaction_open(instance):
                    return await call()
                return await traced.run_async(instance, method, call, (method.upper(),), {})

            return traced_method

        wrapt.wrap_function_wrapper(psycopg.Connection, "connect", connect)
        wrapt.wrap_function_wrapper(psycopg, "connect", connect)  # a bound Connection.connect
        wrapt.wrap_function_wrapper(psycopg.AsyncConnection, "connect", connect_async)
        for owner, method in _CURSOR_METHODS:
            wrapt.wrap_function_wrapper(owner, method, cursor_method(method))
        for owner, method in _ASYNC_CURSOR_METHODS:
            wrapt.wrap_function_wrapper(owner, method, async_cursor_method(method))
        for owner, method in _CONNECTION_METHODS:
            wrapt.wrap_function_wrapper(owner, method, connection_method(method))
        for owner, method in _ASYNC_CONNECTION_METHODS:
            wrapt.wrap_function_wrapper(owner, method, async_connection_method(method))

    def _uninstrument(self, **kwargs: Any) -> None:
        _restore_classmethod(psycopg.Connection, "connect")
        _restore_classmethod(psycopg.AsyncConnection, "connect")
        unwrap(psycopg, "connect")
        for owner, method in (
            _CURSOR_METHODS
            + _ASYNC_CURSOR_METHODS
            + _CONNECTION_METHODS
            + _ASYNC_CONNECTION_METHODS
        ):
            unwrap(owner, method)
