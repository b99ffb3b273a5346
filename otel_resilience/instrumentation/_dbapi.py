"""The DB-API (PEP 249) side of the database wrapper, shared by every SQL driver adapter.

A SQL adapter describes its driver once (:class:`SqlDriver`: how to find a connection's
endpoint and whether it is in a transaction) and gets from here what it hooks in:

* :meth:`TracedSql.wrapper` for drivers written in Python (psycopg 3, PyMySQL), whose
  cursor classes are patched in place with wrapt, so every cursor, whatever its class or
  however it was made, is covered and ``uninstrument()`` restores the originals;
* :meth:`TracedSql.cursor_class` (with a connection subclass of the adapter's) for drivers written
  in C (sqlite3, psycopg2), whose types cannot be patched and reject proxies in their own
  functions (``psycopg2.extras``, ``register_adapter``, ``copy_expert``): those get
  subclasses through the driver's own factories, so a traced connection *is* a driver
  connection.

Either way, ``execute``, ``executemany``, ``callproc`` and connection-level shortcuts such as
sqlite3's ``conn.execute()`` all end in :meth:`TracedSql.run`, and so in
:class:`~otel_resilience.instrumentation._db_client.OutgoingDb`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from otel_resilience._fork import unlock_after_fork
from otel_resilience.instrumentation._db_client import DbEndpoint, OutgoingDb
from otel_resilience.instrumentation._sql import Dialect, Statement, analyse

__all__ = ["SqlDriver", "TracedSql", "statement_of"]

T = TypeVar("T")
C = TypeVar("C", bound=type)

_UNKNOWN = Statement(operation=None, collection=None, text="", read_only=False)


class SqlDriver(Protocol):
    """What the DB-API wrapper needs to know about one driver's connections."""

    dialect: Dialect

    def endpoint(self, connection: Any) -> DbEndpoint:
        """The connection's endpoint; called for every operation, so cache it."""
        ...

    def in_transaction(self, connection: Any) -> bool:
        """Whether a statement run now would be part of a transaction, or cannot be run
        again at all (the connection is closed): either way it must not be retried."""
        ...


def statement_of(query: object, dialect: Dialect) -> Statement:
    """The :class:`Statement` of a query argument: text, bytes, or unknown.

    A composed query object (psycopg's ``sql.Composed``) is not turned into text here: its
    ``str()`` shows the literal values it holds. Adapters that can render it safely pass
    the text instead.
    """
    if isinstance(query, str):
        return analyse(query, dialect)
    if isinstance(query, bytes | bytearray | memoryview):
        return analyse(bytes(query).decode("utf-8", "replace"), dialect)
    return _UNKNOWN


def _query_argument(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    if args:
        return args[0]
    for name in ("query", "operation", "sql", "procname", "sql_script"):
        if name in kwargs:
            return kwargs[name]
    return None


class TracedSql:
    """Every SQL operation of one driver, through one :class:`OutgoingDb`."""

    def __init__(self, outgoing: OutgoingDb, driver: SqlDriver) -> None:
        self.outgoing = outgoing
        self.driver = driver
        self._classes: dict[tuple[type, str], type] = {}
        self._classes_lock = threading.Lock()
        unlock_after_fork(self, "_classes_lock")

    def statement(self, method: str, query: object) -> Statement:
        if method == "callproc" and isinstance(query, str):
            return Statement("CALL", None, f"CALL {query}", read_only=False, procedure=query)
        return statement_of(query, self.driver.dialect)

    def run(
        self,
        connection: Any,
        method: str,
        call: Callable[[], T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """Run one cursor or connection method ``method`` called with ``args``/``kwargs``."""
        try:
            endpoint = self.driver.endpoint(connection)
            statement = self.statement(method, _query_argument(method, args, kwargs))
        except Exception:  # fail-safe: a connection we cannot read goes on uninstrumented
            return call()
        in_transaction = (
            functools.partial(self.driver.in_transaction, connection)
            if self.outgoing.retry_read_only
            else None
        )
        return self.outgoing.execute(endpoint, statement, call, in_transaction=in_transaction)

    async def run_async(
        self,
        connection: Any,
        method: str,
        call: Callable[[], Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """:meth:`run` for async drivers (psycopg's ``AsyncCursor``)."""
        try:
            endpoint = self.driver.endpoint(connection)
            statement = self.statement(method, _query_argument(method, args, kwargs))
        except Exception:  # fail-safe: a connection we cannot read goes on uninstrumented
            return await call()
        in_transaction = (
            functools.partial(self.driver.in_transaction, connection)
            if self.outgoing.retry_read_only
            else None
        )
        return await self.outgoing.execute_async(
            endpoint, statement, call, in_transaction=in_transaction
        )

    # --- drivers written in Python: patch the classes -----------------------------------------

    def wrapper(
        self, method: str, connection_of: Callable[[Any], Any]
    ) -> Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]:
        """A wrapt wrapper for ``method`` of a cursor class; ``connection_of(cursor)``."""

        def traced(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
            return self.run(
                connection_of(instance), method, lambda: wrapped(*args, **kwargs), args, kwargs
            )

        return traced

    # --- drivers written in C: subclasses through their factories ----------------------------

    def cursor_class(self, base: C, methods: tuple[str, ...], connection_attribute: str) -> C:
        """A subclass of the cursor type ``base`` whose ``methods`` are traced (cached)."""
        return self._subclass(
            base, "cursor", lambda: self._make_cursor(base, methods, connection_attribute)
        )

    def _subclass(self, base: C, kind: str, make: Callable[[], C]) -> C:
        key = (base, kind)
        made = self._classes.get(key)
        if made is None:
            with self._classes_lock:
                made = self._classes.get(key)
                if made is None:
                    made = make()
                    self._classes[key] = made
        return made  # type: ignore[return-value]

    def _make_cursor(self, base: C, methods: tuple[str, ...], connection_attribute: str) -> C:
        traced_sql = self

        def make_method(name: str) -> Callable[..., Any]:
            original = getattr(base, name)

            def method(cursor: Any, *args: Any, **kwargs: Any) -> Any:
                return traced_sql.run(
                    getattr(cursor, connection_attribute),
                    name,
                    lambda: original(cursor, *args, **kwargs),
                    args,
                    kwargs,
                )

            method.__name__ = name
            method.__qualname__ = f"Traced{base.__name__}.{name}"
            method.__doc__ = original.__doc__
            return method

        namespace: dict[str, Any] = {
            name: make_method(name) for name in methods if hasattr(base, name)
        }
        namespace["_otel_resilience_traced"] = True  # never wrapped twice
        namespace["__module__"] = base.__module__
        namespace["__doc__"] = base.__doc__
        return type(f"Traced{base.__name__}", (base,), namespace)  # type: ignore[return-value]
