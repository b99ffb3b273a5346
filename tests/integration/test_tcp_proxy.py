"""Prove the fault-injecting TCP proxy before the database tests rely on it.

Each fault is checked from the client's side, over real sockets, against a tiny echo
server started here and once against the real Redis on 127.0.0.1:6379.  Timing is
only ever asserted as a lower bound: nothing here depends on the machine being fast.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from tcp_proxy import TcpProxy

ProxyFactory = Callable[[str, int], TcpProxy]

REDIS = ("127.0.0.1", 6379)
# Generous: only reached when something is broken, never on the passing path.
TIMEOUT = 5.0


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        try:
            while data := sock.recv(65536):
                sock.sendall(data)
        except OSError:
            pass  # the proxy reset us: that is what several tests do on purpose


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo_port() -> Iterator[int]:
    """An echo server on 127.0.0.1 (any port); its port."""
    with _EchoServer(("127.0.0.1", 0), _EchoHandler) as server:
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        yield int(server.server_address[1])
        server.shutdown()
        thread.join(TIMEOUT)


@pytest.fixture
def echo_proxy(tcp_proxy: ProxyFactory, echo_port: int) -> TcpProxy:
    return tcp_proxy("127.0.0.1", echo_port)


def connect(proxy: TcpProxy, timeout: float = TIMEOUT) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=timeout)


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(size)
        assert chunk, "connection closed early"
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return receive_exactly(sock, len(data))


def assert_dropped(sock: socket.socket) -> None:
    """The proxy closed this connection under the client: EOF or, usually, a reset."""
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(1) == b""


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_forwards_both_directions(echo_proxy: TcpProxy) -> None:
    assert echo_proxy.host == "127.0.0.1"
    with connect(echo_proxy) as client:
        assert roundtrip(client, b"hello") == b"hello"
        payload = bytes(range(256)) * 4096  # 1 MiB: many chunks, both ways at once
        assert roundtrip(client, payload) == payload
        assert echo_proxy.open_connections == 1
    # The client's FIN reaches the echo server, which closes; the link goes away.
    wait_until(lambda: echo_proxy.open_connections == 0)
    assert echo_proxy.connections_accepted == 1


def test_forwards_to_real_redis(tcp_proxy: ProxyFactory) -> None:
    proxy = tcp_proxy(*REDIS)
    with connect(proxy) as client:
        client.sendall(b"PING\r\n")
        assert receive_exactly(client, 7) == b"+PONG\r\n"


def test_cut_drops_open_connections_and_keeps_accepting(echo_proxy: TcpProxy) -> None:
    with connect(echo_proxy) as first, connect(echo_proxy) as second:
        assert roundtrip(first, b"a") == b"a"
        assert roundtrip(second, b"b") == b"b"

        echo_proxy.cut()

        assert_dropped(first)
        assert_dropped(second)
        assert echo_proxy.open_connections == 0
    with connect(echo_proxy) as third:
        assert roundtrip(third, b"c") == b"c"
    assert echo_proxy.connections_accepted == 3


def test_refuse_then_restore_on_the_same_port(echo_proxy: TcpProxy) -> None:
    port = echo_proxy.port
    with connect(echo_proxy) as client:
        assert roundtrip(client, b"x") == b"x"

        echo_proxy.refuse()

        assert_dropped(client)
    with pytest.raises(ConnectionRefusedError):
        connect(echo_proxy).close()
    assert echo_proxy.connections_accepted == 1  # the refused attempt never reached it

    echo_proxy.restore()

    assert echo_proxy.port == port
    with connect(echo_proxy) as client:
        assert roundtrip(client, b"y") == b"y"
    assert echo_proxy.connections_accepted == 2


def test_blackhole_forwards_nothing_until_restore(echo_proxy: TcpProxy) -> None:
    with connect(echo_proxy) as existing:
        assert roundtrip(existing, b"before") == b"before"

        echo_proxy.blackhole()

        existing.settimeout(0.3)
        existing.sendall(b"lost?")
        with pytest.raises(TimeoutError):
            existing.recv(16)
        # New connections are accepted (the client's connect succeeds) but stay mute.
        with connect(echo_proxy, timeout=0.3) as fresh:
            fresh.sendall(b"hello?")
            with pytest.raises(TimeoutError):
                fresh.recv(16)
            assert echo_proxy.connections_accepted == 2

            echo_proxy.restore()

            # Held bytes are delivered in order, as after a healed network partition.
            fresh.settimeout(TIMEOUT)
            assert receive_exactly(fresh, 6) == b"hello?"
        existing.settimeout(TIMEOUT)
        assert receive_exactly(existing, 5) == b"lost?"
        assert roundtrip(existing, b"after") == b"after"


def test_delay_holds_each_chunk_in_both_directions(echo_proxy: TcpProxy) -> None:
    delay = 0.1
    with connect(echo_proxy) as client:
        assert roundtrip(client, b"warm-up") == b"warm-up"
        echo_proxy.delay(delay)

        started = time.monotonic()
        assert roundtrip(client, b"slow") == b"slow"
        # Held once on the way to the echo server and once on the way back.
        assert time.monotonic() - started >= 2 * delay

        echo_proxy.delay(0)
        assert roundtrip(client, b"fast") == b"fast"


def test_upstream_down_drops_the_client(tcp_proxy: ProxyFactory) -> None:
    with socket.socket() as placeholder:  # a port nothing listens on
        placeholder.bind(("127.0.0.1", 0))
        proxy = tcp_proxy("127.0.0.1", placeholder.getsockname()[1])
        try:
            client = connect(proxy)
        except ConnectionResetError:
            pass  # on a busy machine the reset can beat connect() returning
        else:
            with client:
                assert_dropped(client)
    assert proxy.connections_accepted == 1
    assert proxy.open_connections == 0


def test_close_is_idempotent_and_leaves_nothing_behind(echo_port: int) -> None:
    with TcpProxy("127.0.0.1", echo_port) as proxy, connect(proxy) as client:
        assert roundtrip(client, b"z") == b"z"
        proxy.close()
        assert_dropped(client)
    proxy.close()
    assert proxy.open_connections == 0
    assert not [t for t in threading.enumerate() if t.name == "tcp-proxy"]
    with pytest.raises(ConnectionRefusedError):
        connect(proxy).close()
