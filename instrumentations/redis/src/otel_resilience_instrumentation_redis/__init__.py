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
are the application's data, so none reaches a span, a metric or a log.

The breaker is per server and database: ``redis://host:port/db``, read from the client's
connection pool, never with its password. A Unix-socket client names the socket as its
``server.address`` (what the semantic conventions ask), without port. Connection errors,
timeouts and a server still loading its data set are failures; an error the server answers
(``WRONGTYPE``, wrong password, missing ACL permission) is the application's and counts as a
success. A rejected command raises :class:`RedisCircuitOpenError`, also a
``redis.exceptions.ConnectionError``: existing ``except`` clauses catch it.

Retries: a read-only command (``GET``, ``HGETALL``...; see ``READ_ONLY_COMMANDS``) of a
client is retried when the server is unavailable, unless ``retry_read_only=False`` or
``OTEL_RESILIENCE_REDIS_RETRY_READ_ONLY=false``; a write never is, nor anything in a
pipeline or transaction (its commands may have run). redis-py has a retry of its own: since
6.0 a client retries *every* command, writes included, on ``ConnectionError`` and
``TimeoutError`` (8.1: 10 retries, exponential backoff with jitter from 10 ms to 1 s),
reconnecting first. Retries happen at one layer only: when the client retries by itself,
ours stay out of the way (one span is then one command, however many times redis-py tried
it, and the breaker counts a failure once redis-py has given up); when it does not (redis-py
5, or a client built with ``retry=None`` or ``Retry(NoBackoff(), 0)``), ours retry its reads,
bounded by the retry budget and stopped by an open breaker.
redis-py's pool reconnects a connection the server closed while it was idle before sending
on it, so a retry is what saves a command whose connection dies under it.

Not covered: ``RedisCluster`` (whose commands go to many servers), pub/sub and ``MONITOR``.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable, Collection, Iterable
from typing import Any

import redis
import redis.asyncio.client
import redis.client
import redis.exceptions
import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap

from otel_resilience import CircuitOpenError
from otel_resilience._db_client import DbEndpoint, OutgoingDb
from otel_resilience._sql import Statement
from otel_resilience.config import current_settings
from otel_resilience_instrumentation_redis.package import _instruments

__all__ = ["READ_ONLY_COMMANDS", "RedisCircuitOpenError", "RedisInstrumentor"]

_logger = logging.getLogger(__name__)

READ_ONLY_COMMANDS: frozenset[str] = frozenset(
    {
        # keys and server
        "DBSIZE", "DUMP", "ECHO", "EXISTS", "EXPIRETIME", "INFO", "KEYS", "LASTSAVE",
        "MEMORY USAGE", "OBJECT ENCODING", "OBJECT FREQ", "OBJECT IDLETIME",
        "OBJECT REFCOUNT", "PEXPIRETIME", "PING", "PTTL", "RANDOMKEY", "SCAN", "TIME",
        "TTL", "TYPE",
        # strings and bits
        "BITCOUNT", "BITFIELD_RO", "BITPOS", "GET", "GETBIT", "GETRANGE", "LCS", "MGET",
        "STRLEN", "SUBSTR",
        # hashes
        "HEXISTS", "HGET", "HGETALL", "HKEYS", "HLEN", "HMGET", "HRANDFIELD", "HSCAN",
        "HSTRLEN", "HVALS",
        # lists
        "LINDEX", "LLEN", "LPOS", "LRANGE",
        # sets
        "SCARD", "SDIFF", "SINTER", "SINTERCARD", "SISMEMBER", "SMEMBERS", "SMISMEMBER",
        "SRANDMEMBER", "SSCAN", "SUNION",
        # sorted sets
        "ZCARD", "ZCOUNT", "ZDIFF", "ZINTER", "ZINTERCARD", "ZLEXCOUNT", "ZMSCORE",
        "ZRANDMEMBER", "ZRANGE", "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANK", "ZREVRANGE",
        "ZREVRANGEBYLEX", "ZREVRANGEBYSCORE", "ZREVRANK", "ZSCAN", "ZSCORE", "ZUNION",
        # geo, streams, scripts
        "GEODIST", "GEOHASH", "GEOPOS", "GEORADIUSBYMEMBER_RO", "GEORADIUS_RO",
        "GEOSEARCH", "XLEN", "XPENDING", "XRANGE", "XREVRANGE",
        "EVALSHA_RO", "EVAL_RO", "FCALL_RO", "SORT_RO",
    }
)  # fmt: skip
"""Commands that change nothing, so running one twice is safe: the ones retried."""

_MAX_ARGUMENTS_SHOWN = 32
_MAX_COMMANDS_SHOWN = 32


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


@functools.lru_cache(maxsize=1024)
def _command(name: str, arguments: int) -> Statement:
    shown = min(arguments, _MAX_ARGUMENTS_SHOWN)
    text = name + " ?" * shown + (" ..." if arguments > shown else "")
    return Statement(
        operation=name, collection=None, text=text, read_only=name in READ_ONLY_COMMANDS
    )


def command_statement(args: tuple[Any, ...]) -> Statement:
    """``GET ?``: the command's name and one ``?`` per argument, shared by its calls."""
    name = args[0]
    if isinstance(name, bytes | bytearray | memoryview):
        name = bytes(name).decode("utf-8", "replace")
    # Arguments beyond those shown are not counted, so that MSET of any size is one entry.
    return _command(str(name).upper(), min(len(args) - 1, _MAX_ARGUMENTS_SHOWN + 1))


@functools.lru_cache(maxsize=256)
def _batch(commands: tuple[Statement, ...], transaction: bool) -> Statement:
    lines = [command.text for command in commands[:_MAX_COMMANDS_SHOWN]]
    if len(commands) > _MAX_COMMANDS_SHOWN:
        lines.append(f"... ({len(commands) - _MAX_COMMANDS_SHOWN} more)")
    return Statement(
        operation="MULTI" if transaction else "PIPELINE",
        collection=None,
        text="\n".join(lines),
        read_only=all(command.read_only for command in commands),
    )


def pipeline_statement(pipeline: Any) -> Statement:
    """One statement for a pipeline's queued commands: ``MULTI`` or ``PIPELINE``."""
    # asyncio's flag is is_transaction: there, "transaction" is the method of Redis.
    transaction = getattr(pipeline, "is_transaction", None)
    if transaction is None:
        transaction = pipeline.transaction
    transaction = bool(transaction or pipeline.explicit_transaction)
    stack: Iterable[Any] = pipeline.command_stack
    commands = tuple(
        command_statement(entry.args if hasattr(entry, "args") else entry[0]) for entry in stack
    )
    return _batch(commands, transaction)


def endpoint_of(connection_kwargs: dict[str, Any]) -> DbEndpoint:
    """The endpoint a pool's connections go to; the password in these kwargs stays there."""
    namespace = str(connection_kwargs.get("db") or 0)
    path = connection_kwargs.get("path")
    if path:  # a UnixDomainSocketConnection
        return DbEndpoint("redis", str(path), None, namespace)
    host = connection_kwargs.get("host")
    if host is None:  # e.g. a Sentinel pool, which finds its server at connect time
        return DbEndpoint("redis", None, None, namespace)
    return DbEndpoint("redis", str(host), int(connection_kwargs.get("port") or 6379), namespace)


class _Endpoints:
    """Each connection pool's endpoint, computed once: this runs on every command."""

    def __init__(self) -> None:
        self._cache: weakref.WeakKeyDictionary[Any, tuple[object, DbEndpoint]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def of(self, client: Any) -> DbEndpoint:
        pool = client.connection_pool
        kwargs = pool.connection_kwargs
        cached = self._cache.get(pool)
        if cached is not None and cached[0] is kwargs:
            return cached[1]
        endpoint = endpoint_of(kwargs)
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
            _Redis(), kwargs, retry_read_only=current_settings().redis_retry_read_only
        )
        endpoints = _Endpoints()

        def make(kind: str, asynchronous: bool) -> Wrapper:
            execute = outgoing.execute_async if asynchronous else outgoing.execute
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
                return execute(
                    endpoint,
                    statement,
                    lambda: wrapped(*args, **kwargs),
                    in_transaction=(lambda: _retries_by_itself(instance)) if retryable else None,
                )

            return traced

        for module, attribute, kind in _HOOKS:
            wrapt.wrap_function_wrapper(
                module, attribute, make(kind, module.startswith("redis.asyncio"))
            )

    def _uninstrument(self, **kwargs: Any) -> None:
        for owner in (redis.client, redis.asyncio.client):
            unwrap(owner.Redis, "execute_command")
            unwrap(owner.Pipeline, "immediate_execute_command")
            unwrap(owner.Pipeline, "execute")
