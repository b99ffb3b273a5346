"""A fault-injecting TCP proxy for the database tests.

The database instrumentations must be proven against the failures a real network
produces (a connection reset mid-query, a server that refuses connections, one that
swallows packets, a slow link), with the real PostgreSQL, MariaDB and Redis drivers
talking to the real servers.  ``TcpProxy`` sits between client and server on
127.0.0.1 and switches those faults on and off at will, so a test never needs to
stop a shared server or touch the firewall.

Each proxied connection is served by two blocking "pump" threads, one per direction,
which keeps the forwarding code obvious; the sockets carry a short timeout only so a
pump blocked in ``send`` still notices that its connection was cut.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["TcpProxy"]

LOCALHOST = "127.0.0.1"

# How often a blocked accept/recv/send wakes up to look at the proxy's state.
_POLL_SECONDS = 0.05
_CONNECT_TIMEOUT = 5.0
_JOIN_TIMEOUT = 5.0  # only reached when something is stuck
_CHUNK = 65536
# SO_LINGER on, 0 s: close() then sends RST instead of FIN, as a crashed peer would.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


@dataclass(eq=False)
class _Link:
    """One proxied connection: the accepted client socket and its upstream socket."""

    client: socket.socket
    upstream: socket.socket
    killed: threading.Event = field(default_factory=threading.Event)
    pumps_running: int = 2


class TcpProxy:
    """Forwards 127.0.0.1:<port> to an upstream (host, port); faults switched at will."""

    host = LOCALHOST

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._port = 0
        self._cond = threading.Condition()  # guards everything below
        self._links: set[_Link] = set()
        self._threads: list[threading.Thread] = []
        self._accepted = 0
        self._blackholed = False
        self._delay = 0.0
        # Serialises start/refuse/restore/close; never held by a proxy thread.
        self._control = threading.Lock()
        self._acceptor: threading.Thread | None = None
        self._stop_accepting = threading.Event()
        self._closed = False

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("TcpProxy has not been started")
        return self._port

    @property
    def connections_accepted(self) -> int:
        with self._cond:
            return self._accepted

    @property
    def open_connections(self) -> int:
        with self._cond:
            return len(self._links)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> TcpProxy:
        with self._control:
            if self._port or self._closed:
                raise RuntimeError("a TcpProxy can only be started once")
            self._listen()
        return self

    def close(self) -> None:
        with self._control:
            self._closed = True
            self._stop_listening()
        self.cut()
        with self._cond:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(_JOIN_TIMEOUT)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ faults

    def cut(self) -> None:
        """Reset every open proxied connection (both sides); new ones are still accepted."""
        with self._cond:
            links = list(self._links)
        for link in links:
            self._kill(link)
        with self._cond:
            # Return only once the peers have been sent their RST, so tests can act on it.
            self._cond.wait_for(lambda: self._links.isdisjoint(links), _JOIN_TIMEOUT)

    def refuse(self) -> None:
        """Close the listener (clients get ECONNREFUSED) and cut the open connections."""
        with self._control:
            self._stop_listening()
        self.cut()

    def blackhole(self) -> None:
        """Accept connections but forward nothing, as if the packets were dropped.

        Bytes already read are held, not discarded: restore() delivers them in order,
        the way TCP retransmission would once a real network partition heals.
        """
        with self._cond:
            self._blackholed = True

    def delay(self, seconds: float) -> None:
        """Hold every chunk ``seconds`` before forwarding it, in both directions."""
        with self._cond:
            self._delay = max(0.0, seconds)

    def restore(self) -> None:
        """Forward normally again: listen on the same port if refused, no delay, no blackhole."""
        with self._control:
            if self._port and not self._closed and self._acceptor is None:
                self._listen()
        with self._cond:
            self._blackholed = False
            self._delay = 0.0
            self._cond.notify_all()

    # ------------------------------------------------------------------ threads

    def _listen(self) -> None:
        # create_server sets SO_REUSEADDR, so the port can be bound again after
        # refuse() even while connections of the old listener sit in TIME_WAIT.
        listener = socket.create_server((LOCALHOST, self._port), backlog=128)
        listener.settimeout(_POLL_SECONDS)
        self._port = int(listener.getsockname()[1])
        self._stop_accepting = threading.Event()
        self._acceptor = self._spawn(self._accept_loop, listener, self._stop_accepting)

    def _stop_listening(self) -> None:
        if self._acceptor is not None:
            self._stop_accepting.set()
            self._acceptor.join(_JOIN_TIMEOUT)
            self._acceptor = None

    def _spawn(self, target: Callable[..., None], *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name="tcp-proxy", daemon=True)
        with self._cond:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    def _accept_loop(self, listener: socket.socket, stop: threading.Event) -> None:
        with listener:
            while not stop.is_set():
                try:
                    client, _address = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                self._open_link(client)

    def _open_link(self, client: socket.socket) -> None:
        with self._cond:
            self._accepted += 1
        try:
            upstream = socket.create_connection(self._upstream, timeout=_CONNECT_TIMEOUT)
        except OSError:
            # Upstream is down: the client sees its connection reset, as through a
            # real proxy.
            with contextlib.suppress(OSError):
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
            client.close()
            return
        client.settimeout(_POLL_SECONDS)
        upstream.settimeout(_POLL_SECONDS)
        link = _Link(client, upstream)
        with self._cond:
            self._links.add(link)
        self._spawn(self._pump, link, client, upstream)
        self._spawn(self._pump, link, upstream, client)

    def _pump(self, link: _Link, source: socket.socket, target: socket.socket) -> None:
        """Copy ``source`` to ``target`` until EOF, an error or a kill; never raises."""
        try:
            while not link.killed.is_set():
                try:
                    data = source.recv(_CHUNK)
                except TimeoutError:
                    continue
                except OSError:  # the peer reset: pass the reset on
                    self._kill(link)
                    break
                if not data:
                    if not link.killed.is_set():
                        # Pass the half-close on; the other direction keeps flowing.
                        with contextlib.suppress(OSError):
                            target.shutdown(socket.SHUT_WR)
                    break
                if not self._hold(link) or not self._send(link, target, data):
                    break
        finally:
            self._finish(link)

    def _hold(self, link: _Link) -> bool:
        """Wait out a blackhole and the configured delay; False if the link was killed."""
        with self._cond:
            self._cond.wait_for(lambda: link.killed.is_set() or not self._blackholed)
            delay = self._delay
        if delay:
            link.killed.wait(delay)
        return not link.killed.is_set()

    def _kill(self, link: _Link) -> None:
        """Make both pumps stop now; the last one out closes both sockets with RST."""
        with self._cond:  # _finish closes the sockets under it: never touch a reused fd
            link.killed.set()
            self._cond.notify_all()  # a pump may be waiting out a blackhole
            if link not in self._links:
                return
            for sock in (link.client, link.upstream):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
                    # Wakes a pump blocked in recv(); close() from here would not.
                    sock.shutdown(socket.SHUT_RD)

    def _send(self, link: _Link, target: socket.socket, data: bytes) -> bool:
        view = memoryview(data)
        while view:
            if link.killed.is_set():
                return False
            try:
                sent = target.send(view)
            except TimeoutError:
                continue
            except OSError:
                self._kill(link)
                return False
            view = view[sent:]
        return True

    def _finish(self, link: _Link) -> None:
        with self._cond:
            link.pumps_running -= 1
            if link.pumps_running:
                return
            link.client.close()
            link.upstream.close()
            self._links.discard(link)
            self._cond.notify_all()
