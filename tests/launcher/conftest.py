"""This tier talks to real servers: the fixtures that start them."""

from __future__ import annotations

from server_fixtures import (
    http_server,
    otlp_receiver,
    silent_collector,
    start_prometheus,
    taken_port,
    tcp_proxy,
)

__all__ = [
    "http_server",
    "otlp_receiver",
    "silent_collector",
    "start_prometheus",
    "taken_port",
    "tcp_proxy",
]
