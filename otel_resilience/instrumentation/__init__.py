"""The adapter interface: what every instrumentation of a client library builds on.

This is the public, versioned interface between the core and the adapters under
``instrumentations/`` (and any third party instrumenting another client the same way). An
adapter says *what* to wrap and *how to read* its library: the endpoint, the method or
operation, and whether an outcome means the remote is unavailable. It does not re-implement
breaking, retrying, span building or metrics; the call engine here does that once.

HTTP clients describe their library with :class:`HttpLibrary` and send every request
through :class:`OutgoingHttp`::

    outgoing = OutgoingHttp(MyClientLibrary(), __version__)
    response = outgoing.send(HttpRequest(method, url, headers), send_now)

Database drivers describe a connection's endpoint with :class:`DbEndpoint` and their error
classification with :class:`DbLibrary`, and run connects and statements through
:class:`OutgoingDb`; DB-API drivers get statement parsing and cursor wrapping from
:class:`TracedSql` over a :class:`SqlDriver`, with the SQL :data:`Dialect` that sanitises
their statements. :func:`unlock_after_fork` keeps an adapter's own locks usable in a
forked worker.

Versioning: :data:`INTERFACE_VERSION` changes its major number when a change here would
break an adapter built on the previous one; the adapters published with this core pin the
core's exact version, so they always run against the interface they were built on.
"""

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from otel_resilience._fork import unlock_after_fork
    from otel_resilience.instrumentation._db_client import (
        DbEndpoint,
        DbLibrary,
        OutgoingDb,
        database_key,
    )
    from otel_resilience.instrumentation._dbapi import SqlDriver, TracedSql, statement_of
    from otel_resilience.instrumentation._http_client import (
        IDEMPOTENT_METHODS,
        HttpLibrary,
        HttpRequest,
        OutgoingHttp,
        caused_by,
        endpoint_key,
        retry_after_seconds,
    )
    from otel_resilience.instrumentation._postgresql import (
        endpoint_from_parameters,
        endpoint_of_connection_info,
        sqlstate_unavailable,
        unavailable_postgresql,
    )
    from otel_resilience.instrumentation._sql import Dialect, Statement, analyse, sanitise

INTERFACE_VERSION: Final = (1, 0)
"""(major, minor) of this interface; a major change can break an adapter built on an older one."""

# Imported on first use (PEP 562): an HTTP adapter should not import the SQL scanner.
_EXPORTS: Final = {
    "DbEndpoint": "_db_client",
    "DbLibrary": "_db_client",
    "Dialect": "_sql",
    "HttpLibrary": "_http_client",
    "HttpRequest": "_http_client",
    "IDEMPOTENT_METHODS": "_http_client",
    "OutgoingDb": "_db_client",
    "OutgoingHttp": "_http_client",
    "SqlDriver": "_dbapi",
    "Statement": "_sql",
    "TracedSql": "_dbapi",
    "analyse": "_sql",
    "caused_by": "_http_client",
    "database_key": "_db_client",
    "endpoint_from_parameters": "_postgresql",
    "endpoint_key": "_http_client",
    "endpoint_of_connection_info": "_postgresql",
    "retry_after_seconds": "_http_client",
    "sanitise": "_sql",
    "sqlstate_unavailable": "_postgresql",
    "statement_of": "_dbapi",
    "unavailable_postgresql": "_postgresql",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "unlock_after_fork":
        from otel_resilience._fork import unlock_after_fork as value
    else:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "IDEMPOTENT_METHODS",
    "INTERFACE_VERSION",
    "DbEndpoint",
    "DbLibrary",
    "Dialect",
    "HttpLibrary",
    "HttpRequest",
    "OutgoingDb",
    "OutgoingHttp",
    "SqlDriver",
    "Statement",
    "TracedSql",
    "analyse",
    "caused_by",
    "database_key",
    "endpoint_from_parameters",
    "endpoint_key",
    "endpoint_of_connection_info",
    "retry_after_seconds",
    "sanitise",
    "sqlstate_unavailable",
    "statement_of",
    "unavailable_postgresql",
    "unlock_after_fork",
]
