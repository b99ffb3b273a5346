"""A write goes to the server at most once, whatever redis-py's own retry would do.

Since 6.0 a redis-py client retries every command itself (8.x: up to 10 times), writes
included: when a connection dies after the server ran an ``INCR`` but before its reply
arrived, redis-py sends the ``INCR`` again on a new connection and the counter moves twice.
Around a command that is not read-only, the instrumentor runs the call with
:func:`at_most_once`, and the client's ``Retry.call_with_retry`` then stops after the first
failed attempt at the command itself: redis-py's failure handler still runs (it closes the
connection, it turns a connection lost under ``WATCH`` into a ``WatchError``), no backoff
is waited, and the caller gets the error.

Connecting is not sending: the same ``Retry`` also wraps establishing a connection (the
pool's, and a reconnect inside a command), and those attempts stay retried, since nothing
of the command has been sent yet. What tells them apart is whether an attempt entered the
function that sends the command (``_send_command_parse_response``, or a pipeline's
``_execute_transaction`` / ``_execute_pipeline``: what redis-py's command-level retry
runs). A ``Retry`` subclass that overrides ``call_with_retry`` is not seen, and keeps
retrying as it was written to.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio.client
import redis.asyncio.retry
import redis.client
import redis.retry

__all__ = ["at_most_once", "at_most_once_async", "install", "uninstall"]

T = TypeVar("T")


class _FailThenStop:
    """The ``fail`` handler of one ``call_with_retry`` run for a write.

    It runs redis-py's handler, then, if the attempt had begun sending the command, raises
    the attempt's error: how a ``Retry`` with no retries left ends too (after the handler,
    before any backoff).
    """

    __slots__ = ("fail", "sends_command")

    def __init__(self, fail: Callable[..., Any]) -> None:
        self.fail = fail
        self.sends_command = False

    def __call__(self, error: Exception, *failure_count: int) -> Any:
        handled = self.fail(error, *failure_count)
        if self.sends_command:
            raise error
        return handled


class _FailThenStopAsync(_FailThenStop):
    """:class:`_FailThenStop` for ``redis.asyncio``, whose ``Retry`` awaits its handler."""

    __slots__ = ()

    async def __call__(self, error: Exception, *failure_count: int) -> Any:
        handled = self.fail(error, *failure_count)
        if inspect.isawaitable(handled):
            handled = await handled
        if self.sends_command:
            raise error
        return handled


class _Write:
    """A write in flight, and the innermost ``call_with_retry`` running for it."""

    __slots__ = ("retrying",)

    def __init__(self) -> None:
        self.retrying: _FailThenStop | None = None


_write: contextvars.ContextVar[_Write | None] = contextvars.ContextVar(
    "otel_resilience.redis.write", default=None
)


def at_most_once(call: Callable[[], T]) -> T:
    """Run a client call that sends a write: redis-py will not send it again."""
    token = _write.set(_Write())
    try:
        return call()
    finally:
        _write.reset(token)


async def at_most_once_async(call: Callable[[], Awaitable[T]]) -> T:
    """:func:`at_most_once` for ``redis.asyncio``: the write is in flight while awaited."""
    token = _write.set(_Write())
    try:
        return await call()
    finally:
        _write.reset(token)


# The hooks are plain functions, not wrapt's proxies: three of them run on every command,
# read or write, and a function costs a fraction of a proxy's call.


def _call_with_retry_hook(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def call_with_retry(self: Any, do: Any, fail: Any, *args: Any, **kwargs: Any) -> Any:
        write = _write.get()
        if write is None:
            return original(self, do, fail, *args, **kwargs)
        retrying = _FailThenStop(fail)
        outer, write.retrying = write.retrying, retrying
        try:
            return original(self, do, retrying, *args, **kwargs)
        finally:
            write.retrying = outer

    return call_with_retry


def _call_with_retry_async_hook(original: Callable[..., Any]) -> Callable[..., Any]:
    # A coroutine function still: redis-py tells an asyncio Retry from a sync one by that.
    @functools.wraps(original)
    async def call_with_retry(self: Any, do: Any, fail: Any, *args: Any, **kwargs: Any) -> Any:
        write = _write.get()
        if write is None:
            return await original(self, do, fail, *args, **kwargs)
        retrying = _FailThenStopAsync(fail)
        outer, write.retrying = write.retrying, retrying
        try:
            return await original(self, do, retrying, *args, **kwargs)
        finally:
            write.retrying = outer

    return call_with_retry


def _sends_command_hook(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def sends_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        write = _write.get()
        if write is not None and write.retrying is not None:
            write.retrying.sends_command = True
        return original(self, *args, **kwargs)

    return sends_command


def _sends_command_async_hook(original: Callable[..., Any]) -> Callable[..., Any]:
    # Returns redis-py's coroutine rather than awaiting it in one of its own: one coroutine
    # less per command. Marked a coroutine function where Python can (3.12+).
    hook = _sends_command_hook(original)
    mark = getattr(inspect, "markcoroutinefunction", None)
    return hook if mark is None else mark(hook)


Hook = Callable[[Callable[..., Any]], Callable[..., Any]]

_HOOKS: tuple[tuple[type[Any], str, Hook], ...] = (
    (redis.retry.Retry, "call_with_retry", _call_with_retry_hook),
    (redis.asyncio.retry.Retry, "call_with_retry", _call_with_retry_async_hook),
    # What redis-py's command-level retry runs, and its connection-level retry never does.
    (redis.client.Redis, "_send_command_parse_response", _sends_command_hook),
    (redis.client.Pipeline, "_execute_transaction", _sends_command_hook),
    (redis.client.Pipeline, "_execute_pipeline", _sends_command_hook),
    (redis.asyncio.client.Redis, "_send_command_parse_response", _sends_command_async_hook),
    (redis.asyncio.client.Pipeline, "_execute_transaction", _sends_command_async_hook),
    (redis.asyncio.client.Pipeline, "_execute_pipeline", _sends_command_async_hook),
)

# (owner, attribute) -> (redis-py's function, ours in its place)
_installed: dict[tuple[type[Any], str], tuple[Any, Any]] = {}


def install() -> None:
    """Hook redis-py's retry; writes are sent at most once inside :func:`at_most_once`.

    A redis-py without one of these functions keeps its retry as it is (nothing is marked
    as sending a command, so nothing stops early).
    """
    for owner, attribute, hook in _HOOKS:
        original = vars(owner).get(attribute)
        if original is None or (owner, attribute) in _installed:
            continue
        replacement = hook(original)
        setattr(owner, attribute, replacement)
        _installed[owner, attribute] = (original, replacement)


def uninstall() -> None:
    """Put redis-py's functions back, unless something else has replaced ours since."""
    for (owner, attribute), (original, replacement) in list(_installed.items()):
        if vars(owner).get(attribute) is replacement:
            setattr(owner, attribute, original)
        del _installed[owner, attribute]
