"""The one database-call wrapper that every database adapter delegates to.

An adapter (sqlite3, psycopg, psycopg2, PyMySQL, redis) finds where its driver connects and
where it sends statements or commands, and hands each call here with a callable and a
description of its driver (:class:`DbLibrary`). Everything else lives here once: the
endpoint's circuit breaker, retries (connection establishment by default; read-only
statements outside a transaction only when configured), the CLIENT span of the stable
database semantic conventions, the ``db.client.operation.duration`` histogram (failed
operations included), and the mapping of a rejection onto the driver's own error type.

The breaker only hears about errors that mean the server is unavailable (the driver's
classification, :meth:`DbLibrary.unavailable`): a syntax error or a duplicate key proves
the server up and counts as a success; an error raised before anything reached the server
(a wrong argument type) counts as neither.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from opentelemetry import context, metrics, trace

from otel_resilience._compat import SPAN_KEY, instrumentation_suppressed
from otel_resilience._version import __version__
from otel_resilience.breaker._breaker import CircuitBreaker, CircuitOpenError
from otel_resilience.breaker._registry import CircuitBreakerRegistry
from otel_resilience.instrumentation._duration import duration_histogram
from otel_resilience.instrumentation._endpoints import AdapterOptions, EndpointResilience
from otel_resilience.instrumentation._engine import (
    CallEngine,
    HeldVerdict,
    Histogram,
    Verdict,
    admit,
    held_verdict,
    is_judged_failure,
    record_failed,
    settle_as_retried_past,
)
from otel_resilience.instrumentation._sql import Statement
from otel_resilience.retry._retry import Retry
from otel_resilience.sdk.settings import RetrySettings, Settings

__all__ = ["DbEndpoint", "DbLibrary", "OutgoingDb", "database_key"]

_logger = logging.getLogger(__name__)

T = TypeVar("T")

# In the context a database call runs in: a driver method that calls another instrumented
# one (PyMySQL's executemany calls execute) must not make a second span.
_IN_DB_CALL = context.create_key("otel_resilience.db_call")
# Set while a statement is being retried: whether running it again can still do any good.
# SQL drivers do not reconnect, so after a lost connection (or inside a transaction, which
# a failure may have aborted) a retry could only fail again, with a less telling error.
_rerun_allowed: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar(
    "otel_resilience.db.rerun_allowed", default=None
)


def _may_run_again() -> bool:
    check = _rerun_allowed.get()
    if check is None:
        return True
    try:
        return check()
    except Exception:  # a connection too broken to answer is not worth a retry
        return False


def database_key(system: str, host: str | None, port: int | None, namespace: str | None) -> str:
    """The breaker name of a database endpoint: ``system://host:port/namespace``.

    Lower-cased host, the port always written, never a user or password. Without a host
    (SQLite, a Unix socket) it is ``system:///namespace``, as SQLAlchemy writes it:
    ``sqlite:///app.db`` for a relative path, ``sqlite:////var/app.db`` for an absolute
    one, ``sqlite:///:memory:`` in memory.
    """
    if host is None:
        return f"{system}:///{namespace or ''}"
    if not host.startswith("/"):  # a socket path's case matters; a host name's does not
        host = host.lower()
    if ":" in host and not host.startswith("["):  # IPv6 literal
        host = f"[{host}]"
    path = f"/{namespace}" if namespace not in (None, "") else ""
    address = host if port is None else f"{host}:{port}"
    return f"{system}://{address}{path}"


@dataclass(frozen=True, slots=True, eq=False)
class DbEndpoint:
    """Where a connection goes: what names its breaker and fills the span's server fields.

    Compared and hashed by identity: adapters make one per connection (or pool) and cache
    it, and the span-attribute cache keys on it for every operation.
    """

    system: str
    """``db.system.name``: ``postgresql``, ``mysql``, ``mariadb``, ``sqlite``, ``redis``."""
    host: str | None
    port: int | None
    namespace: str | None
    """``db.namespace``: the database name, the SQLite file, the Redis database index."""
    sentinel_service: str | None = None
    """The master a Redis Sentinel resolves at connect time, when no host is known before:
    the breaker is then the service's, ``redis+sentinel://<service>/<db>``, so that one
    failed service does not reject every other."""
    key: str = field(init=False)
    attributes: dict[str, Any] = field(init=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        scheme = "mysql" if self.system == "mariadb" else self.system
        if self.sentinel_service is not None:
            key = f"{scheme}+sentinel://{self.sentinel_service}/{self.namespace or ''}"
        else:
            key = database_key(scheme, self.host, self.port, self.namespace)
        object.__setattr__(self, "key", key)
        attributes: dict[str, Any] = {"db.system.name": self.system}
        if self.namespace not in (None, ""):
            attributes["db.namespace"] = self.namespace
        if self.host is not None:
            attributes["server.address"] = self.host
            if self.port is not None:
                attributes["server.port"] = self.port
        object.__setattr__(self, "attributes", attributes)


class DbLibrary(Protocol):
    """What an adapter tells the core about its driver.

    ``name`` is the instrumentation's name (``OTEL_RESILIENCE_DISABLED`` takes it).
    ``rejection_error`` subclasses both :class:`CircuitOpenError` and the driver's own
    "unavailable" error (``OperationalError``; redis's ``ConnectionError``).
    """

    name: str
    rejection_error: type[CircuitOpenError]

    def unavailable(self, error: Exception) -> bool | None:
        """``True``: the server is unavailable (a failure for the breaker, retryable);
        ``False``: the server answered, the error is the application's (a success);
        ``None``: not the driver's error at all, nothing reached the server (neither)."""
        ...


class _DbCall(NamedTuple):
    """What the engine's :class:`_DbKind` knows of one operation."""

    name: str
    metric_attributes: dict[str, Any]
    span_attributes: dict[str, Any]


class _DbKind:
    """The database conventions for the call engine: names, attributes, what fails.

    The breaker only hears about errors that mean the server is unavailable (the driver's
    classification, :meth:`DbLibrary.unavailable`): a syntax error or a duplicate key proves
    the server up and counts as a success; an error raised before anything reached the
    server (a wrong argument type) counts as neither.
    """

    __slots__ = ("duration", "library", "library_name", "rejection_error")
    reads_later = False  # a driver has read the rows when the call returns

    def __init__(self, library: DbLibrary, duration: Histogram) -> None:
        self.library = library
        self.library_name = library.name
        self.rejection_error = library.rejection_error
        self.duration = duration

    def span_start(self, call: _DbCall) -> tuple[str, Mapping[str, Any]]:
        return call.name, call.span_attributes

    def sending_context(
        self, call: _DbCall, span: trace.Span, current: context.Context
    ) -> context.Context:
        return context.Context({**current, SPAN_KEY: span, _IN_DB_CALL: True})

    def judge_error(self, call: _DbCall, error: BaseException) -> Verdict:
        return _verdict(self.library, error)

    def error_type(self, call: _DbCall, error: BaseException) -> str:
        """``error.type``: the SQLSTATE when the driver gives one, else the exception's class."""
        sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        return sqlstate if isinstance(sqlstate, str) and sqlstate else type(error).__qualname__

    def error_description(self, call: _DbCall, error: BaseException) -> str | None:
        return type(error).__name__  # not the message: it may quote the statement's values

    def error_attributes(
        self, call: _DbCall, error_type: str, result: object
    ) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        return {"error.type": error_type}, {**call.metric_attributes, "error.type": error_type}

    def judge_result(self, call: _DbCall, result: object) -> bool:
        return False

    def server_wait(self, call: _DbCall, result: object) -> float | None:
        return None

    def answered(
        self, call: _DbCall, result: object
    ) -> tuple[Mapping[str, Any], Mapping[str, Any], bool]:
        return _NOTHING, call.metric_attributes, False

    def finish_later(
        self, call: _DbCall, result: object, finish: Callable[[BaseException | None], None]
    ) -> bool:
        return False


_NOTHING: Mapping[str, Any] = {}


def _verdict(library: DbLibrary, error: BaseException) -> Verdict:
    """The driver's verdict on ``error`` for the breaker; never raises.

    A driver's classification that raises must not lose the permit (a half-open trial
    slot lost for good rejects every call until restart): it then counts as neither.
    """
    if not isinstance(error, Exception):
        return None
    try:
        return library.unavailable(error)
    except Exception:
        _logger.warning(
            "%s could not classify %s; it counts as neither success nor failure",
            library.name,
            type(error).__name__,
        )
        return None


class OutgoingDb:
    """Breaker, retries, span and metrics around one driver's connections and operations."""

    def __init__(
        self,
        library: DbLibrary,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        registry: CircuitBreakerRegistry | None = None,
        retry: RetrySettings | None = None,
        resilience: bool = True,
        retry_read_only: bool = False,
    ) -> None:
        """Everything explicit: a component used as a library reads no settings itself.

        ``retry`` ``None``: no retries. An instrumentor builds it with :meth:`from_options`
        from the settings it was given.
        """
        self.library = library
        scope = f"otel_resilience.instrumentation.{library.name}"
        duration = duration_histogram(
            "otel_resilience.instrumentation.db",
            "db.client.operation.duration",
            "Duration of database client operations.",
            meter_provider,
        )
        self._engine: CallEngine[_DbCall, Any] = CallEngine(
            _DbKind(library, duration), trace.get_tracer(scope, __version__, tracer_provider)
        )
        self._endpoints = EndpointResilience(registry, retry, resilience)
        self.retry_read_only = retry_read_only
        self._calls: dict[tuple[DbEndpoint, Statement], _DbCall] = {}

    @classmethod
    def from_options(
        cls,
        library: DbLibrary,
        options: Mapping[str, Any],
        *,
        retry_read_only: Callable[[Settings], bool] | None = None,
    ) -> OutgoingDb:
        """Built from an instrumentor's ``instrument(**options)``, as every adapter takes them.

        ``options["settings"]`` is what the launcher's configurator read and validated (the
        distro passes it to our instrumentors); an instrumentor used in code without it
        reads the environment once (:func:`settings_from_options`). Explicit options
        (``retry``, ``resilience``, ``retry_read_only``) override the settings.
        ``retry_read_only`` picks the adapter's own setting (Redis's differs from the SQL
        drivers').
        """
        resolved = AdapterOptions.resolve(library.name, options)
        read_only = options.get("retry_read_only")
        if read_only is None:
            pick = retry_read_only or (lambda settings: settings.db_retry_read_only)
            read_only = pick(resolved.settings)
        return cls(
            library,
            tracer_provider=resolved.tracer_provider,
            meter_provider=resolved.meter_provider,
            registry=resolved.registry,
            retry=resolved.retry,
            resilience=resolved.resilience,
            retry_read_only=read_only,
        )

    @property
    def resilience(self) -> bool:
        """Whether breakers and retries are on for this driver (``OTEL_RESILIENCE_DISABLED``)."""
        return self._endpoints.enabled

    # --- per endpoint -----------------------------------------------------------------------

    def _breaker(self, key: str) -> CircuitBreaker | None:
        return self._endpoints.breaker(key)

    def _retry(self, key: str, purpose: str, breaker: CircuitBreaker) -> Retry | None:
        """The endpoint's retry policy for ``purpose`` (``connect`` or ``read``)."""
        return self._endpoints.retry(
            (key, purpose),
            breaker,
            lambda settings: Retry.from_settings(
                key,
                settings,
                breaker=breaker,
                retry_on=(lambda error: is_judged_failure(error) and _may_run_again(),),
                hooks=(settle_as_retried_past,),
            ),
            kept=2,
        )

    def _call(self, endpoint: DbEndpoint, statement: Statement) -> _DbCall:
        """``{db.operation.name} {target}``, the metric's attributes and the span's."""
        cached = self._calls.get((endpoint, statement))
        if cached is not None:
            return cached
        attributes = dict(endpoint.attributes)
        target = statement.procedure or statement.collection or endpoint.namespace
        if statement.procedure:
            attributes["db.stored_procedure.name"] = statement.procedure
        if statement.operation:
            attributes["db.operation.name"] = statement.operation
        if statement.collection:
            attributes["db.collection.name"] = statement.collection
        if statement.operation:
            name = f"{statement.operation} {target}" if target else statement.operation
        else:
            name = target or endpoint.system
        call = _DbCall(name, attributes, {**attributes, "db.query.text": statement.text})
        if len(self._calls) >= 1024:
            self._calls.clear()
        self._calls[endpoint, statement] = call
        return call

    # --- connecting ---------------------------------------------------------------------------

    def connect(self, endpoint: DbEndpoint, connect: Callable[[], T]) -> T:
        """Open a connection through the endpoint's breaker, retrying when it is unavailable.

        No span: the conventions have none for connecting, and the operation's span that
        follows carries the endpoint.
        """
        if instrumentation_suppressed(context.get_current()):
            return connect()
        breaker = self._breaker(endpoint.key)
        if breaker is None:
            return connect()
        retry = self._retry(endpoint.key, "connect", breaker)
        if retry is None:
            return self._connect_attempt(breaker, connect)
        held = HeldVerdict()
        token = held_verdict.set(held)
        try:
            return retry.call(self._connect_attempt, breaker, connect)
        finally:
            held_verdict.reset(token)
            held.settle(True)

    async def connect_async(self, endpoint: DbEndpoint, connect: Callable[[], Awaitable[T]]) -> T:
        """:meth:`connect` for async drivers; retries wait with the running library."""
        if instrumentation_suppressed(context.get_current()):
            return await connect()
        breaker = self._breaker(endpoint.key)
        if breaker is None:
            return await connect()
        retry = self._retry(endpoint.key, "connect", breaker)
        if retry is None:
            return await self._connect_attempt_async(breaker, connect)
        held = HeldVerdict()
        token = held_verdict.set(held)
        try:
            return await retry.call_async(self._connect_attempt_async, breaker, connect)
        finally:
            held_verdict.reset(token)
            held.settle(True)

    def _connect_attempt(self, breaker: CircuitBreaker, connect: Callable[[], T]) -> T:
        permit = admit(breaker, self.library.rejection_error, None)
        try:
            connection = connect()
        except BaseException as error:
            record_failed(permit, _verdict(self.library, error), error)
            raise
        permit.record("success")
        return connection

    async def _connect_attempt_async(
        self, breaker: CircuitBreaker, connect: Callable[[], Awaitable[T]]
    ) -> T:
        permit = admit(breaker, self.library.rejection_error, None)
        try:
            connection = await connect()
        except BaseException as error:
            record_failed(permit, _verdict(self.library, error), error)
            raise
        permit.record("success")
        return connection

    # --- operations ---------------------------------------------------------------------------

    def _retry_for(
        self,
        endpoint: DbEndpoint,
        statement: Statement,
        breaker: CircuitBreaker | None,
        in_transaction: Callable[[], bool] | None,
    ) -> Retry | None:
        if (
            breaker is None
            or not self.retry_read_only
            or not statement.read_only
            or in_transaction is None
            or in_transaction()
        ):
            return None
        return self._retry(endpoint.key, "read", breaker)

    def execute(
        self,
        endpoint: DbEndpoint,
        statement: Statement,
        call: Callable[[], T],
        *,
        in_transaction: Callable[[], bool] | None = None,
    ) -> T:
        """Run one operation with everything this distribution adds.

        ``in_transaction`` says whether running a statement now would be inside a
        transaction, or cannot be done again at all (the connection is closed); it is asked
        before the first attempt and again before each retry. Without it the operation is
        never retried.
        """
        current = context.get_current()
        if current.get(_IN_DB_CALL) or instrumentation_suppressed(current):
            return call()
        try:
            breaker = self._breaker(endpoint.key)
            retry = self._retry_for(endpoint, statement, breaker, in_transaction)
            described = self._call(endpoint, statement)
        except Exception as error:  # fail-safe: our bug must not change what the caller sees
            _logger.warning(
                "%s operation not instrumented (%s)", self.library.name, type(error).__name__
            )
            return call()
        if retry is None:
            return cast(
                T, self._engine.attempt(described, breaker, call, (), _NO_KEYWORDS, current)
            )
        token = _rerun_allowed.set(_negation(in_transaction))
        try:
            return cast(
                T, self._engine.run(described, breaker, retry, call, (), _NO_KEYWORDS, current)
            )
        finally:
            _rerun_allowed.reset(token)

    async def execute_async(
        self,
        endpoint: DbEndpoint,
        statement: Statement,
        call: Callable[[], Awaitable[T]],
        *,
        in_transaction: Callable[[], bool] | None = None,
    ) -> T:
        """:meth:`execute` for async drivers; retries wait with the running library."""
        current = context.get_current()
        if current.get(_IN_DB_CALL) or instrumentation_suppressed(current):
            return await call()
        try:
            breaker = self._breaker(endpoint.key)
            retry = self._retry_for(endpoint, statement, breaker, in_transaction)
            described = self._call(endpoint, statement)
        except Exception as error:
            _logger.warning(
                "%s operation not instrumented (%s)", self.library.name, type(error).__name__
            )
            return await call()
        engine = self._engine
        if retry is None:
            return cast(
                T, await engine.attempt_async(described, breaker, call, (), _NO_KEYWORDS, current)
            )
        token = _rerun_allowed.set(_negation(in_transaction))
        try:
            return cast(
                T,
                await engine.run_async(described, breaker, retry, call, (), _NO_KEYWORDS, current),
            )
        finally:
            _rerun_allowed.reset(token)


_NO_KEYWORDS: Mapping[str, Any] = {}


def _negation(in_transaction: Callable[[], bool] | None) -> Callable[[], bool]:
    return (lambda: False) if in_transaction is None else (lambda: not in_transaction())
