"""What surrounds a log record: the request's bound fields and the current span.

Bound context is the part of a request's identity that every log line should carry without
each call passing it: ``request_id`` and ``user_id`` by convention, but any keys work
(``tenant``, ``order_id``, dotted OTel-style names through the positional mapping)::

    from otel_resilience.logs._context import bind

    with bind(request_id="r1", user_id="u7"):
        log.info("order placed")                  # carries request_id and user_id
        with bind(user_id="u8", step="pay"):      # nested binds merge, inner wins
            log.info("charging")                  # request_id=r1 user_id=u8 step=pay
        log.info("done")                          # back to request_id=r1 user_id=u7

    binding = bind(tenant="acme")                 # a scope without ``with``, e.g. set in
    ...                                           # a middleware's before-request hook
    binding.unbind()                              # and undone in its after-request hook

It lives in one ``contextvars.ContextVar``, so it follows the program's own flow of control
with no help: every asyncio task starts with a copy of its creator's context (so concurrent
requests, each in its task, never see each other's fields), and ``asyncio.to_thread`` carries
it into the worker thread. Plain ``threading.Thread`` and ``ThreadPoolExecutor.submit`` start
from an empty context (before Python 3.14); pass ``contextvars.copy_context().run`` as the
target, or submit ``ctx.run, fn``, to hand the fields over.

The value is an immutable mapping replaced wholesale on every bind, never mutated. That makes
:func:`bound` free (one ``ContextVar.get``) and lets formatters cache their per-mapping work
(redaction, rendering) by identity: the same object comes back until something is bound.
The values themselves are stored as given and rendered at format time.

The current span is read at format time too (:func:`current_span_ids`), from the OTel
context of the thread or task that logs; its ids are turned into hex once per span.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Final, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

__all__ = [
    "Binding",
    "SpanIds",
    "bind",
    "bound",
    "current_otel_context",
    "current_span_ids",
    "holds_only_constants",
    "span_ids_of",
]

EMPTY: Final[Mapping[str, object]] = MappingProxyType({})

_bound_context: Final[ContextVar[Mapping[str, object]]] = ContextVar(
    "otel_resilience.logs.bound_context", default=EMPTY
)


class Binding:
    """Fields bound by one :func:`bind` call, in force until unbound or until ``with`` ends.

    Unbinding restores exactly what was bound before this binding, so it also drops any
    binding made after it and not yet undone (as leaving an outer ``with`` would). It must
    happen in the context that bound (the same task or thread); a second unbind does nothing.
    """

    __slots__ = ("_fields", "_token")

    def __init__(self, token: Token[Mapping[str, object]], fields: Mapping[str, object]) -> None:
        self._token: Token[Mapping[str, object]] | None = token
        self._fields = fields

    @property
    def fields(self) -> Mapping[str, object]:
        """The whole bound context this bind produced: earlier fields with its own merged in."""
        return self._fields

    def unbind(self) -> None:
        """Restore the fields bound before this binding; idempotent."""
        token, self._token = self._token, None
        if token is None:
            return
        try:
            _bound_context.reset(token)
        except ValueError as error:
            raise ValueError(
                "this binding was made in another context (another asyncio task or thread); "
                "unbind it where it was bound"
            ) from error

    reset = unbind

    def __enter__(self) -> Binding:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.unbind()


def bind(fields: Mapping[str, object] | None = None, /, **named: object) -> Binding:
    """Add ``fields`` (and keyword fields, which win) to the bound context, from now on.

    Use it as a context manager, or keep the returned :class:`Binding` and call
    :meth:`Binding.unbind`. The positional mapping admits keys that are not identifiers
    (``"tenant.id"``); keys must be strings.
    """
    current = _bound_context.get()
    if not fields and not named:
        # Nothing new: keep the same object, so formatters' caches keyed on it stay warm.
        return Binding(_bound_context.set(current), current)
    merged = dict(current)
    if fields:
        for key in fields:
            if not isinstance(key, str):
                raise TypeError(f"bound field names must be str, not {type(key).__name__}")
        merged.update(fields)
    merged.update(named)
    # The dict is referenced only by its proxy, so the mapping is immutable in practice.
    result = MappingProxyType(merged)
    return Binding(_bound_context.set(result), result)


def bound() -> Mapping[str, object]:
    """The fields bound in the current context: a read-only mapping, empty when none.

    The same object is returned until something is bound or unbound, so callers may cache
    work derived from it by identity (holding a reference, so the identity stays unique),
    as long as :func:`holds_only_constants` says its values cannot change either.
    """
    return _bound_context.get()


_CONSTANT_TYPES: Final = frozenset({str, int, float, bool, bytes, type(None)})


def holds_only_constants(fields: Mapping[str, object]) -> bool:
    """Whether every value is an immutable scalar (str, int, float, bool, bytes, None).

    A bound dict or object can be changed after it was bound, so work derived from it
    (redaction, rendering) must be redone per record: a key added later could be a secret.
    """
    return all(type(value) in _CONSTANT_TYPES for value in fields.values())


@dataclass(frozen=True, slots=True)
class SpanIds:
    """A valid span context's ids in their W3C hex form."""

    trace_id: str
    """32 lowercase hex digits."""
    span_id: str
    """16 lowercase hex digits."""
    trace_flags: str
    """2 lowercase hex digits: ``01`` when sampled."""


def _otel_context_reader() -> Callable[[], otel_context.Context]:
    """``otel_context.get_current``, or the very ``ContextVar.get`` it ends in.

    The API's default runtime context (chosen once, at its import) keeps the current
    context in one ``ContextVar``; reading it directly saves two Python calls per record.
    Any other runtime context (``OTEL_PYTHON_CONTEXT``) is read through the API.
    """
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if type(runtime) is ContextVarsRuntimeContext and isinstance(variable, ContextVar):
        return cast("Callable[[], otel_context.Context]", variable.get)
    return otel_context.get_current


current_otel_context: Final = _otel_context_reader()
"""The current OTel context, as ``opentelemetry.context.get_current()`` returns it."""

bound_reader: Final = _bound_context.get
""":func:`bound` without the Python call around it, for the formatters' fast paths."""


# One entry: (OTel context, span context, its ids or None when invalid). The OTel context is
# immutable and replaced whenever a span is entered or left, so consecutive records in one
# span hit by identity without even looking the span up; a span's context object is the
# same on every ``get_span_context()`` call, and its ints are compared as a last chance for
# span contexts rebuilt per call. Holding the entry keeps one context alive, no more.
# A tuple replaced in one assignment, so concurrent readers never see a torn entry.
_last_span: tuple[otel_context.Context | None, trace.SpanContext, SpanIds | None] = (
    None,
    trace.INVALID_SPAN_CONTEXT,
    None,
)


def current_span_ids() -> SpanIds | None:
    """The current span's ids, or None outside a valid span; formatted once per span."""
    return span_ids_of(current_otel_context())


def span_ids_of(current: otel_context.Context) -> SpanIds | None:
    """The ids of the span current in the OTel context ``current``, or None."""
    global _last_span  # noqa: PLW0603 - a one-entry cache
    cached_current, cached_span, cached_ids = _last_span
    if current is cached_current:
        return cached_ids
    span = trace.get_current_span(current).get_span_context()
    if span is cached_span or (
        span.span_id == cached_span.span_id
        and span.trace_id == cached_span.trace_id
        and span.trace_flags == cached_span.trace_flags
    ):
        ids = cached_ids
    elif span.is_valid:
        ids = SpanIds(
            trace_id=format(span.trace_id, "032x"),
            span_id=format(span.span_id, "016x"),
            trace_flags=format(span.trace_flags, "02x"),
        )
    else:
        ids = None
    _last_span = (current, span, ids)
    return ids
