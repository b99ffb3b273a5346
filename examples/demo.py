"""The first thing to run: a flaky upstream service, a client calling it, and what we see.

Run it with ``make demo`` (which runs it under ``opentelemetry-instrument``), or by hand::

    opentelemetry-instrument python examples/demo.py --calls 60

It starts a small HTTP service on 127.0.0.1 that answers 503 to some requests, is slow on
others and goes down completely for a while, calls it in a loop through a circuit breaker
and retries, and then prints what the distribution recorded, read back from the Prometheus
endpoint it serves by default. It needs no collector; set ``OTEL_EXPORTER_OTLP_ENDPOINT`` to
send traces, metrics and logs to one instead.

Until the HTTP instrumentation lands, the client wraps its calls in the breaker and the
retry policy itself and records its own span and ``http.client.request.duration``, the way
the instrumentation will do it for an unchanged program.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_resilience import (
    CircuitBreaker,
    CircuitOpenError,
    Retry,
    StateTransition,
    installed_telemetry,
)


class FlakyService(BaseHTTPRequestHandler):
    """Answers 503 to about a fifth of the requests (all while down), up to 80 ms each."""

    failure_ratio = 0.2
    down = threading.Event()
    randomness = random.Random(7)

    def do_GET(self) -> None:
        if self.down.is_set() or self.randomness.random() < self.failure_ratio:
            status = 503
        else:
            time.sleep(self.randomness.uniform(0.0, 0.08))
            status = 200
        body = b"ok\n" if status == 200 else b"unavailable\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the demo's output about the client."""


def get(url: str) -> int:
    """One GET with the telemetry an instrumented HTTP client produces."""
    tracer = trace.get_tracer("otel_resilience.examples.demo")
    duration = metrics.get_meter("otel_resilience.examples.demo").create_histogram(
        "http.client.request.duration", unit="s", description="Duration of HTTP client requests."
    )
    attributes = {"http.request.method": "GET", "server.address": "127.0.0.1"}
    started = time.perf_counter()
    with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes=attributes) as span:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                status = int(response.status)
        except urllib.error.HTTPError as error:
            status = error.code
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
            attributes = {**attributes, "error.type": str(status)}
    duration.record(
        time.perf_counter() - started, {**attributes, "http.response.status_code": status}
    )
    return status


class PrintTransitions:
    """A breaker listener: show each state change as it happens."""

    def on_transition(self, event: StateTransition) -> None:
        print(f"  breaker {event.from_state} -> {event.to_state} ({event.reason})")


def is_server_error(status: int) -> bool:
    return status >= 500


def read_back(prometheus_url: str) -> list[str]:
    """The demo's series as Prometheus scrapes them: durations, breaker calls, retries."""
    with urllib.request.urlopen(prometheus_url, timeout=5) as response:
        text = response.read().decode()
    wanted = (
        "http_client_request_duration_seconds_count",
        "resilience_circuit_breaker_calls_total",
        "resilience_circuit_breaker_state",
        "resilience_retry_attempts_total",
    )
    return [line for line in text.splitlines() if line.startswith(wanted)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60, help="how many calls to make")
    arguments = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    url = f"{endpoint}/inventory"
    print(
        f"flaky upstream service on {url}; it goes down for calls {arguments.calls // 3} "
        f"to {2 * arguments.calls // 3}"
    )

    breaker = CircuitBreaker(
        endpoint,
        consecutive_failures=3,
        failure_result=is_server_error,
        recovery_timeout=0.5,
        half_open_max_calls=1,
        listeners=(PrintTransitions(),),
    )
    retry = Retry(
        endpoint,
        max_attempts=2,
        initial_backoff=0.02,
        max_backoff=0.05,
        retry_on_result=is_server_error,
        breaker=breaker,
    )
    outcomes: Counter[str] = Counter()
    for number in range(arguments.calls):
        if number == arguments.calls // 3:
            FlakyService.down.set()
        elif number == 2 * arguments.calls // 3:
            FlakyService.down.clear()
        try:
            outcomes[str(retry.call(breaker.call, get, url))] += 1
        except CircuitOpenError:
            outcomes["rejected by the breaker"] += 1
        time.sleep(0.05)
    server.shutdown()
    print(
        f"{arguments.calls} calls: " + ", ".join(f"{n} x {s}" for s, n in sorted(outcomes.items()))
    )
    stats = breaker.stats
    print(
        f"breaker {breaker.name}: {breaker.state}; {stats.successes} successes, "
        f"{stats.failures} failures, {stats.rejections} rejected"
    )

    telemetry = installed_telemetry()
    if telemetry is None:
        print("otel-resilience is not active: run this under `opentelemetry-instrument`.")
        return 1
    print(f"exporters: {telemetry.exporters}")
    if telemetry.prometheus_url is None:
        print("no Prometheus endpoint in this process (see the warning above, if any)")
        return 0
    print(f"metrics at {telemetry.prometheus_url}; what it serves now:")
    for line in read_back(telemetry.prometheus_url):
        print(f"  {line}")
    print("point Prometheus at that endpoint, or set OTEL_EXPORTER_OTLP_ENDPOINT for a collector")
    return 0


if __name__ == "__main__":
    sys.exit(main())
