"""otel-resilience for redis-py: a circuit breaker, retries, a client span and metrics.

Under ``opentelemetry-instrument`` this instrumentor loads by itself. Without the launcher::

    import redis
    from otel_resilience_instrumentation_redis import RedisInstrumentor

    RedisInstrumentor().instrument()
    redis.Redis().get("greeting")  # breaker, retries, span "GET 0", metrics

What gets a span (clients created before instrumentation included):

* every command of a client, sync or asyncio (``Redis.execute_command``);
* a pipeline, as one span for all its queued commands (``Pipeline.execute``): operation
  ``MULTI`` when it runs as a transaction, ``PIPELINE`` when not (the names redis-py's own
  telemetry uses; a fixed name keeps span names and metric series few), and a query text of
  one line per queued command. Queued commands get no span of their own;
* a command a pipeline runs at once (``Pipeline.immediate_execute_command``): ``WATCH``, and
  what is read under it before ``MULTI``.

``db.query.text`` is the command and one ``?`` per argument (``SET ? ?``): keys and values
are the application's data, so none reaches a span, a metric or a log. A command is named
as the server receives it: redis-py splits a command given as one string
(``execute_command("SET k v")``, its own ``"CONFIG SET"``) at whitespace, so the first word
is the command, a known subcommand joins it (``CONFIG SET ? ?``, ``OBJECT ENCODING ?``), and
every other word is an argument. ``AUTH`` and ``HELLO`` carry credentials: their query text
is the bare name, without even a count of arguments.

The breaker is per server and database: ``redis://host:port/db``, read from the client's
connection pool, never with its password. A Unix-socket client names the socket as its
``server.address`` (what the semantic conventions ask), without port. Connection errors,
timeouts and a server still loading its data set are failures; an error the server answers
(``WRONGTYPE``, wrong password, missing ACL permission) is the application's and counts as a
success. A rejected command raises :class:`RedisCircuitOpenError`, also a
``redis.exceptions.ConnectionError``: existing ``except`` clauses catch it.

Retries: a write (any command not in ``READ_ONLY_COMMANDS``, and a pipeline or transaction
holding one) is sent at most once. Not by ours, and not by redis-py's own retry either,
which since 6.0 resends *every* command of a client on ``ConnectionError`` and
``TimeoutError`` (8.x: 10 retries, exponential backoff with jitter from 10 ms to 1 s): when
the reply to an ``INCR`` is lost, the server may well have run it, and the caller gets the
``ConnectionError`` rather than a counter moved twice. redis-py still retries connecting
(nothing has been sent then), and still runs its failure handler (it closes the connection;
under ``WATCH`` it raises ``WatchError``). How, in ``_at_most_once.py``.

A read-only command (``GET``, ``HGETALL``...) of a client is retried when the server is
unavailable, unless ``retry_read_only=False`` or ``OTEL_RESILIENCE_REDIS_RETRY_READ_ONLY=false``,
at one layer only: when the client retries by itself, ours stay out of the way (one span is
then one command, however many times redis-py tried it, and the breaker counts a failure
once redis-py has given up); when it does not (redis-py 5, or a client built with
``retry=None`` or ``Retry(NoBackoff(), 0)``), ours retry its reads, bounded by the retry
budget and stopped by an open breaker. Read-only pipelines are left to redis-py's retry.
redis-py's pool reconnects a connection the server closed while it was idle before sending
on it, so a retry is what saves a command whose connection dies under it.

With resilience off for redis (``OTEL_RESILIENCE_DISABLED=redis``, ``resilience=False``),
the client is left as redis-py made it: spans and metrics only, redis-py's retry resending
writes as it does without this distribution.

Not covered: ``RedisCluster`` (whose commands go to many servers), pub/sub and ``MONITOR``.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable, Collection
from typing import Any

import redis
import redis.asyncio.client
import redis.client
import redis.exceptions
import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap

from otel_resilience import CircuitOpenError
from otel_resilience.instrumentation import DbEndpoint, OutgoingDb, unlock_after_fork
from otel_resilience_instrumentation_redis import _at_most_once
from otel_resilience_instrumentation_redis._commands import (
    READ_ONLY_COMMANDS,
    command_statement,
    pipeline_statement,
)
from otel_resilience_instrumentation_redis.package import _instruments

__all__ = ["READ_ONLY_COMMANDS", "RedisCircuitOpenError", "RedisInstrumentor"]

_logger = logging.getLogger(__name__)


class RedisCircuitOpenError(CircuitOpenError, redis.exceptions.ConnectionError):
    """The endpoint's circuit breaker rejected the command; nothing was sent."""

    # RedisError's __init__ (which does not run, see CircuitOpenError) sets these in redis-py
    # 8, and its __repr__ reads error_type: class defaults keep repr() and readers working.
    error_type: Any = getattr(getattr(redis.exceptions, "ExceptionType", None), "NETWORK", None)
    status_code: str | None = None


_APPLICATION_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.AuthenticationError,  # ConnectionError subclasses: checked first
    redis.exceptions.AuthorizationError,
)
_CLIENT_SIDE_ERRORS: tuple[type[Exception], ...] = tuple(
    error
    for error in (
        getattr(redis.exceptions, "MaxConnectionsError", None),  # the pool is full
        getattr(redis.exceptions, "ExternalAuthProviderError", None),  # no token to send
    )
    if error is not None
)
_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,  # BusyLoadingError ("LOADING") is one
    redis.exceptions.TimeoutError,
)


class _Redis:
    """What the core needs to know about redis-py's errors."""

    name: str = "redis"
    rejection_error: type[CircuitOpenError] = RedisCircuitOpenError

    def unavailable(self, error: Exception) -> bool | None:
        if isinstance(error, _CLIENT_SIDE_ERRORS):
            return None
        if isinstance(error, _APPLICATION_ERRORS):
            return False
        if isinstance(error, _UNAVAILABLE):
            return True
        if isinstance(error, redis.exceptions.WatchError):
            # redis-py turns a connection lost under WATCH into a WatchError raised while
            # handling it; a WatchError of its own means a watched key changed.
            cause = error.__context__
            return isinstance(cause, Exception) and self.unavailable(cause) is True
        if isinstance(error, redis.exceptions.RedisError):
            return False
        return None


def endpoint_of(connection_kwargs: dict[str, Any], service: str | None = None) -> DbEndpoint:
    """The endpoint a pool's connections go to; the password in these kwargs stays there.

    ``service`` is a Sentinel pool's master name: such a pool finds its server at connect
    time, so its breaker is the service's.
    """
    namespace = str(connection_kwargs.get("db") or 0)
    path = connection_kwargs.get("path")
    if path:  # a UnixDomainSocketConnection
        return DbEndpoint("redis", str(path), None, namespace)
    host = connection_kwargs.get("host")
    if host is None:  # e.g. a Sentinel pool, which finds its server at connect time
        return DbEndpoint("redis", None, None, namespace, sentinel_service=service)
    return DbEndpoint("redis", str(host), int(connection_kwargs.get("port") or 6379), namespace)


class _Endpoints:
    """Each connection pool's endpoint, computed once: this runs on every command."""

    def __init__(self) -> None:
        self._cache: weakref.WeakKeyDictionary[Any, tuple[object, DbEndpoint]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        unlock_after_fork(self, "_lock")

    def of(self, client: Any) -> DbEndpoint:
        pool = client.connection_pool
        kwargs = pool.connection_kwargs
        cached = self._cache.get(pool)
        if cached is not None and cached[0] is kwargs:
            return cached[1]
        service = getattr(pool, "service_name", None)
        endpoint = endpoint_of(kwargs, service if isinstance(service, str) else None)
        with self._lock:
            self._cache[pool] = (kwargs, endpoint)
        return endpoint


def _retries_by_itself(client: Any) -> bool:
    """Whether redis-py retries this client's commands itself (then ours must not).

    It is asked where the core asks "inside a transaction?": a plain client's command is on
    its own, so only redis-py's own retry keeps ours from retrying a read.
    """
    retry = client.connection_pool.connection_kwargs.get("retry")
    return retry is not None and bool(retry.get_retries())


Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]

_HOOKS: tuple[tuple[str, str, str], ...] = (
    # (module, attribute, kind)
    ("redis.client", "Redis.execute_command", "command"),
    ("redis.client", "Pipeline.immediate_execute_command", "immediate"),
    ("redis.client", "Pipeline.execute", "pipeline"),
    ("redis.asyncio.client", "Redis.execute_command", "command"),
    ("redis.asyncio.client", "Pipeline.immediate_execute_command", "immediate"),
    ("redis.asyncio.client", "Pipeline.execute", "pipeline"),
)


class RedisInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments redis-py's clients and pipelines; ``uninstrument()`` restores them.

    Takes ``tracer_provider``, ``meter_provider``, ``registry``, ``retry``, ``resilience``
    and ``retry_read_only`` (default ``OTEL_RESILIENCE_REDIS_RETRY_READ_ONLY``, true).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        outgoing = OutgoingDb.from_options(
            _Redis(), kwargs, retry_read_only=lambda settings: settings.redis_retry_read_only
        )
        endpoints = _Endpoints()
        # With resilience off, redis-py's retry is left as it is, resending writes included.
        writes_once = outgoing.resilience

        def make(kind: str, asynchronous: bool) -> Wrapper:
            execute = outgoing.execute_async if asynchronous else outgoing.execute
            at_most_once = (
                _at_most_once.at_most_once_async if asynchronous else _at_most_once.at_most_once
            )
            # Only a plain client's command may be retried; a pipeline's never is.
            retryable = kind == "command"

            def traced(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
                try:
                    if kind == "pipeline":
                        if not instance.command_stack and not instance.watching:
                            return wrapped(*args, **kwargs)  # nothing to send
                        statement = pipeline_statement(instance)
                    else:
                        statement = command_statement(args)
                    endpoint = endpoints.of(instance)
                except Exception:  # fail-safe: an unexpected shape goes out uninstrumented
                    _logger.warning("redis command not instrumented", exc_info=True)
                    return wrapped(*args, **kwargs)
                call = functools.partial(wrapped, *args, **kwargs)
                if writes_once and not statement.read_only and is_instrumentation_enabled():
                    call = functools.partial(at_most_once, call)
                return execute(
                    endpoint,
                    statement,
                    call,
                    in_transaction=(lambda: _retries_by_itself(instance)) if retryable else None,
                )

            return traced

        for module, attribute, kind in _HOOKS:
            wrapt.wrap_function_wrapper(
                module, attribute, make(kind, module.startswith("redis.asyncio"))
            )
        if writes_once:
            _at_most_once.install()

    def _uninstrument(self, **kwargs: Any) -> None:
        _at_most_once.uninstall()
        for owner in (redis.client, redis.asyncio.client):
            unwrap(owner.Redis, "execute_command")
            unwrap(owner.Pipeline, "immediate_execute_command")
            unwrap(owner.Pipeline, "execute")
