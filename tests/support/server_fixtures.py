"""Fixtures that start real servers on 127.0.0.1, for the tiers that talk to servers.

The integration and launcher tiers import them into their own conftest.py; the unit tier
never sees them, so a unit test that asks for one fails at once instead of opening a port.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Sequence

import pytest
from http_test_server import ScriptedHttpServer, scripted_http_server
from otlp_receiver import OtlpReceiver, SilentTcpServer
from prometheus_server import PrometheusServer
from tcp_proxy import TcpProxy

__all__ = [
    "http_server",
    "otlp_receiver",
    "silent_collector",
    "start_prometheus",
    "taken_port",
    "tcp_proxy",
]


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """An OTLP receiver on 127.0.0.1 speaking gRPC and HTTP/protobuf."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def silent_collector() -> Iterator[SilentTcpServer]:
    """A 'collector' that accepts connections and never answers."""
    with SilentTcpServer() as server:
        yield server


@pytest.fixture
def start_prometheus() -> Iterator[Callable[[Sequence[str]], PrometheusServer]]:
    """Start a real Prometheus scraping the given targets every second; stopped afterwards."""
    started: list[PrometheusServer] = []

    def start(targets: Sequence[str]) -> PrometheusServer:
        server = PrometheusServer(list(targets)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another socket is listening on for the whole test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[ScriptedHttpServer]:
    """An HTTP server on 127.0.0.1 answering by path (see tests/support/http_test_server.py)."""
    with scripted_http_server() as server:
        yield server


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[str, int], TcpProxy]]:
    """Start a fault-injecting TCP proxy to (host, port) on 127.0.0.1; closed afterwards."""
    started: list[TcpProxy] = []

    def start(host: str, port: int) -> TcpProxy:
        proxy = TcpProxy(host, port).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.close()
