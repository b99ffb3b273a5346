"""A Redis write is sent at most once, whoever would retry it; a read is sent again.

redis-py 6+ retries every command of a default client by itself (8.x: up to 10 times),
writes included: when the connection dies after the server ran an ``INCR`` but before its
reply arrived, redis-py sends the ``INCR`` again on a new connection, and the counter moves
twice. These tests lose exactly that reply, through a proxy in front of the real Redis on
127.0.0.1:6379, and read the result straight from the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import pytest
import redis
import redis.asyncio
from instrumentation_harness import Instrumented
from instrumentation_harness import instrument as instrument_with
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode
from otel_resilience_instrumentation_redis import RedisInstrumentor
from redis.backoff import NoBackoff
from redis.retry import Retry

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# SO_LINGER on, 0 s: close() sends RST, as a link that died would.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


class ReplyLosingProxy:
    """A TCP proxy to the real Redis that can lose the answer to one command.

    ``lose_reply_to("INCRBY")``: the next request holding that command reaches the server
    and runs there; the server's answer is thrown away and the client's connection reset.
    The client cannot tell whether the command ran, exactly as when a link dies at the
    wrong moment. ``reset_new_connections(n)``: the next ``n`` connections are reset as
    soon as the client sends anything, before it reaches the server.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server((REDIS_HOST, 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._lose_reply_to: bytes | None = None
        self._connections_to_reset = 0
        self._sockets: list[socket.socket] = []
        self.connections_accepted = 0
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def lose_reply_to(self, command: str) -> None:
        with self._lock:
            self._lose_reply_to = b"\r\n" + command.upper().encode() + b"\r\n"

    def reset_new_connections(self, count: int) -> None:
        with self._lock:
            self._connections_to_reset = count

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() would not
        self._listener.close()
        self._acceptor.join(5)
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def __enter__(self) -> ReplyLosingProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection((REDIS_HOST, REDIS_PORT))
            with self._lock:
                self.connections_accepted += 1
                reset = self._connections_to_reset > 0
                self._connections_to_reset -= reset
                self._sockets += [client, upstream]
            losing = threading.Event()  # the reply now on its way is to be lost
            threading.Thread(
                target=self._requests, args=(client, upstream, losing, reset), daemon=True
            ).start()
            threading.Thread(
                target=self._replies, args=(upstream, client, losing), daemon=True
            ).start()

    def _requests(
        self, client: socket.socket, upstream: socket.socket, losing: threading.Event, reset: bool
    ) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if reset:
                    _reset(client, upstream)
                    return
                with self._lock:
                    trigger = self._lose_reply_to
                    if trigger is not None and trigger in data.upper():
                        self._lose_reply_to = None
                        losing.set()  # before the server can answer
                upstream.sendall(data)
        _reset(client, upstream)

    def _replies(
        self, upstream: socket.socket, client: socket.socket, losing: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if losing.is_set():  # the server ran the command and answered: drop it all
                    break
                client.sendall(data)
        _reset(client, upstream)


def _reset(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
            sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy() -> Iterator[ReplyLosingProxy]:
    with ReplyLosingProxy() as started:
        yield started


@pytest.fixture
def key() -> Iterator[str]:
    name = f"otel-resilience-retry-test:{uuid.uuid4().hex}"
    yield name
    with suppress_instrumentation(), redis.Redis(host=REDIS_HOST, port=REDIS_PORT) as cleanup:
        cleanup.delete(name)


@pytest.fixture
def instrumented() -> Iterator[Instrumented]:
    yield from instrument_with(RedisInstrumentor())


def on_the_server(key: str) -> Any:
    """The key's value as the server holds it, read past the proxy and the instrumentation."""
    with suppress_instrumentation(), redis.Redis(host=REDIS_HOST, port=REDIS_PORT) as direct:
        return direct.get(key)


def default_client(port: int) -> redis.Redis:
    """A client as redis-py builds it by default: with redis-py's own retry."""
    client = redis.Redis(host=REDIS_HOST, port=port)
    retry = client.get_retry()
    assert retry is not None
    assert retry.get_retries() > 0  # redis-py 6+: it would resend anything by itself
    return client


def test_a_write_whose_reply_is_lost_runs_once_and_the_caller_hears_of_it(
    instrumented: Instrumented, proxy: ReplyLosingProxy, key: str
) -> None:
    client = default_client(proxy.port)
    client.set(key, 0)

    proxy.lose_reply_to("INCRBY")
    with pytest.raises(redis.exceptions.ConnectionError):
        client.incr(key)

    assert on_the_server(key) == b"1"
    incr = instrumented.finished()[-1]
    assert incr.name == "INCRBY 0"
    assert incr.status.status_code is StatusCode.ERROR
    assert client.incr(key) == 2  # the client goes on, on a new connection


def test_a_transaction_whose_reply_is_lost_runs_once(
    instrumented: Instrumented, proxy: ReplyLosingProxy, key: str
) -> None:
    client = default_client(proxy.port)
    client.set(key, 0)

    proxy.lose_reply_to("EXEC")
    with client.pipeline() as transaction:
        transaction.incr(key)
        transaction.expire(key, 3600)
        with pytest.raises(redis.exceptions.ConnectionError):
            transaction.execute()

    assert on_the_server(key) == b"1"
    assert [span.name for span in instrumented.finished()] == ["SET 0", "MULTI 0"]


def test_an_asyncio_write_whose_reply_is_lost_runs_once(
    instrumented: Instrumented, proxy: ReplyLosingProxy, key: str
) -> None:
    async def incr_twice() -> list[str]:
        outcomes = []
        async with redis.asyncio.Redis(host=REDIS_HOST, port=proxy.port) as client:
            await client.set(key, 0)
            proxy.lose_reply_to("INCRBY")
            for _ in range(2):
                try:
                    outcomes.append(str(await client.incr(key)))
                except redis.exceptions.ConnectionError as error:
                    outcomes.append(type(error).__name__)
        return outcomes

    assert asyncio.run(incr_twice()) == ["ConnectionError", "2"]
    assert on_the_server(key) == b"2"


def test_a_one_string_write_is_a_write_too(
    instrumented: Instrumented, proxy: ReplyLosingProxy, key: str
) -> None:
    client = default_client(proxy.port)
    client.set(key, 0)

    proxy.lose_reply_to("INCR")
    with pytest.raises(redis.exceptions.ConnectionError):
        # redis-py splits it: the server sees INCR and the key
        client.execute_command(f"INCR {key}")  # type: ignore[no-untyped-call]
    assert on_the_server(key) == b"1"


def test_a_read_whose_reply_is_lost_is_sent_again(
    instrumented: Instrumented, proxy: ReplyLosingProxy, key: str
) -> None:
    client = default_client(proxy.port)
    client.set(key, "v")

    proxy.lose_reply_to("GET")
    assert client.get(key) == b"v"  # redis-py sent it again, on a new connection

    get = instrumented.finished()[-1]
    assert get.name == "GET 0"
    assert get.status.status_code is StatusCode.UNSET  # one attempt of ours
    assert proxy.connections_accepted == 2


def test_a_read_of_a_client_without_retries_is_sent_again_by_ours(
    instrumented: Instrumented, proxy: ReplyLosingProxy, key: str
) -> None:
    client = redis.Redis(host=REDIS_HOST, port=proxy.port, retry=Retry(NoBackoff(), 0))
    client.set(key, "v")

    proxy.lose_reply_to("GET")
    assert client.get(key) == b"v"

    failed, retried = instrumented.finished()[1:]
    assert dict(failed.attributes or {})["error.type"] == "ConnectionError"
    assert retried.status.status_code is StatusCode.UNSET


def test_a_write_still_gets_a_connection_when_the_first_try_to_connect_fails(
    instrumented: Instrumented, proxy: ReplyLosingProxy, key: str
) -> None:
    # redis-py 8 sends CLIENT SETINFO while connecting, so the reset hits the connection's
    # handshake: nothing of the command was sent yet, and redis-py may try again.
    client = default_client(proxy.port)
    proxy.reset_new_connections(1)
    assert client.incr(key) == 1
    assert proxy.connections_accepted == 2
    assert on_the_server(key) == b"1"


def test_an_asyncio_write_still_gets_a_connection_when_the_first_try_to_connect_fails(
    instrumented: Instrumented, proxy: ReplyLosingProxy, key: str
) -> None:
    async def incr() -> int:
        async with redis.asyncio.Redis(host=REDIS_HOST, port=proxy.port) as client:
            return int(await client.incr(key))

    proxy.reset_new_connections(1)
    assert asyncio.run(incr()) == 1
    assert proxy.connections_accepted == 2
    assert on_the_server(key) == b"1"


def test_writes_are_resent_by_redis_py_as_before_when_resilience_is_off(
    proxy: ReplyLosingProxy, key: str
) -> None:
    # OTEL_RESILIENCE_DISABLED=redis: spans and metrics only, the client as redis-py made it.
    for _ in instrument_with(RedisInstrumentor(), resilience=False):
        client = default_client(proxy.port)
        client.set(key, 0)
        proxy.lose_reply_to("INCRBY")
        assert client.incr(key) == 2
    assert on_the_server(key) == b"2"


def test_uninstrument_gives_redis_py_its_retry_back(proxy: ReplyLosingProxy, key: str) -> None:
    for _ in instrument_with(RedisInstrumentor()):
        pass
    client = default_client(proxy.port)
    client.set(key, 0)
    proxy.lose_reply_to("INCRBY")
    assert client.incr(key) == 2  # redis-py's own behaviour: the write ran twice
    assert on_the_server(key) == b"2"
