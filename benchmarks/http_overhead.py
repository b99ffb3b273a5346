"""Per-request overhead of our HTTP instrumentations, next to the upstream OpenTelemetry ones.

What is measured
----------------

Microseconds per request against a local keep-alive HTTP/1.1 server on 127.0.0.1 (a fixed
tiny response with ``Content-Length``), for three clients: ``requests`` (one
``requests.Session``), httpx sync (one ``httpx.Client``) and httpx async (one
``httpx.AsyncClient``), each in four configurations measured in the same run:

``bare``
    no instrumentation at all;
``upstream``
    opentelemetry-instrumentation-requests / -httpx (a client span and the duration
    histogram);
``ours``
    otel-resilience's instrumentors: span, duration histogram, the endpoint's circuit
    breaker and retries armed (``resilience=True``; retries as the
    ``OTEL_RESILIENCE_RETRY_*`` settings say, by default up to 2 per idempotent request,
    with 2 put back if the environment turns them off);
``ours-telemetry``
    ours with breakers and retries off (``resilience=False``), i.e. doing upstream's job
    only: for information, it shows what the resilience part costs and is in no target.

Every configuration gets the same real SDK: a ``TracerProvider`` with a
``BatchSpanProcessor`` feeding an exporter that counts and discards the spans (so span
processing costs what it does in production, minus the network), and a ``MeterProvider``
whose reader is the ``RegistryMetricReader`` our configurator installs for push exporters
(collected once, at the end): ours records its duration histogram in a metric registry,
as under the launcher; upstream's SDK instruments cost what they cost under any reader.
Both are passed to
``instrument()`` as ``tracer_provider=`` / ``meter_provider=`` and are also the global
providers, which the breakers' and retries' own instruments use. Instrumentors are
singletons, so a configuration is instrumented before its blocks and uninstrumented after
them, and the originals (``Session.send``, ``HTTPTransport.handle_request``,
``AsyncHTTPTransport.handle_async_request``) are checked to be back in place; an
``instrument()`` that hooked nothing (a dependency conflict) is reported. The upstream and
our instrumentors are never active at the same time.

A block is one fresh session or client (created after instrumenting, so either hooking style
is covered), 20 warm-up requests (which open the keep-alive connection), then ``n`` timed
requests; ``n`` is calibrated per client on the bare client so that a block takes about 0.1
s (0.08 s with ``--quick``). Blocks run in rounds: every configuration and client once per
round, client by client so that the blocks compared are close in time, in an order that
rotates from round to round, so that machine noise is spread over all of them; many short
rounds (41) rather than a few long ones, since on a shared machine the cost of the same
requests drifts by a quarter over seconds. The figures are medians over rounds: µs per
request, and the overhead of each configuration over ``bare`` measured in the same round.
The cyclic GC stays enabled (as in production); the span queue is flushed between blocks,
outside the timing. Spans exported and histogram points are checked against the requests
sent.

Target (the HTTP instrumentations issue): for each client, ours' overhead <= 0.5 x the
upstream instrumentor's overhead, in the same run, while doing more. PASS/FAIL is printed
per client, with a 90% bootstrap interval of the ratio over the rounds (how far it could
move on another run like this one: on a shared machine, easily ±0.1); a client whose
instrumentor cannot be loaded or instrumented, or whose instrumented block raises, is
skipped with a note (the httpx instrumentor may not exist yet).

The server: a subprocess, not a thread
--------------------------------------

A server thread in the benchmark's process shares the client's GIL. Measured on the 2-core
development machine, full runs one after the other (``--server thread``, then the default
``--server process``): the in-process server made every bare request slower (requests
303 vs 294 µs, httpx sync 274 vs 238, httpx async 645 vs 591) and the overheads noisier
(interquartile ranges of ours' overhead 79/66/54 µs vs 29/23/34 µs), while the
ours/upstream ratios stayed within that noise (0.93/0.69/0.85 vs 1.03/0.71/0.79). A remote
server takes nothing from the client's process, so the server is a subprocess (this same
script with ``--serve``, a thread per keep-alive connection answering one fixed response)
on the other core: the figures then hold the client's own work and the loopback round trip
only. ``--server thread`` is kept to repeat the comparison.

How to run
----------

From the repository root::

    .venv/bin/python benchmarks/http_overhead.py            # about 85 s on 2 cores
    .venv/bin/python benchmarks/http_overhead.py --quick    # about 15 s, noisier
    .venv/bin/python benchmarks/http_overhead.py --profile requests   # cProfile of ours

``--profile CLIENT`` (``requests``, ``httpx-sync``, ``httpx-async``) runs 5,000 requests of
that client under ``--profile-config`` (default ``ours``) in cProfile and prints the top
functions by own and by cumulative time; cProfile inflates call-heavy code, so read it for
where the time goes, not for how much.

``OTEL_SEMCONV_STABILITY_OPT_IN`` is left as the environment has it: unset, the upstream
instrumentors emit the old HTTP conventions (``http.client.duration`` in ms); set it to
``http`` for the stable ones, which are what ours emits. The exit status is 0 whatever the
results; read the PASS/FAIL lines at the end.

The SDK, the switchboard, the rounds, the tables and the checks are shared with
``db_overhead.py``, in ``_overhead_harness.py`` next to this script; what is HTTP's is here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import requests
from _overhead_harness import (
    Bench,
    BlockRunner,
    Configuration,
    Elapsed,
    Results,
    Settings,
    Suite,
    add_profile_arguments,
    argument_parser,
    armed_retries,
    chosen_settings,
    floor_instruments,
    instruction_counts,
    instructions_child,
    machine,
    make_telemetry,
    mode,
    profile,
    report,
    resilience_on,
    unwrap,
    version,
)
from opentelemetry import trace

from otel_resilience.breaker._registry import default_registry
from otel_resilience.instrumentation._http_client import endpoint_key

CLIENTS = ("requests", "httpx-sync", "httpx-async")
FAMILY = {"requests": "requests", "httpx-sync": "httpx", "httpx-async": "httpx"}
WARMUP_REQUESTS = 20
DURATION_HISTOGRAMS = ("http.client.request.duration", "http.client.duration")
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"

FULL = Settings(rounds=41, block_seconds=0.1, calibration=200)
QUICK = Settings(rounds=7, block_seconds=0.08, calibration=100)


# --- the server ------------------------------------------------------------------------------


def _content_length(head: bytes) -> int:
    start = head.lower().find(b"\r\ncontent-length:")
    if start < 0:
        return 0
    value = head[start + 17 :].split(b"\r\n", 1)[0]
    return int(value.strip() or b"0")


def _serve_connection(connection: socket.socket) -> None:
    """Answer every request on one keep-alive connection with ``RESPONSE``."""
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    with connection:
        while True:
            try:
                chunk = connection.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while (end := buffer.find(b"\r\n\r\n")) >= 0:
                total = end + 4 + _content_length(buffer[:end])
                if len(buffer) < total:
                    break
                buffer = buffer[total:]
                try:
                    connection.sendall(RESPONSE)
                except OSError:
                    return


def _accept_forever(listener: socket.socket) -> None:
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:  # the listener was closed
            return
        threading.Thread(target=_serve_connection, args=(connection,), daemon=True).start()


def _listen() -> socket.socket:
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    threading.Thread(target=_accept_forever, args=(listener,), daemon=True).start()
    return listener


def serve() -> None:
    """``--serve``: print the port, answer until standard input closes (the parent went)."""
    listener = _listen()
    print(listener.getsockname()[1], flush=True)
    sys.stdin.read()
    listener.close()


@contextlib.contextmanager
def running_server(mode: str) -> Iterator[str]:
    """The base URL of a server in a thread of this process or in a subprocess."""
    if mode == "thread":
        listener = _listen()
        try:
            yield f"http://127.0.0.1:{listener.getsockname()[1]}/items?id=1"
        finally:
            listener.close()
        return
    command = [sys.executable, os.path.abspath(__file__), "--serve"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if ready else ""
        if not line.strip().isdigit():
            raise RuntimeError(f"the server subprocess did not start (said {line!r})")
        yield f"http://127.0.0.1:{int(line)}/items?id=1"
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the SDK floor -----------------------------------------------------------------------------


class _SdkFloorInstrumentor:
    """The least any SDK-based instrumentation costs: one span and one histogram point.

    It wraps the same three hooks as ours, starts and ends a CLIENT span (current while the
    request is sent, so it is what a propagator would inject) and records the duration with
    the low-cardinality attributes, and does nothing else: no URL parsing, no semantic
    convention helpers, no propagation, no breaker, no retry. What ``upstream`` and
    ``ours`` add beyond it is their own code's cost; the SDK's share is the same in both.
    """

    hooks: tuple[tuple[type, str], ...] = ()

    def instrument(self, **kwargs: Any) -> None:
        import wrapt

        tracer, histogram = floor_instruments(kwargs, "http.client.request.duration")
        attributes = {"http.request.method": "GET", "server.address": "127.0.0.1"}

        def sync_hook(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            started = time.perf_counter()
            with tracer.start_as_current_span("GET", kind=trace.SpanKind.CLIENT):
                response = wrapped(*args, **kw)
            histogram.record(time.perf_counter() - started, attributes)
            return response

        async def async_hook(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            started = time.perf_counter()
            with tracer.start_as_current_span("GET", kind=trace.SpanKind.CLIENT):
                response = await wrapped(*args, **kw)
            histogram.record(time.perf_counter() - started, attributes)
            return response

        for owner, name in self.hooks:
            hook = async_hook if name == "handle_async_request" else sync_hook
            wrapt.wrap_function_wrapper(owner, name, hook)

    def uninstrument(self, **kwargs: Any) -> None:
        for owner, name in self.hooks:
            unwrap(owner, name)


class SdkFloorRequests(_SdkFloorInstrumentor):
    hooks = ((requests.Session, "send"),)


class SdkFloorHttpx(_SdkFloorInstrumentor):
    hooks = (
        (httpx.HTTPTransport, "handle_request"),
        (httpx.AsyncHTTPTransport, "handle_async_request"),
    )


# --- configurations ----------------------------------------------------------------------------


def _resilience_off() -> dict[str, Any]:
    return {"resilience": False}


UPSTREAM = {
    "requests": ("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
    "httpx": ("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
}
OURS = {
    "requests": ("otel_resilience_instrumentation_requests", "RequestsInstrumentor"),
    "httpx": ("otel_resilience_instrumentation_httpx", "HTTPXClientInstrumentor"),
}
SDK_FLOOR = {
    "requests": ("__main__", "SdkFloorRequests"),
    "httpx": ("__main__", "SdkFloorHttpx"),
}
CONFIGURATIONS = (
    Configuration("bare", {}),
    Configuration("upstream", UPSTREAM),
    Configuration("ours", OURS, resilience_on),
    Configuration("ours-telemetry", OURS, _resilience_off),
    Configuration("sdk-floor", SDK_FLOOR),
)
HOOKS: dict[str, tuple[object, str]] = {
    "requests.Session.send": (requests.Session, "send"),
    "httpx.HTTPTransport.handle_request": (httpx.HTTPTransport, "handle_request"),
    "httpx.AsyncHTTPTransport.handle_async_request": (
        httpx.AsyncHTTPTransport,
        "handle_async_request",
    ),
}
"""The places the instrumentors hook: (class, attribute), by name."""
SUITE = Suite(
    clients=CLIENTS,
    family=FAMILY,
    configurations=CONFIGURATIONS,
    hooks=HOOKS,
    family_hooks={
        "requests": ("requests.Session.send",),
        "httpx": (
            "httpx.HTTPTransport.handle_request",
            "httpx.AsyncHTTPTransport.handle_async_request",
        ),
    },
    our_histogram_scope="otel_resilience.instrumentation.http",
    duration_histograms=DURATION_HISTOGRAMS,
    warmup=WARMUP_REQUESTS,
    calibrate_on="bare",
    minimum_count=50,
    unit="request",
    units="requests",
    per_unit_header="µs/req",
    per_block_header="req/block",
    done="sent",
    points="histogram",
    histogram_label="histogram",
    decimals=1,
)


# --- the clients -------------------------------------------------------------------------------


def _timed_gets(get: Callable[[str], Any], url: str, warmup: int, count: int) -> Elapsed:
    """``warmup`` checked GETs, ``count`` timed ones, a last checked one."""
    for _ in range(warmup):
        get(url).raise_for_status()
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(count):
        get(url)
    elapsed = time.perf_counter() - started, time.process_time() - cpu_started
    get(url).raise_for_status()
    return elapsed


def requests_block(url: str, warmup: int, count: int) -> Elapsed:
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment: 127.0.0.1 only
        return _timed_gets(session.get, url, warmup, count)


def httpx_block(url: str, warmup: int, count: int) -> Elapsed:
    with httpx.Client(trust_env=False) as client:
        return _timed_gets(client.get, url, warmup, count)


async def _httpx_async_block(url: str, warmup: int, count: int) -> Elapsed:
    async with httpx.AsyncClient(trust_env=False) as client:
        get = client.get
        for _ in range(warmup):
            (await get(url)).raise_for_status()
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(count):
            await get(url)
        elapsed = time.perf_counter() - started, time.process_time() - cpu_started
        (await get(url)).raise_for_status()
    return elapsed


def make_runners(loop: asyncio.AbstractEventLoop, url: str) -> dict[str, BlockRunner]:
    """A block runner per client, against ``url``; httpx async's runs on ``loop``."""

    def httpx_async_block(warmup: int, count: int) -> Elapsed:
        return loop.run_until_complete(_httpx_async_block(url, warmup, count))

    return {
        "requests": functools.partial(requests_block, url),
        "httpx-sync": functools.partial(httpx_block, url),
        "httpx-async": httpx_async_block,
    }


# --- reporting ---------------------------------------------------------------------------------


def print_breaker_check(results: Results, url: str) -> None:
    """The endpoint breaker's calls, against the requests sent under ours."""
    port = httpx.URL(url).port
    stats = default_registry().get(endpoint_key("http", "127.0.0.1", port)).stats
    through_ours = sum(sent for (name, _), sent in results.sent.items() if name == "ours")
    verdict = "ok" if stats.calls == stats.successes == through_ours else "MISMATCH"
    print(
        f"  breaker of the endpoint: {stats.calls:,} calls, {stats.successes:,} successes; "
        f"requests sent under ours: {through_ours:,} ({verdict}; ours-telemetry sends none "
        "through it)"
    )


def print_header(arguments: argparse.Namespace, settings: Settings) -> None:
    retry = armed_retries()
    print("HTTP client overhead: otel-resilience vs the upstream OpenTelemetry instrumentors")
    print(
        f"{machine()}; requests {version('requests')}, httpx {version('httpx')}, "
        f"opentelemetry-sdk {version('opentelemetry-sdk')}, upstream instrumentations "
        f"{version('opentelemetry-instrumentation-requests')} / "
        f"{version('opentelemetry-instrumentation-httpx')}"
    )
    print(
        f"{mode(SUITE, settings, quick=arguments.quick)}; server: {arguments.server}; "
        "upstream semconv: "
        f"OTEL_SEMCONV_STABILITY_OPT_IN={os.environ.get('OTEL_SEMCONV_STABILITY_OPT_IN', '')!r}"
        f"; ours: breakers on, retries armed (max_retries={retry.max_retries}, "
        f"budget {retry.budget_ratio:g}, jitter {retry.jitter})"
    )


# --- entry points ------------------------------------------------------------------------------


def benchmark(arguments: argparse.Namespace) -> None:
    settings = chosen_settings(arguments, FULL, QUICK)
    print_header(arguments, settings)
    sys.stdout.flush()
    started = time.perf_counter()
    telemetry = make_telemetry()
    loop = asyncio.new_event_loop()
    try:
        with running_server(arguments.server) as url:
            bench = Bench(SUITE, telemetry, make_runners(loop, url), CLIENTS)
            bench.run(settings)
    finally:
        loop.close()
    report(SUITE, bench, settings)
    print_breaker_check(bench.results, url)
    telemetry.shutdown()
    print(f"\nTotal time: {time.perf_counter() - started:.1f} s")


def run_profile(arguments: argparse.Namespace) -> None:
    """cProfile of one client under one configuration; top functions by own time."""
    telemetry = make_telemetry()
    loop = asyncio.new_event_loop()
    try:
        with running_server(arguments.server) as url:
            profile(
                SUITE,
                telemetry,
                make_runners(loop, url)[arguments.profile],
                client=arguments.profile,
                configuration_name=arguments.profile_config,
                count=arguments.profile_count,
                warmup_count=500,
            )
    finally:
        loop.close()


def run_instructions(arguments: argparse.Namespace) -> None:
    """``--instructions``: callgrind's instructions per request, bare / upstream / ours."""
    with running_server("process") as url:
        os.environ["INSTRUCTIONS_URL"] = url
        instruction_counts(SUITE, [os.path.abspath(__file__)], arguments.instructions)


def run_instructions_child(arguments: argparse.Namespace) -> None:
    client, configuration = arguments.instructions_child
    telemetry = make_telemetry()
    loop = asyncio.new_event_loop()
    try:
        runner = make_runners(loop, os.environ["INSTRUCTIONS_URL"])[client]
        instructions_child(SUITE, telemetry, runner, client=client, configuration=configuration)
    finally:
        loop.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--server",
        choices=("process", "thread"),
        default="process",
        help="where the local HTTP server runs (default: a subprocess; see the docstring)",
    )
    add_profile_arguments(parser, SUITE, default=5000)
    parser.add_argument(
        "--instructions",
        nargs="*",
        choices=CLIENTS,
        help="count instructions per request with callgrind instead (all clients by default; "
        "about 7 minutes for the three)",
    )
    parser.add_argument("--instructions-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.serve:
        serve()
    elif arguments.instructions_child:
        run_instructions_child(arguments)
    elif arguments.instructions is not None:
        arguments.instructions = arguments.instructions or list(CLIENTS)
        run_instructions(arguments)
    elif arguments.profile:
        run_profile(arguments)
    else:
        benchmark(arguments)


if __name__ == "__main__":
    main()
