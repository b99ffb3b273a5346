"""otel-resilience for `requests`: a circuit breaker, retries, a client span and metrics.

Under ``opentelemetry-instrument`` this instrumentor loads by itself. Without the launcher::

    import requests
    from otel_resilience_instrumentation_requests import RequestsInstrumentor

    RequestsInstrumentor().instrument()
    requests.get("https://api.example.com/items")  # breaker, retries, span, metrics

The hook is ``requests.Session.send``, below the Session API, so ``requests.get`` and
sessions created before instrumentation are covered, and each redirect hop is its own
request. Everything it adds comes from the core's one outgoing-HTTP wrapper
(``otel_resilience.instrumentation``). A request the endpoint's breaker rejects raises
:class:`RequestsCircuitOpenError`, which is also a ``requests.exceptions.ConnectionError``.
"""

from __future__ import annotations

import contextvars
import logging
import ssl
from collections.abc import Callable, Collection, MutableMapping
from typing import Any

import requests
import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap
from requests.utils import resolve_proxies

from otel_resilience import CircuitOpenError
from otel_resilience.instrumentation import HttpRequest, OutgoingHttp, caused_by
from otel_resilience_instrumentation_requests.package import _instruments

__all__ = ["RequestsCircuitOpenError", "RequestsInstrumentor"]

_logger = logging.getLogger(__name__)


class RequestsCircuitOpenError(CircuitOpenError, requests.exceptions.ConnectionError):
    """The endpoint's circuit breaker rejected the request; nothing was sent.

    ``request`` is the request that was not sent and ``response`` is ``None``, as on any
    requests error raised before an answer (requests' own ``__init__``, which sets them,
    does not run: see :class:`CircuitOpenError`).
    """

    request: requests.PreparedRequest | None = None
    response: requests.Response | None = None


_Headers = MutableMapping[str, str]
"""requests' headers as the core uses them: it only sets str values (the trace context).

A module-level alias: ``MutableMapping[str, str]`` written in the hook would be built again
on every request. The hook gives it by annotation rather than ``cast``, a function call."""

_PROTOCOL_VERSIONS = {10: "1.0", 11: "1.1", 20: "2"}
"""urllib3's ``HTTPResponse.version`` -> ``network.protocol.version``."""


class _Requests:
    """What the core needs to know about requests' responses and errors."""

    name: str = "requests"
    transport_errors: tuple[type[BaseException], ...] = (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
    )
    rejection_error: type[CircuitOpenError] = RequestsCircuitOpenError
    body_read_later: bool = False  # Session.send reads it, inside the hook (see when_read)

    def blames_endpoint(self, error: BaseException, request: HttpRequest) -> bool:
        """Not the endpoint's: TLS verification failed against the caller's trust store
        (``SSLError`` caused by ``ssl.SSLCertVerificationError``, host-name mismatches
        included), or the proxy failed (``ProxyError``: the endpoint was never reached)."""
        if isinstance(error, requests.exceptions.ProxyError):
            return False
        return not (
            isinstance(error, requests.exceptions.SSLError)
            and caused_by(error, ssl.SSLCertVerificationError)
        )

    def status_code(self, response: requests.Response) -> int:
        return int(response.status_code)

    def header(self, response: requests.Response, name: str) -> str | None:
        value = response.headers.get(name)
        return None if value is None else str(value)

    def protocol_version(self, response: requests.Response) -> str | None:
        version = getattr(response.raw, "version", None)
        return _PROTOCOL_VERSIONS.get(version) if isinstance(version, int) else None

    def discard(self, response: requests.Response) -> None:
        response.close()

    def when_read(
        self, response: requests.Response, finish: Callable[[BaseException | None], None]
    ) -> bool:
        """``Session.send`` reads the body before it returns (unless ``stream=True``), inside
        the hook: a body that fails to arrive raises there, as the attempt's failure."""
        return False


def _replayable(body: object) -> bool:
    """A body can be sent again when it is bytes, text or absent; not a stream or generator."""
    return body is None or isinstance(body, bytes | str)


_hops: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "otel_resilience.requests.hops", default=None
)
"""While :func:`_follow_redirects` follows a chain: the number of the next hop."""


def _follow_redirects(
    session: requests.Session,
    prepared: requests.PreparedRequest,
    request: HttpRequest,
    outgoing: OutgoingHttp[requests.Response],
    send: Any,
    kwargs: dict[str, Any],
) -> requests.Response:
    """``Session.send`` with redirects, each hop sent as a request of its own.

    ``Session.send`` follows redirects inside itself, so hooked there a chain of hops would
    be one call: one span, the target's 503 charged to the origin's breaker (which answered
    correctly), the target's breaker never asked, and the whole chain retried. So the first
    hop is sent with ``allow_redirects=False`` and the rest are followed here as
    ``Session.send`` follows them (its ``resolve_redirects``, with the defaults it would
    have set): each hop is a ``Session.send`` of its own, with its span, breaker, metric
    point and retries.
    """
    first = outgoing.call(request, send, (prepared,), {**kwargs, "allow_redirects": False})
    if not first.is_redirect:
        return first
    token = _hops.set([1])
    first._next = None  # set for a caller who follows by hand, as Response.next() does
    follow = {name: value for name, value in kwargs.items() if name != "allow_redirects"}
    follow.setdefault("stream", session.stream)
    follow.setdefault("verify", session.verify)
    follow.setdefault("cert", session.cert)
    if "proxies" not in follow:
        follow["proxies"] = resolve_proxies(prepared, session.proxies, session.trust_env)
    try:
        history = [first, *session.resolve_redirects(first, prepared, **follow)]
    finally:
        _hops.reset(token)
    final = history.pop()
    final.history = history
    return final


class RequestsInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every ``requests`` request; ``uninstrument()`` restores the original."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        outgoing: OutgoingHttp[requests.Response] = OutgoingHttp.from_options(_Requests(), kwargs)

        def send(
            wrapped: Any, instance: requests.Session, args: tuple[Any, ...], kwargs: Any
        ) -> requests.Response:
            try:
                prepared: requests.PreparedRequest = args[0] if args else kwargs["request"]
                headers: _Headers = prepared.headers  # type: ignore[assignment]
                request = HttpRequest(
                    str(prepared.method or "GET").upper(),
                    str(prepared.url),
                    headers,
                    _replayable(prepared.body),
                )
            except Exception:  # fail-safe: an unexpected call shape goes out uninstrumented
                _logger.warning("requests call not instrumented", exc_info=True)
                return wrapped(*args, **kwargs)  # type: ignore[no-any-return]
            try:
                if kwargs.get("allow_redirects", True):
                    return _follow_redirects(instance, prepared, request, outgoing, wrapped, kwargs)
                hops = _hops.get()
                if hops is not None:  # a hop of a redirect chain that _follow_redirects follows
                    request = request._replace(redirects=hops[0])
                    hops[0] += 1
                return outgoing.call(request, wrapped, args, kwargs)
            except RequestsCircuitOpenError as rejected:
                if rejected.request is None:  # a redirect hop's rejection names that hop
                    rejected.request = prepared  # as requests' own errors carry it
                raise

        wrapt.wrap_function_wrapper("requests.sessions", "Session.send", send)

    def _uninstrument(self, **kwargs: Any) -> None:
        unwrap(requests.sessions.Session, "send")
