"""A real OpenTelemetry collector hop for end-to-end tests: rotel, forwarding OTLP.

Between a program and the tests' ``OtlpReceiver`` this puts a collector that the program
does not know about, as in production: rotel (the ``rotel`` package from PyPI, a Rust OTLP
collector shipped as a binary inside its wheel) receives OTLP over gRPC and HTTP on
127.0.0.1 and forwards everything over OTLP/gRPC to the receiver. Exporter settings,
compression, batching and retries then go through a real collector, which is what users
run, rather than straight into the test's decoder.

The agent runs in the foreground as our child process (not with ``--daemon`` as the
package's Python API starts it), so it is stopped with its test and its log is at hand
when a test fails. A missing rotel is a setup error, reported as such; tests never skip.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from otlp_receiver import LOCALHOST, unused_tcp_port

__all__ = ["RotelCollector", "rotel_agent_path", "rotel_collector"]


def rotel_agent_path() -> Path:
    """The ``rotel-agent`` binary inside the installed ``rotel`` package.

    Raises RuntimeError naming the fix when the package or its binary is missing.
    """
    spec = importlib.util.find_spec("rotel")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise RuntimeError(
            "the end-to-end tests need the `rotel` package (a collector binary in a wheel): "
            "it is in the `test` dependency group of pyproject.toml; run scripts/bootstrap, or "
            "`.venv/bin/pip install 'rotel>=0.0.1a15,<0.1'`"
        )
    agent = Path(locations[0]) / "rotel-agent"
    if not agent.is_file():
        raise RuntimeError(
            f"the `rotel` package at {locations[0]} has no rotel-agent binary; "
            "reinstall it with a wheel built for this platform"
        )
    return agent


class RotelCollector:
    """rotel on free 127.0.0.1 ports, forwarding every signal over OTLP/gRPC to ``forward_to``."""

    def __init__(self, forward_to: str, workdir: Path) -> None:
        self._forward_to = forward_to
        self._workdir = workdir
        self._log_path = workdir / "rotel.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._grpc_port = 0
        self._http_port = 0

    @property
    def grpc_endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, for ``OTEL_EXPORTER_OTLP_ENDPOINT`` with gRPC."""
        return f"http://{LOCALHOST}:{self._grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, for ``OTEL_EXPORTER_OTLP_ENDPOINT`` with http/protobuf."""
        return f"http://{LOCALHOST}:{self._http_port}"

    def log_tail(self, lines: int = 40) -> str:
        """The end of the agent's own output, for failure messages."""
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return "(no rotel log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout: float = 15.0) -> RotelCollector:
        """Start the agent and wait until both receivers accept connections."""
        agent = rotel_agent_path()
        self._grpc_port, self._http_port = unused_tcp_port(), unused_tcp_port()
        command = [
            str(agent),
            "start",
            "--otlp-grpc-endpoint",
            f"{LOCALHOST}:{self._grpc_port}",
            "--otlp-http-endpoint",
            f"{LOCALHOST}:{self._http_port}",
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            self._forward_to,
            "--otlp-exporter-protocol",
            "grpc",
            # Forward at once: the tests wait for what arrives, and a short batch keeps it
            # arriving while the program still runs.
            "--batch-timeout",
            "100ms",
            "--pid-file",
            str(self._workdir / "rotel.pid"),
            "--log-file",
            str(self._workdir / "rotel-agent.log"),
        ]
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not (_accepts(self._grpc_port) and _accepts(self._http_port)):
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"rotel exited with {self._process.returncode} while starting:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rotel did not listen within {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """SIGTERM (rotel flushes what it holds), then SIGKILL after 5 s. Idempotent."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> RotelCollector:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOCALHOST, port), timeout=0.2):
        return True
    return False


@contextlib.contextmanager
def rotel_collector(forward_to: str, workdir: Path) -> Iterator[RotelCollector]:
    """A started ``RotelCollector``, stopped afterwards (for tests and fixtures alike)."""
    with RotelCollector(forward_to, workdir) as collector:
        yield collector
