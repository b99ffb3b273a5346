"""The one outgoing-HTTP-call wrapper that every HTTP adapter delegates to.

An adapter (requests, httpx) finds the single seam its library sends every request through,
and hands the request here with a ``send`` callable and a description of its library
(:class:`HttpLibrary`). Everything else lives here once: the endpoint's circuit breaker,
retries of idempotent requests, the client span of the stable HTTP semantic conventions
with trace-context propagation, the ``http.client.request.duration`` histogram (failed
requests included), and the mapping of a rejection onto the library's own error type.

Each attempt is its own CLIENT span, as the conventions ask for resends, with
``http.request.resend_count`` on the retries. Requests made while instrumentation is
suppressed (the OTLP exporters' own, for instance) pass straight through.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Generic, NamedTuple, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import INVALID_SPAN_CONTEXT
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otel_resilience._compat import (
    BAGGAGE_KEY,
    SPAN_KEY,
    SUPPRESS_HTTP_INSTRUMENTATION_KEY,
    http_instrumentation_suppressed,
    propagators_run_by,
    traceparent,
)
from otel_resilience._secrets import redact_text, redact_url
from otel_resilience._version import __version__
from otel_resilience.breaker._breaker import CircuitBreaker, CircuitOpenError
from otel_resilience.breaker._registry import CircuitBreakerRegistry
from otel_resilience.instrumentation._duration import duration_histogram
from otel_resilience.instrumentation._endpoints import AdapterOptions, EndpointResilience
from otel_resilience.instrumentation._engine import (
    CallEngine,
    Histogram,
    Verdict,
    is_judged_failure,
    settle_as_retried_past,
)
from otel_resilience.retry._retry import Retry, RetryDetails, current_attempt
from otel_resilience.sdk.settings import MAX_SECONDS, RetrySettings

__all__ = [
    "IDEMPOTENT_METHODS",
    "HttpLibrary",
    "HttpRequest",
    "OutgoingHttp",
    "endpoint_key",
    "redact_url",
    "retry_after_seconds",
]

_logger = logging.getLogger(__name__)

P = ParamSpec("P")
ResponseT = TypeVar("ResponseT")
ResponseT_contra = TypeVar("ResponseT_contra", contravariant=True)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_failure_status(status: int) -> bool:
    """5xx and 429 count against the endpoint; other 4xx are the caller's business."""
    return status >= 500 or status == 429


def endpoint_key(scheme: str, host: str, port: int | None) -> str:
    """``scheme://host:port``, lower-cased with the default port filled in: one per breaker."""
    scheme = scheme.lower()
    host = host.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}:{port if port is not None else _DEFAULT_PORTS.get(scheme, 0)}"


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now: delta-seconds or an HTTP-date.

    The header is the server's, so it may be anything: a value that is neither ASCII
    digits nor a parseable HTTP-date is ignored (``None``), never an exception in the
    program's request, and a valid one is capped at one day (``MAX_SECONDS``, the cap of
    every duration we read): nothing waits that long (a retry gives up past its
    ``max_retry_after``, a breaker opens for at most its ``max_recovery_timeout``), but an
    unbounded number would overflow the clock arithmetic downstream.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_SECONDS)
    try:
        moment = parsedate_to_datetime(value)
        seconds = moment.timestamp() - (time.time() if now is None else now)
    except Exception:  # TypeError, ValueError, OverflowError, IndexError...
        return None
    return min(max(0.0, seconds), MAX_SECONDS)


_warned: set[str] = set()


def _warn_once(topic: str, message: str, *args: object) -> None:
    """Log ``message`` the first time ``topic`` goes wrong in this process, not per request."""
    if topic not in _warned:
        _warned.add(topic)
        _logger.warning(message, *args)


def caused_by(
    error: BaseException, kinds: type[BaseException] | tuple[type[BaseException], ...]
) -> bool:
    """Whether ``error`` or anything it wraps is one of ``kinds``.

    HTTP libraries wrap the error that says what happened (``ssl.SSLCertVerificationError``
    inside urllib3's inside requests'): this follows ``__cause__``, ``__context__``,
    urllib3's ``reason`` and a wrapped exception in ``args``, a few levels deep.
    """
    pending: list[object] = [error]
    seen: set[int] = set()
    while pending and len(seen) < 16:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        if isinstance(current, kinds):
            return True
        seen.add(id(current))
        pending.extend((current.__cause__, current.__context__, getattr(current, "reason", None)))
        pending.extend(current.args[:2])
    return False


_W3C_PROPAGATORS = (TraceContextTextMapPropagator, W3CBaggagePropagator)
_injection: tuple[TextMapPropagator | None, tuple[TextMapPropagator, ...] | None] = (None, None)
"""The global propagator last seen, and the W3C propagators it amounts to (``None``: not
only those). Looked at again whenever ``set_global_textmap`` installs another one."""


def _w3c_propagators(textmap: TextMapPropagator) -> tuple[TextMapPropagator, ...] | None:
    """The propagators ``textmap`` runs in order, if each is exactly W3C trace context or
    baggage (the default, ``OTEL_PROPAGATORS=tracecontext,baggage``); ``None`` otherwise."""
    propagators = propagators_run_by(textmap)
    if all(type(propagator) in _W3C_PROPAGATORS for propagator in propagators):
        return propagators
    return None


def _inject(span: trace.Span, sending: context.Context, headers: MutableMapping[str, str]) -> None:
    """``propagate.inject(headers, context=sending)``, where ``sending`` holds ``span``.

    With the W3C propagators (the default) their work is done here directly, as they do it:
    the composite's dispatch, the span's look-up in the context and the empty baggage's
    formatting are most of their cost on every request. Any other propagator (or a
    subclass of those) is called as usual.
    """
    global _injection  # noqa: PLW0603 - a cache of what the global propagator is made of
    textmap = propagate.get_global_textmap()
    seen, propagators = _injection
    if textmap is not seen:
        propagators = _w3c_propagators(textmap)
        _injection = (textmap, propagators)
    if propagators is None or not isinstance(span, trace.Span):
        propagate.inject(headers, context=sending)
        return
    for propagator in propagators:
        if type(propagator) is TraceContextTextMapPropagator:
            span_context = span.get_span_context()
            if span_context == INVALID_SPAN_CONTEXT:
                continue
            headers["traceparent"] = traceparent(
                span_context.trace_id, span_context.span_id, span_context.trace_flags
            )
            if span_context.trace_state:
                headers["tracestate"] = span_context.trace_state.to_header()
        elif sending.get(BAGGAGE_KEY):  # the propagator writes nothing without baggage
            propagator.inject(headers, context=sending)


class HttpRequest(NamedTuple):
    """The request an adapter is about to send, as the core needs to see it.

    A named tuple rather than a frozen dataclass: as immutable, and much cheaper to make
    (one per request)."""

    method: str
    url: str
    headers: MutableMapping[str, str]
    replayable: bool
    via_proxy: bool = False
    """Sent through a proxy: a failure to connect is then the proxy's, not the endpoint's."""
    redirects: int = 0
    """Hops sent before this one for the same call (redirects followed): each is a resend,
    as ``http.request.resend_count`` counts them."""


class HttpLibrary(Protocol[ResponseT_contra]):
    """What an adapter tells the core about its library.

    ``transport_errors`` are the library's connection errors and timeouts: those that
    :meth:`blames_endpoint` accepts count against the endpoint and may be retried; any
    other exception from the library (an invalid URL, a certificate the caller's trust
    store rejects) is the caller's, counts as neither and reaches the program untouched.
    ``rejection_error`` subclasses both :class:`CircuitOpenError` and the library's own
    connection error.
    """

    name: str
    transport_errors: tuple[type[BaseException], ...]
    rejection_error: type[CircuitOpenError]
    body_read_later: bool
    """Whether the library reads a response's body after the hook returns (httpx): then
    :meth:`when_read` is asked to finish the call when it has been read."""

    def blames_endpoint(self, error: BaseException, request: HttpRequest) -> bool:
        """Whether ``error``, one of ``transport_errors``, is evidence against the endpoint.

        Asked only on failures. No when nothing proves the endpoint unhealthy: TLS
        verification failed (the caller's trust configuration), the proxy failed (the
        destination was never contacted), the client's own pool was exhausted.
        """
        ...

    def status_code(self, response: ResponseT_contra) -> int: ...

    def header(self, response: ResponseT_contra, name: str) -> str | None: ...

    def protocol_version(self, response: ResponseT_contra) -> str | None: ...

    def discard(self, response: ResponseT_contra) -> Awaitable[None] | None:
        """Release a response the retry goes past; an async response returns its close."""
        ...

    def when_read(
        self, response: ResponseT_contra, finish: Callable[[BaseException | None], None]
    ) -> bool:
        """Arrange ``finish(error)`` once ``response``'s body has been read or the response
        closed (``error``: what reading raised); ``False`` when the body is already read.

        A library that hands the response over before its body is read (httpx, whose
        client reads it after the transport returns) says so here, so that a body that
        fails to arrive counts against the endpoint and ends the span as an error.
        """
        ...


_MAX_CACHED_ATTRIBUTE_SETS = 64
"""Per endpoint and kind; beyond it (odd methods, many statuses) they are built per request."""


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """One endpoint (``scheme://host:port``) and its attribute sets, built once each.

    Every request to the endpoint carries the same low-cardinality attributes, so the
    dictionaries given to the span and to the histogram are made the first time and then
    reused, never mutated (the SDK reads them, and keeps the histogram's for its points).
    """

    key: str
    scheme: str
    host: str
    port: int
    _by_method: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)
    by_answer: dict[tuple[str, int, str | None], tuple[dict[str, Any], dict[str, Any]]] = field(
        default_factory=dict, compare=False
    )
    """:meth:`answered`'s cache, which the hot path reads first (a call saved per request)."""

    def attributes(self, method: str) -> dict[str, Any]:
        """The histogram's attributes for a request, before its answer.

        ``url.scheme`` is opt-in for the conventions' duration metric; it is kept there
        because an endpoint is ``scheme://host:port`` on the dashboards and in the alert
        rules, which group by it. The span leaves it out (see :meth:`_Target.span_attributes`).
        """
        attributes = self._by_method.get(method)
        if attributes is None:
            attributes = {
                "http.request.method": method,
                "server.address": self.host,
                "server.port": self.port,
                "url.scheme": self.scheme,
            }
            if len(self._by_method) < _MAX_CACHED_ATTRIBUTE_SETS:
                self._by_method[method] = attributes
        return attributes

    def answered(
        self, method: str, status: int, version: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """What an answer adds to the span, and the histogram's attributes for it."""
        answer = (method, status, version)
        cached = self.by_answer.get(answer)
        if cached is not None:
            return cached
        added: dict[str, Any] = {"http.response.status_code": status}
        if version:
            added["network.protocol.version"] = version
        if status >= 400:
            added["error.type"] = str(status)
        cached = added, {**self.attributes(method), **added}
        if len(self.by_answer) < _MAX_CACHED_ATTRIBUTE_SETS:
            self.by_answer[answer] = cached
        return cached


@functools.lru_cache(maxsize=1024)
def _endpoint(scheme: str, host: str, port: int) -> _Endpoint:
    return _Endpoint(endpoint_key(scheme, host, port), scheme, host, port)


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL: its endpoint, its ``url.full``, and its span attributes per method."""

    endpoint: _Endpoint
    url_full: str
    span_by_method: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)
    """:meth:`span_attributes`' cache, which the hot path reads first."""

    @classmethod
    def _parse(cls, url: str) -> _Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower() or "http"
        host = (parts.hostname or "").lower()
        port = parts.port if parts.port is not None else _DEFAULT_PORTS.get(scheme, 0)
        return cls(_endpoint(scheme, host, port), redact_url(url))

    def span_attributes(self, method: str) -> dict[str, Any]:
        """The attributes a first attempt's span starts with (the SDK copies them).

        The conventions' required ones, given at the start so that samplers see them;
        not the opt-in ``url.scheme``, which ``url.full`` already holds: the SDK checks
        and copies every attribute of every span, about 1 µs each.
        """
        attributes = self.span_by_method.get(method)
        if attributes is None:
            endpoint = self.endpoint
            attributes = {
                "http.request.method": method,
                "server.address": endpoint.host,
                "server.port": endpoint.port,
                "url.full": self.url_full,
            }
            if len(self.span_by_method) < _MAX_CACHED_ATTRIBUTE_SETS:
                self.span_by_method[method] = attributes
        return attributes


@functools.lru_cache(maxsize=1024)
def _parse_target(url: str) -> _Target:
    """The endpoint of ``url``; programs call the same URLs again and again, so cached."""
    return _Target._parse(url)


class _HttpCall(NamedTuple):
    """What the engine's :class:`_HttpKind` knows of one request."""

    request: HttpRequest
    target: _Target


class _HttpKind(Generic[ResponseT]):
    """The HTTP conventions for the call engine: names, attributes, what fails.

    Every request goes through these, so the attribute sets come from caches
    (:class:`_Endpoint`, :class:`_Target`): built on an endpoint's first requests, then
    reused, never mutated.
    """

    __slots__ = ("duration", "library", "library_name", "reads_later", "rejection_error")

    def __init__(self, library: HttpLibrary[ResponseT], duration: Histogram) -> None:
        self.library = library
        self.library_name = library.name
        self.rejection_error = library.rejection_error
        self.duration = duration
        self.reads_later = library.body_read_later

    def span_start(self, call: _HttpCall) -> tuple[str, Mapping[str, Any]]:
        """``{method}`` and the conventions' required attributes.

        ``http.request.resend_count`` counts resends for any reason, as the conventions
        ask: the redirect hops sent before this one, plus the number of the retry now
        running, if any (ours, or a program's own :class:`Retry` around the request).
        """
        request, target = call
        method = request.method
        attributes = target.span_by_method.get(method) or target.span_attributes(method)
        resend_count = request.redirects + current_attempt()
        if resend_count:
            attributes = {**attributes, "http.request.resend_count": resend_count}
        return method, attributes

    def sending_context(
        self, call: _HttpCall, span: trace.Span, current: context.Context
    ) -> context.Context:
        """``span`` current, lower HTTP layers suppressed, the trace context injected.

        Suppressing keeps urllib3's or httpcore's own instrumentation (if any) from adding
        a second client span: one copy of the current context for both (what
        ``trace.set_span_in_context`` and ``context.set_value`` would make in two).
        """
        sending = context.Context(
            {**current, SPAN_KEY: span, SUPPRESS_HTTP_INSTRUMENTATION_KEY: True}
        )
        try:
            _inject(span, sending, call.request.headers)
        except Exception as error:
            # A propagator's bug must not fail the program's request: it goes out untraced.
            _warn_once(
                "propagation",
                "The propagator raised %s; requests go out without trace-context headers",
                type(error).__name__,
            )
        return sending

    def judge_error(self, call: _HttpCall, error: BaseException) -> Verdict:
        """A transport error the adapter blames on the endpoint fails it; any other error
        (an invalid URL, a certificate the caller's trust store rejects) is the caller's,
        counts as neither and reaches the program untouched."""
        library = self.library
        if not isinstance(error, library.transport_errors):
            return None
        try:
            return True if library.blames_endpoint(error, call.request) else None
        except Exception:  # fail-safe: an adapter's bug must not hide the program's error
            return True

    def error_type(self, call: _HttpCall, error: BaseException) -> str:
        return type(error).__qualname__

    def error_description(self, call: _HttpCall, error: BaseException) -> str | None:
        # The library's message may quote the URL, query and all (requests' "Max retries
        # exceeded with url: /v1?key=..."): the same redaction as url.full.
        return redact_text(str(error))

    def error_attributes(
        self, call: _HttpCall, error_type: str, result: ResponseT | None
    ) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        request, target = call
        metric = {**target.endpoint.attributes(request.method), "error.type": error_type}
        if result is None:
            return {"error.type": error_type}, metric
        status = self.library.status_code(result)  # the body failed after the headers came
        return {"error.type": error_type, "http.response.status_code": status}, metric

    def judge_result(self, call: _HttpCall, result: ResponseT) -> bool:
        status = self.library.status_code(result)
        return status >= 500 or status == 429  # is_failure_status, inline

    def server_wait(self, call: _HttpCall, result: ResponseT) -> float | None:
        return retry_after_seconds(self.library.header(result, "Retry-After"))

    def answered(
        self, call: _HttpCall, result: ResponseT
    ) -> tuple[Mapping[str, Any], Mapping[str, Any], bool]:
        library = self.library
        status = library.status_code(result)
        version = library.protocol_version(result)
        method = call.request.method
        endpoint = call.target.endpoint
        added, metric_attributes = endpoint.by_answer.get(
            (method, status, version)
        ) or endpoint.answered(method, status, version)
        return added, metric_attributes, status >= 400

    def finish_later(
        self,
        call: _HttpCall,
        result: ResponseT,
        finish: Callable[[BaseException | None], None],
    ) -> bool:
        return self.library.when_read(result, finish)


class OutgoingHttp(Generic[ResponseT]):
    """Breaker, retries, span and metrics around one library's outgoing requests.

    Every request of the program goes through :meth:`call` or :meth:`call_async` (what
    :meth:`send` and :meth:`send_async` take is the same, spread out): this chooses the
    endpoint's breaker and, for a request that may be sent again, its retry; the call
    engine (:mod:`._engine`) does the rest.
    """

    def __init__(
        self,
        library: HttpLibrary[ResponseT],
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        registry: CircuitBreakerRegistry | None = None,
        retry: RetrySettings | None = None,
        resilience: bool = True,
    ) -> None:
        """Everything explicit: a component used as a library reads no settings itself.

        ``retry`` ``None``: no retries. An instrumentor builds it with :meth:`from_options`
        from the settings it was given.
        """
        self.library = library
        scope = f"otel_resilience.instrumentation.{library.name}"
        # One instrument for every HTTP adapter: the SDK takes two same-named instruments
        # matched by one view for conflicting streams, and warns about it on stderr.
        duration = duration_histogram(
            "otel_resilience.instrumentation.http",
            "http.client.request.duration",
            "Duration of HTTP client requests.",
            meter_provider,
        )
        self._engine: CallEngine[_HttpCall, ResponseT] = CallEngine(
            _HttpKind(library, duration), trace.get_tracer(scope, __version__, tracer_provider)
        )
        self._endpoints = EndpointResilience(registry, retry, resilience)

    @classmethod
    def from_options(
        cls, library: HttpLibrary[ResponseT], options: Mapping[str, Any]
    ) -> OutgoingHttp[ResponseT]:
        """Built from an instrumentor's ``instrument(**options)``, as every adapter takes them.

        ``options["settings"]`` is what the launcher's configurator read and validated (the
        distro passes it to our instrumentors); an instrumentor used in code without it
        reads the environment once (:func:`settings_from_options`). Explicit ``retry`` and
        ``resilience`` options override the settings.
        """
        resolved = AdapterOptions.resolve(library.name, options)
        return cls(
            library,
            tracer_provider=resolved.tracer_provider,
            meter_provider=resolved.meter_provider,
            registry=resolved.registry,
            retry=resolved.retry,
            resilience=resolved.resilience,
        )

    # --- per endpoint -----------------------------------------------------------------------

    def _retry(self, key: str, request: HttpRequest, breaker: CircuitBreaker) -> Retry | None:
        """The endpoint's retry policy, if ``request`` may be sent again."""
        if request.method not in IDEMPOTENT_METHODS or not request.replayable:
            return None
        return self._endpoints.retry(key, breaker, functools.partial(self._new_retry, key, breaker))

    def _new_retry(self, key: str, breaker: CircuitBreaker, settings: RetrySettings) -> Retry:
        library = self.library
        return Retry.from_settings(
            key,
            settings,
            breaker=breaker,
            retry_on=(is_judged_failure,),
            retry_on_result=self._worth_retrying,
            retry_after=lambda _error, response: (
                None
                if response is None
                else retry_after_seconds(library.header(response, "Retry-After"))
            ),
            hooks=(self._discard_retried,),
        )

    def _worth_retrying(self, response: ResponseT) -> bool:
        """A response worth another attempt: one that counts against the endpoint."""
        return is_failure_status(self.library.status_code(response))

    def _discard_retried(self, details: RetryDetails) -> Awaitable[None] | None:
        """Retry hook, run when a retry is decided: the attempt retried past counts as
        neither (see :class:`HeldVerdict`), and its response, if any, is released (async:
        awaited by the retry)."""
        settle_as_retried_past()
        return None if details.result is None else self.library.discard(details.result)

    # --- sending ----------------------------------------------------------------------------

    def _prepare(
        self, request: HttpRequest
    ) -> tuple[_HttpCall, CircuitBreaker | None, Retry | None] | None:
        """The request's call, breaker and retry, or ``None`` to send it uninstrumented.

        Fail-safe: a URL we cannot read (the library will reject it with its own error) or
        a bug of ours must not change what the caller sees, so the request then goes out as
        if we were not there, with one warning.
        """
        try:
            target = _parse_target(request.url)
            call = _HttpCall(request, target)
            endpoints = self._endpoints
            if not endpoints.enabled:
                return call, None, None
            key = target.endpoint.key
            breaker = endpoints.breaker(key)
            return call, breaker, None if breaker is None else self._retry(key, request, breaker)
        except Exception as error:
            _logger.warning(
                "%s request not instrumented (%s); it is sent as it is",
                self.library.name,
                type(error).__name__,  # not the message: it may quote the URL's credentials
            )
            return None

    def send(
        self,
        request: HttpRequest,
        send: Callable[P, ResponseT],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> ResponseT:
        """Send ``request`` by calling ``send(*args, **kwargs)``, with everything we add."""
        return self.call(request, send, args, kwargs)

    def send_async(
        self,
        request: HttpRequest,
        send: Callable[P, Awaitable[ResponseT]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Awaitable[ResponseT]:
        """:meth:`send` for async clients, to be awaited; retries wait with asyncio."""
        return self.call_async(request, send, args, kwargs)

    def call(
        self,
        request: HttpRequest,
        send: Callable[..., ResponseT],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> ResponseT:
        """:meth:`send` with the arguments as a wrapper receives them (``wrapt``'s hooks).

        Every level that takes ``*args, **kwargs`` copies them, ``requests``' half-dozen
        keyword arguments included, so the adapters hand them over as they are.
        """
        current = context.get_current()
        if http_instrumentation_suppressed(current):
            return send(*args, **kwargs)
        prepared = self._prepare(request)
        if prepared is None:
            return send(*args, **kwargs)
        call, breaker, retry = prepared
        return self._engine.run(call, breaker, retry, send, args, kwargs, current)

    def call_async(
        self,
        request: HttpRequest,
        send: Callable[..., Awaitable[ResponseT]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Awaitable[ResponseT]:
        """:meth:`call` for async clients, to be awaited.

        Not a coroutine itself: it returns the engine's, so that the request's coroutine
        chain is no deeper than it must be (each time the request waits on the network and
        resumes, it passes through every level of it).
        """
        current = context.get_current()
        if http_instrumentation_suppressed(current):
            return send(*args, **kwargs)
        prepared = self._prepare(request)
        if prepared is None:
            return send(*args, **kwargs)
        call, breaker, retry = prepared
        if retry is None:
            return self._engine.attempt_async(call, breaker, send, args, kwargs, current)
        return self._engine.run_async(call, breaker, retry, send, args, kwargs, current)
