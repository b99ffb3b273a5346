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
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Generic, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.context import (
    _SUPPRESS_HTTP_INSTRUMENTATION_KEY,
    _SUPPRESS_INSTRUMENTATION_KEY,
)
from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY_PLAIN
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation import _SPAN_KEY

from otel_resilience._admission import admit
from otel_resilience._breaker import CallPermit, CircuitBreaker, CircuitOpenError
from otel_resilience._registry import CircuitBreakerRegistry, default_registry
from otel_resilience._retry import Retry, RetryBudget, RetryDetails, RetryRun, current_attempt
from otel_resilience._version import __version__
from otel_resilience._views import SECONDS_BUCKETS
from otel_resilience.config import RetrySettings, current_settings

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
_REDACTED = "REDACTED"


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


def redact_url(url: str) -> str:
    """``url.full`` without credentials and without query values.

    ``user:password@`` becomes ``REDACTED:REDACTED@``, as the conventions ask; every query
    value becomes ``REDACTED`` because tokens and signatures travel there (names are kept:
    they say what kind of request it was).
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{_REDACTED}:{_REDACTED}@" + netloc.rpartition("@")[2]
    query = "&".join(
        f"{field.partition('=')[0]}={_REDACTED}" if "=" in field else field
        for field in parts.query.split("&")
        if field
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    seconds = moment.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds)


def _instrumentation_suppressed() -> bool:
    """``not is_http_instrumentation_enabled()``, reading the context once (every request)."""
    current = context.get_current()
    return bool(
        current.get(_SUPPRESS_INSTRUMENTATION_KEY)
        or current.get(_SUPPRESS_INSTRUMENTATION_KEY_PLAIN)
        or current.get(_SUPPRESS_HTTP_INSTRUMENTATION_KEY)
    )


def _sending_context(span: trace.Span, headers: MutableMapping[str, str]) -> context.Context:
    """Inject ``span``'s trace context into ``headers``; the context to send the request in.

    In that context our span is current and lower HTTP layers are suppressed, which keeps
    urllib3's or httpcore's own instrumentation (if any) from adding a second client span.
    It is attached and detached directly rather than through two context managers, and
    built once for both uses, in one copy of the current context (what
    ``trace.set_span_in_context`` and ``context.set_value`` would make in two): this is on
    every request's path.
    """
    sending = context.Context(
        {**context.get_current(), _SPAN_KEY: span, _SUPPRESS_HTTP_INSTRUMENTATION_KEY: True}
    )
    propagate.inject(headers, context=sending)
    return sending


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """The request an adapter is about to send, as the core needs to see it."""

    method: str
    url: str
    headers: MutableMapping[str, str]
    replayable: bool


class HttpLibrary(Protocol[ResponseT_contra]):
    """What an adapter tells the core about its library.

    ``transport_errors`` are the library's connection errors and timeouts: they count
    against the endpoint and may be retried; any other exception from the library (an
    invalid URL, say) is the caller's and counts as neither. ``rejection_error`` subclasses
    both :class:`CircuitOpenError` and the library's own connection error.
    """

    name: str
    transport_errors: tuple[type[BaseException], ...]
    rejection_error: type[CircuitOpenError]

    def status_code(self, response: ResponseT_contra) -> int: ...

    def header(self, response: ResponseT_contra, name: str) -> str | None: ...

    def protocol_version(self, response: ResponseT_contra) -> str | None: ...

    def discard(self, response: ResponseT_contra) -> Awaitable[None] | None:
        """Release a response the retry goes past; an async response returns its close."""
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
    _by_answer: dict[tuple[str, int, str | None], tuple[dict[str, Any], dict[str, Any]]] = field(
        default_factory=dict, compare=False
    )

    def attributes(self, method: str) -> dict[str, Any]:
        """The request's attributes, both the span's and the histogram's."""
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
        cached = self._by_answer.get(answer)
        if cached is not None:
            return cached
        added: dict[str, Any] = {"http.response.status_code": status}
        if version:
            added["network.protocol.version"] = version
        if status >= 400:
            added["error.type"] = str(status)
        cached = added, {**self.attributes(method), **added}
        if len(self._by_answer) < _MAX_CACHED_ATTRIBUTE_SETS:
            self._by_answer[answer] = cached
        return cached


@functools.lru_cache(maxsize=1024)
def _endpoint(scheme: str, host: str, port: int) -> _Endpoint:
    return _Endpoint(endpoint_key(scheme, host, port), scheme, host, port)


@dataclass(frozen=True, slots=True)
class _Target:
    endpoint: _Endpoint
    url_full: str

    @classmethod
    def _parse(cls, url: str) -> _Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower() or "http"
        host = (parts.hostname or "").lower()
        port = parts.port if parts.port is not None else _DEFAULT_PORTS.get(scheme, 0)
        return cls(_endpoint(scheme, host, port), redact_url(url))


@functools.lru_cache(maxsize=8)
def _duration_histogram(meter_provider: metrics.MeterProvider | None) -> metrics.Histogram:
    """One ``http.client.request.duration`` for every HTTP adapter (per meter provider).

    One instrument rather than one per library: the SDK takes two same-named instruments
    matched by one view for conflicting streams and warns about it on stderr.
    """
    meter = metrics.get_meter("otel_resilience.instrumentation.http", __version__, meter_provider)
    return meter.create_histogram(
        "http.client.request.duration",
        unit="s",
        description="Duration of HTTP client requests.",
        explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
    )


@functools.lru_cache(maxsize=1024)
def _parse_target(url: str) -> _Target:
    """The endpoint of ``url``; programs call the same URLs again and again, so cached."""
    return _Target._parse(url)


class OutgoingHttp(Generic[ResponseT]):
    """Breaker, retries, span and metrics around one library's outgoing requests.

    Every request of the program goes through :meth:`send` or :meth:`send_async`, so they
    are written for speed: the attribute sets come from caches (:class:`_Endpoint`), and a
    request that may be retried makes its first attempt directly, entering the retry
    machinery only if that attempt fails (:meth:`Retry.begin` / :meth:`Retry.resume`).
    """

    def __init__(
        self,
        library: HttpLibrary[ResponseT],
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        registry: CircuitBreakerRegistry | None = None,
        retry: RetrySettings | None = None,
        resilience: bool | None = None,
    ) -> None:
        self.library = library
        scope = f"otel_resilience.instrumentation.{library.name}"
        self._tracer = trace.get_tracer(scope, __version__, tracer_provider)
        self._duration = _duration_histogram(meter_provider)
        self._registry = registry
        self._retry_settings = retry if retry is not None else current_settings().retry
        # OTEL_RESILIENCE_DISABLED turns breakers and retries off; spans and metrics stay.
        self._resilience = (
            resilience
            if resilience is not None
            else current_settings().resilience_enabled(library.name)
        )
        self._retries: dict[str, Retry] = {}
        self._retries_lock = threading.Lock()

    # --- per endpoint -----------------------------------------------------------------------

    def _breaker(self, key: str) -> CircuitBreaker | None:
        """The endpoint's breaker; ``None`` when resilience is off for it or for us."""
        if not self._resilience:
            return None
        registry = self._registry if self._registry is not None else default_registry()
        return None if registry.is_excluded(key) else registry.get(key)

    def _retry(self, key: str, request: HttpRequest, breaker: CircuitBreaker) -> Retry | None:
        settings = self._retry_settings
        if (
            settings.max_retries == 0
            or request.method not in IDEMPOTENT_METHODS
            or not request.replayable
        ):
            return None
        retry = self._retries.get(key)
        if retry is None or retry.breaker is not breaker:
            library = self.library
            retry = Retry(
                key,
                max_attempts=settings.max_retries + 1,
                initial_backoff=settings.initial_backoff,
                max_backoff=settings.max_backoff,
                jitter=settings.jitter,
                retry_on=library.transport_errors,
                retry_on_result=self._worth_retrying,
                retry_after=lambda _error, response: (
                    None
                    if response is None
                    else retry_after_seconds(library.header(response, "Retry-After"))
                ),
                budget=RetryBudget(settings.budget_ratio),
                breaker=breaker,
                hooks=(self._discard_retried,),
            )
            with self._retries_lock:
                if len(self._retries) >= (self._registry or default_registry()).max_breakers:
                    self._retries.pop(next(iter(self._retries)))  # the oldest, like the breakers
                self._retries[key] = retry
        return retry

    def _worth_retrying(self, response: ResponseT) -> bool:
        """A response worth another attempt: one that counts against the endpoint."""
        return is_failure_status(self.library.status_code(response))

    def _discard_retried(self, details: RetryDetails) -> Awaitable[None] | None:
        """Retry hook: release the response being retried past (async: awaited by Retry)."""
        return None if details.result is None else self.library.discard(details.result)

    # --- sending ----------------------------------------------------------------------------

    def _prepare(
        self, request: HttpRequest
    ) -> tuple[_Target, CircuitBreaker | None, Retry | None] | None:
        """The request's endpoint, breaker and retry, or ``None`` to send it uninstrumented.

        Fail-safe: a URL we cannot read (the library will reject it with its own error) or
        a bug of ours must not change what the caller sees, so the request then goes out as
        if we were not there, with one warning.
        """
        try:
            target = _parse_target(request.url)
            key = target.endpoint.key
            breaker = self._breaker(key)
            retry = None if breaker is None else self._retry(key, request, breaker)
        except Exception as error:
            _logger.warning(
                "%s request not instrumented (%s); it is sent as it is",
                self.library.name,
                type(error).__name__,  # not the message: it may quote the URL's credentials
            )
            return None
        return target, breaker, retry

    def send(
        self,
        request: HttpRequest,
        send: Callable[P, ResponseT],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> ResponseT:
        """Send ``request`` by calling ``send(*args, **kwargs)``, with everything we add."""
        if _instrumentation_suppressed():
            return send(*args, **kwargs)
        prepared = self._prepare(request)
        if prepared is None:
            return send(*args, **kwargs)
        target, breaker, retry = prepared
        return self._attempt(request, target, breaker, retry, send, args, kwargs)

    def send_async(
        self,
        request: HttpRequest,
        send: Callable[P, Awaitable[ResponseT]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Awaitable[ResponseT]:
        """:meth:`send` for async clients, to be awaited; retries wait with asyncio.

        Not a coroutine itself: it returns the attempt's, so that the request's coroutine
        chain is no deeper than it must be (each time the request waits on the network and
        resumes, it passes through every level of it).
        """
        if _instrumentation_suppressed():
            return send(*args, **kwargs)
        prepared = self._prepare(request)
        if prepared is None:
            return send(*args, **kwargs)
        target, breaker, retry = prepared
        return self._attempt_async(request, target, breaker, retry, send, args, kwargs)

    def _attempt(
        self,
        request: HttpRequest,
        target: _Target,
        breaker: CircuitBreaker | None,
        retry: Retry | None,
        send: Callable[..., ResponseT],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> ResponseT:
        """One attempt; with ``retry``, the first of a call that ``retry`` takes over if it fails.

        The first attempt of a retried call is made here rather than inside
        :meth:`Retry.call`, since it nearly always succeeds: only when it fails does the
        retry's machinery start, making the further attempts through this method with
        ``retry`` ``None`` (their resend count is then the retry's).
        """
        run = None if retry is None else retry.begin()
        span, attributes, permit = self._begin(request, target, breaker, run)
        started = time.perf_counter()
        token = context.attach(_sending_context(span, request.headers))
        failure: Exception | None = None
        response: ResponseT | None
        try:
            response = send(*args, **kwargs)
        except BaseException as error:
            context.detach(token)
            self._failed(span, attributes, permit, error, started)
            if run is None or not isinstance(error, Exception):
                raise
            failure, response = error, None  # the retry starts outside this block: no chaining
        else:
            context.detach(token)
            failed = self._answered(
                span, request.method, target, permit, breaker, response, started
            )
            if run is None or not failed:
                return response
        return run.retry.resume(
            run,
            failure,
            response,
            self._attempt,
            request,
            target,
            breaker,
            None,
            send,
            args,
            kwargs,
        )

    async def _attempt_async(
        self,
        request: HttpRequest,
        target: _Target,
        breaker: CircuitBreaker | None,
        retry: Retry | None,
        send: Callable[..., Awaitable[ResponseT]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> ResponseT:
        run = None if retry is None else retry.begin()
        span, attributes, permit = self._begin(request, target, breaker, run)
        started = time.perf_counter()
        token = context.attach(_sending_context(span, request.headers))
        failure: Exception | None = None
        response: ResponseT | None
        try:
            response = await send(*args, **kwargs)
        except BaseException as error:
            context.detach(token)
            self._failed(span, attributes, permit, error, started)
            if run is None or not isinstance(error, Exception):
                raise
            failure, response = error, None  # the retry starts outside this block: no chaining
        else:
            context.detach(token)
            failed = self._answered(
                span, request.method, target, permit, breaker, response, started
            )
            if run is None or not failed:
                return response
        return await run.retry.resume_async(
            run,
            failure,
            response,
            self._attempt_async,
            request,
            target,
            breaker,
            None,
            send,
            args,
            kwargs,
        )

    def _begin(
        self,
        request: HttpRequest,
        target: _Target,
        breaker: CircuitBreaker | None,
        run: RetryRun | None,
    ) -> tuple[trace.Span, dict[str, Any], CallPermit | None]:
        """Start the attempt's span and take the breaker's permit.

        The first attempt of a retried call (``run``) is no resend; any other attempt's
        resend count is the retry's now running, if any.
        """
        attributes = target.endpoint.attributes(request.method)
        span_attributes = {**attributes, "url.full": target.url_full}
        resend_count = 0 if run is not None else current_attempt()
        if resend_count:
            span_attributes["http.request.resend_count"] = resend_count
        span = self._tracer.start_span(
            request.method, kind=SpanKind.CLIENT, attributes=span_attributes
        )
        permit = None if breaker is None else admit(breaker, self.library.rejection_error, span)
        return span, attributes, permit

    def _failed(
        self,
        span: trace.Span,
        attributes: dict[str, Any],
        permit: CallPermit | None,
        error: BaseException,
        started: float,
    ) -> None:
        if permit is not None:
            transport_failure = isinstance(error, self.library.transport_errors)
            permit.record(True if transport_failure else None, error)
        error_type = type(error).__qualname__
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, str(error)))
        self._duration.record(
            time.perf_counter() - started, {**attributes, "error.type": error_type}
        )
        span.end()

    def _answered(
        self,
        span: trace.Span,
        method: str,
        target: _Target,
        permit: CallPermit | None,
        breaker: CircuitBreaker | None,
        response: ResponseT,
        started: float,
    ) -> bool:
        """Finish the attempt's span and metrics; whether the response counts as a failure."""
        library = self.library
        status = library.status_code(response)
        failed = is_failure_status(status)
        if permit is not None:
            permit.record(failed)
        if failed and breaker is not None:
            wait = retry_after_seconds(library.header(response, "Retry-After"))
            if wait is not None:
                breaker.report_retry_after(wait)
        added, metric_attributes = target.endpoint.answered(
            method, status, library.protocol_version(response)
        )
        if status >= 400:
            span.set_status(Status(StatusCode.ERROR))
        span.set_attributes(added)
        self._duration.record(time.perf_counter() - started, metric_attributes)
        span.end()
        return failed
