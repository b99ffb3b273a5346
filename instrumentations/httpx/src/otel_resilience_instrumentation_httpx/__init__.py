"""otel-resilience for `httpx`: a circuit breaker, retries, a client span and metrics.

Under ``opentelemetry-instrument`` this instrumentor loads by itself. Without the launcher::

    import httpx
    from otel_resilience_instrumentation_httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument()
    httpx.get("https://api.example.com/items")  # breaker, retries, span, metrics

    async with httpx.AsyncClient() as client:  # the same; retries wait with asyncio
        await client.get("https://api.example.com/items")

The hooks are the network transports' ``httpx.HTTPTransport.handle_request`` and
``httpx.AsyncHTTPTransport.handle_async_request``, below the Client API, so ``httpx.get``
and clients created before instrumentation are covered, and each redirect hop is its own
request. Transports that never touch the network (``MockTransport``, ``ASGITransport``,
``WSGITransport``) are not instrumented. Everything it adds comes from the core's one
outgoing-HTTP wrapper (``otel_resilience.instrumentation``).

Only a request whose body can be sent again is retried: no body, bytes, text, form data or
JSON. A streamed body (an iterator, async iterator or file passed as ``content=``) and a
multipart upload (``files=``) are sent once. A response that is retried past is closed, so
its connection goes back to the pool.

A request the endpoint's breaker rejects raises :class:`HTTPXCircuitOpenError`, which is
also an ``httpx.ConnectError`` (and so an ``httpx.TransportError``, ``httpx.RequestError``
and ``httpx.HTTPError``): nothing was connected to, and existing ``except`` clauses catch it.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from typing import Any

import httpcore
import httpx
import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap

from otel_resilience import CircuitOpenError
from otel_resilience.instrumentation import HttpRequest, OutgoingHttp, caused_by
from otel_resilience_instrumentation_httpx.package import _instruments

__all__ = ["HTTPXCircuitOpenError", "HTTPXClientInstrumentor"]

_logger = logging.getLogger(__name__)

_HOPS = "otel_resilience.hops"
"""The key, in a request's ``extensions``, of how many hops were sent for it so far."""

_DIRECT_POOLS: tuple[type, ...] = (
    httpcore.ConnectionPool,
    httpcore.AsyncConnectionPool,
    type(None),
)


class HTTPXCircuitOpenError(CircuitOpenError, httpx.ConnectError):
    """The endpoint's circuit breaker rejected the request; nothing was sent."""

    # httpx's own __init__ does not run (see CircuitOpenError), so start from "no request"
    # here: ``.request`` then behaves as on any httpx error. The client sets it on the way out.
    _request: httpx.Request | None = None


class _Httpx:
    """What the core needs to know about httpx's responses and errors."""

    name: str = "httpx"
    # Not every httpx.TransportError: UnsupportedProtocol and LocalProtocolError are the
    # caller's mistakes, not the endpoint's failures. TimeoutException covers connect, read,
    # write and pool timeouts; NetworkError covers ConnectError, ReadError, WriteError.
    transport_errors: tuple[type[BaseException], ...] = (
        httpx.NetworkError,
        httpx.TimeoutException,
        httpx.RemoteProtocolError,
        httpx.ProxyError,
    )
    rejection_error: type[CircuitOpenError] = HTTPXCircuitOpenError
    body_read_later: bool = True  # the client reads it after the transport returns

    def blames_endpoint(self, error: BaseException, request: HttpRequest) -> bool:
        """Not the endpoint's: the pool of the program's own client was exhausted
        (``PoolTimeout``); the certificate failed verification against the caller's trust
        store (a ``ConnectError`` caused by ``ssl.SSLCertVerificationError``, which covers
        a host-name mismatch); the proxy failed (``ProxyError``, or the proxy could not be
        reached: with a proxy, a connection is made to it, never to the endpoint)."""
        if isinstance(error, (httpx.PoolTimeout, httpx.ProxyError)):
            return False
        if request.via_proxy and isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):
            return False
        return not caused_by(error, ssl.SSLCertVerificationError)

    def status_code(self, response: httpx.Response) -> int:
        return int(response.status_code)

    def header(self, response: httpx.Response, name: str) -> str | None:
        value = response.headers.get(name)
        return None if value is None else str(value)

    def protocol_version(self, response: httpx.Response) -> str | None:
        return _protocol_version(response.http_version)

    def when_read(
        self, response: httpx.Response, finish: Callable[[BaseException | None], None]
    ) -> bool:
        """httpx's client reads the body after the transport returns (a streamed response,
        whenever the program does): the stream is wrapped so that its end, its close or a
        failure while reading it (a ``ReadTimeout`` after the headers) finishes the call."""
        stream = response.stream
        if isinstance(stream, httpx.SyncByteStream):
            response.stream = _AccountedStream(stream, finish)
        elif isinstance(stream, httpx.AsyncByteStream):
            response.stream = _AccountedAsyncStream(stream, finish)
        else:
            return False
        return True

    def discard(self, response: httpx.Response) -> Awaitable[None] | None:
        """Close a response the retry goes past; an async one is closed by awaiting."""
        if isinstance(response.stream, httpx.SyncByteStream):
            response.close()
            return None
        return response.aclose()


class _Finishing:
    """Calls ``finish`` once: at the body's end, at close, or with the error reading raised."""

    __slots__ = ("_finish",)

    def __init__(self, finish: Callable[[BaseException | None], None]) -> None:
        self._finish: Callable[[BaseException | None], None] | None = finish

    def _done(self, error: BaseException | None) -> None:
        finish = self._finish
        if finish is not None:
            self._finish = None
            finish(error)

    def __del__(self) -> None:
        # A streamed response the program never read nor closed: finish when it is
        # collected, so that its span ends and a half-open trial slot is not held for good.
        self._done(None)


class _AccountedStream(_Finishing, httpx.SyncByteStream):
    """A response body whose reading finishes the instrumented call (sync)."""

    __slots__ = ("_inner",)

    def __init__(
        self, inner: httpx.SyncByteStream, finish: Callable[[BaseException | None], None]
    ) -> None:
        super().__init__(finish)
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._inner
        except BaseException as error:
            self._done(error)
            raise
        self._done(None)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._done(None)  # closed before its end: the program had what it wanted


class _AccountedAsyncStream(_Finishing, httpx.AsyncByteStream):
    """A response body whose reading finishes the instrumented call (async)."""

    __slots__ = ("_inner",)

    def __init__(
        self, inner: httpx.AsyncByteStream, finish: Callable[[BaseException | None], None]
    ) -> None:
        super().__init__(finish)
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except BaseException as error:
            self._done(error)
            raise
        self._done(None)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._done(None)


@functools.lru_cache(maxsize=16)
def _protocol_version(http_version: str) -> str | None:
    """``network.protocol.version`` of httpx's ``http_version`` ("HTTP/1.1", "HTTP/2")."""
    scheme, _, version = http_version.partition("/")
    return version if scheme.upper() == "HTTP" and version else None


def _describe(request: httpx.Request, transport: object) -> HttpRequest:
    # A ByteStream holds the whole body (and a streamed body that has been read is replaced
    # by one); any other stream may be consumed by the first attempt, so it is not replayed.
    replayable = isinstance(request.stream, httpx.ByteStream)
    # A proxied transport's pool is httpcore's HTTPProxy or SOCKSProxy; a plain one's is
    # exactly ConnectionPool (or AsyncConnectionPool).
    via_proxy = type(getattr(transport, "_pool", None)) not in _DIRECT_POOLS
    # httpx builds each redirect hop's request with the first one's extensions dict: the
    # hops sent so far for this call are counted there.
    extensions = request.extensions
    redirects = extensions.get(_HOPS, 0)
    extensions[_HOPS] = redirects + 1
    return HttpRequest(
        request.method, str(request.url), request.headers, replayable, via_proxy, redirects
    )


class HTTPXClientInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every httpx request, sync and async; ``uninstrument()`` restores both."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        outgoing: OutgoingHttp[httpx.Response] = OutgoingHttp.from_options(_Httpx(), kwargs)

        def handle_request(
            wrapped: Any, instance: httpx.HTTPTransport, args: tuple[Any, ...], kwargs: Any
        ) -> httpx.Response:
            try:
                request = _describe(args[0] if args else kwargs["request"], instance)
            except Exception:  # fail-safe: an unexpected call shape goes out uninstrumented
                _logger.warning("httpx call not instrumented", exc_info=True)
                return wrapped(*args, **kwargs)  # type: ignore[no-any-return]
            return outgoing.call(request, wrapped, args, kwargs)

        def handle_async_request(
            wrapped: Any, instance: httpx.AsyncHTTPTransport, args: tuple[Any, ...], kwargs: Any
        ) -> Awaitable[httpx.Response]:
            # Not a coroutine: it hands over the one to await (see OutgoingHttp.call_async).
            try:
                request = _describe(args[0] if args else kwargs["request"], instance)
            except Exception:  # fail-safe: an unexpected call shape goes out uninstrumented
                _logger.warning("httpx call not instrumented", exc_info=True)
                return wrapped(*args, **kwargs)  # type: ignore[no-any-return]
            return outgoing.call_async(request, wrapped, args, kwargs)

        wrapt.wrap_function_wrapper(httpx.HTTPTransport, "handle_request", handle_request)
        wrapt.wrap_function_wrapper(
            httpx.AsyncHTTPTransport, "handle_async_request", handle_async_request
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        unwrap(httpx.HTTPTransport, "handle_request")
        unwrap(httpx.AsyncHTTPTransport, "handle_async_request")
