"""otel-resilience for psycopg2: a breaker per PostgreSQL database, client spans, metrics.

Under ``opentelemetry-instrument`` this instrumentor loads by itself. Without the launcher::

    import psycopg2
    from otel_resilience_instrumentation_psycopg2 import Psycopg2Instrumentor

    Psycopg2Instrumentor().instrument()
    connection = psycopg2.connect("host=db.internal dbname=shop user=app")

psycopg2's types are written in C and its own functions (``psycopg2.extras``,
``register_type``, ``copy_expert``, ``execute_values``) check for them at the C level, so a
proxy object would break them. The hook is ``psycopg2.connect`` instead, which hands the
driver's own ``connection_factory`` a subclass of the connection class asked for; its
``cursor()`` makes subclasses of the cursor class asked for (``cursor_factory``, per call or
per connection). A traced connection *is* a psycopg2 connection.

Covered: ``execute``, ``executemany``, ``callproc`` and ``copy_expert`` on every cursor, and
the connection's ``commit()`` and ``rollback()`` (spans ``COMMIT`` and ``ROLLBACK``; the
commit of ``with connection:`` happens in C and is not seen);
connecting goes through the database's breaker and is retried when the server is
unavailable. A ``connection_factory`` that is a function rather than a connection class
gets the breaker on connect but no spans (there is no class to extend); asynchronous
(``async_=True``) connections are left alone, as their calls return before the work is done.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import psycopg2
import psycopg2.extensions
import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap

from otel_resilience import CircuitOpenError
from otel_resilience.instrumentation import (
    DbEndpoint,
    Dialect,
    OutgoingDb,
    TracedSql,
    endpoint_from_parameters,
    endpoint_of_connection_info,
    unavailable_postgresql,
)
from otel_resilience_instrumentation_psycopg2.package import _instruments

__all__ = ["Psycopg2CircuitOpenError", "Psycopg2Instrumentor"]

_CURSOR_METHODS = ("execute", "executemany", "callproc", "copy_expert")
_ENDPOINT_ATTRIBUTE = "_otel_resilience_endpoint"
_IDLE = psycopg2.extensions.TRANSACTION_STATUS_IDLE


class Psycopg2CircuitOpenError(CircuitOpenError, psycopg2.OperationalError):
    """The database's circuit breaker rejected the call; nothing was sent."""


class _Psycopg2:
    """What the core needs to know about psycopg2: its errors and its connections."""

    name = "psycopg2"
    dialect: Dialect = "postgresql"
    rejection_error: type[CircuitOpenError] = Psycopg2CircuitOpenError

    def unavailable(self, error: Exception) -> bool | None:
        if isinstance(error, psycopg2.InterfaceError):
            # "connection already closed": a connection the program closed, or one whose
            # loss was counted when it happened; nothing reached the server now.
            return None
        if isinstance(error, psycopg2.OperationalError):
            return unavailable_postgresql(error.pgcode, str(error))
        if isinstance(error, psycopg2.Error):
            return error.pgcode is not None and unavailable_postgresql(error.pgcode, "")
        return None

    def endpoint(self, connection: Any) -> DbEndpoint:
        endpoint: DbEndpoint | None = getattr(connection, _ENDPOINT_ATTRIBUTE, None)
        if endpoint is None:
            info = connection.info
            endpoint = endpoint_of_connection_info(info.host, info.port, info.dbname)
            setattr(connection, _ENDPOINT_ATTRIBUTE, endpoint)
        return endpoint

    def in_transaction(self, connection: Any) -> bool:
        """Without autocommit, every statement opens a transaction if none is open yet."""
        if connection.closed or not connection.autocommit:
            return True
        status: int = connection.info.transaction_status
        return status != psycopg2.extensions.TRANSACTION_STATUS_IDLE


def _traced_connection_class(traced: TracedSql, base: type) -> type:
    """A subclass of ``base`` whose cursors are traced, whatever their factory."""

    class TracedConnection(base):  # type: ignore[misc]
        _otel_resilience_traced = True

        def cursor(self, *args: Any, **kwargs: Any) -> Any:
            factory = kwargs.get("cursor_factory") or self.cursor_factory
            factory = psycopg2.extensions.cursor if factory is None else factory
            if isinstance(factory, type) and not getattr(factory, "_otel_resilience_traced", False):
                factory = traced.cursor_class(factory, _CURSOR_METHODS, "connection")
            return super().cursor(*args, **{**kwargs, "cursor_factory": factory})

        # A commit or rollback is a round trip of its own: it can fail, and take time.
        # Without an open transaction psycopg2 sends nothing: no span for a no-op.
        def commit(self) -> None:
            if self.closed or self.info.transaction_status == _IDLE:
                return super().commit()  # type: ignore[no-any-return]
            traced.run(self, "commit", super().commit, ("COMMIT",), {})

        def rollback(self) -> None:
            if self.closed or self.info.transaction_status == _IDLE:
                return super().rollback()  # type: ignore[no-any-return]
            traced.run(self, "rollback", super().rollback, ("ROLLBACK",), {})

    TracedConnection.__name__ = TracedConnection.__qualname__ = f"Traced{base.__name__}"
    TracedConnection.__module__ = base.__module__
    return TracedConnection


def _parameters(dsn: Any, kwargs: dict[str, Any]) -> dict[str, str]:
    """libpq's view of the connection parameters, as psycopg2.connect will build them."""
    given = {k: v for k, v in kwargs.items() if k not in ("async", "async_", "cursor_factory")}
    parsed: dict[str, str] = psycopg2.extensions.parse_dsn(
        psycopg2.extensions.make_dsn(dsn, **given)
    )
    return parsed


class Psycopg2Instrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments ``psycopg2.connect``; ``uninstrument()`` restores the original.

    Connections opened before ``instrument()`` stay as they were.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        library = _Psycopg2()
        outgoing = OutgoingDb.from_options(library, kwargs)
        traced = TracedSql(outgoing, library)
        classes: dict[type, type] = {}

        def connect(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            if kwargs.get("async") or kwargs.get("async_"):
                return wrapped(*args, **kwargs)
            try:
                dsn = args[0] if args else kwargs.get("dsn")
                endpoint = endpoint_from_parameters(_parameters(dsn, kwargs))
            except Exception:  # a DSN psycopg2 will reject with its own, clearer error
                return wrapped(*args, **kwargs)
            factory = (
                args[1] if len(args) > 1 else kwargs.get("connection_factory")
            ) or psycopg2.extensions.connection
            if (
                isinstance(factory, type)
                and issubclass(factory, psycopg2.extensions.connection)
                and not getattr(factory, "_otel_resilience_traced", False)
            ):
                if factory not in classes:
                    classes[factory] = _traced_connection_class(traced, factory)
                call_args = args[:1]
                call_kwargs = {**kwargs, "connection_factory": classes[factory]}
                if len(args) > 2:
                    call_kwargs["cursor_factory"] = args[2]
            else:
                call_args, call_kwargs = args, kwargs
            return outgoing.connect(endpoint, lambda: wrapped(*call_args, **call_kwargs))

        wrapt.wrap_function_wrapper(psycopg2, "connect", connect)

    def _uninstrument(self, **kwargs: Any) -> None:
        unwrap(psycopg2, "connect")
