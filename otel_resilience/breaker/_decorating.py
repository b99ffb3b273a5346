"""Turning a ``call(function, *args)`` / ``call_async`` pair into a decorator, once.

The circuit breaker and the retry policy are both decorators over their ``call`` methods.
A sync function is wrapped in a ``functools.partial`` subclass rather than a Python closure:
calling it costs one Python frame less, a large share of a breaker's success-path overhead.
Its ``__get__`` makes it bind like a function, so decorated methods still receive ``self``.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["decorate"]


class _BoundCall(functools.partial[Any]):
    """``call`` with the decorated function bound in C; binds to instances like a method."""

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        return self if instance is None else types.MethodType(self, instance)


def decorate(
    function: Callable[..., Any],
    call: Callable[..., Any],
    call_async: Callable[..., Awaitable[Any]],
) -> Callable[..., Any]:
    """Wrap ``function`` so that each call goes through ``call`` (or ``call_async``).

    A generator function is refused: its body runs only as its generator is iterated,
    after the call has returned, so ``call`` would guard nothing but the generator's
    creation and never see a failure raised while iterating.
    """
    if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
        raise TypeError(
            f"{function.__qualname__} is a generator function: its body runs while it is "
            "iterated, after the decorated call returned; decorate the code that consumes it"
        )
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def decorated_async(*args: Any, **kwargs: Any) -> Any:
            return await call_async(function, *args, **kwargs)

        return decorated_async

    if isinstance(call, types.MethodType):  # unbound + instance: skips one indirection per call
        decorated = _BoundCall(call.__func__, call.__self__, function)
    else:
        decorated = _BoundCall(call, function)
    functools.update_wrapper(decorated, function)
    return decorated
