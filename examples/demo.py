"""The first thing to run: a flaky upstream service, a client calling it, and what we see.

Run it with ``make demo`` (which runs it under ``opentelemetry-instrument``), or by hand::

    opentelemetry-instrument python examples/demo.py --calls 60

It starts a small HTTP service on 127.0.0.1 that answers 503 to some requests and is slow
on others, calls it in a loop, and then prints what the distribution recorded, read back
from the Prometheus endpoint the distribution serves by default. It needs no collector; set
``OTEL_EXPORTER_OTLP_ENDPOINT`` to send traces, metrics and logs to one instead.

Until the HTTP instrumentation lands, the client records its own span and
``http.client.request.duration`` measurement per call, the way the instrumentation will do
it for an unchanged program.
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

from otel_resilience import installed_telemetry


class FlakyService(BaseHTTPRequestHandler):
    """Answers 503 to about a fifth of the requests and takes up to 80 ms on others."""

    failure_ratio = 0.2
    randomness = random.Random(7)

    def do_GET(self) -> None:
        if self.randomness.random() < self.failure_ratio:
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


def call_once(url: str) -> int:
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


def read_back(prometheus_url: str) -> list[str]:
    """The demo's request-duration series as Prometheus scrapes them."""
    with urllib.request.urlopen(prometheus_url, timeout=5) as response:
        text = response.read().decode()
    return [
        line
        for line in text.splitlines()
        if line.startswith("http_client_request_duration_seconds_count")
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40, help="how many calls to make")
    arguments = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/inventory"
    print(f"flaky upstream service on {url}")

    outcomes: Counter[int] = Counter(call_once(url) for _ in range(arguments.calls))
    server.shutdown()
    print(
        f"{arguments.calls} calls: " + ", ".join(f"{n} x {s}" for s, n in sorted(outcomes.items()))
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
