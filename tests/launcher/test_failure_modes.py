"""The distribution never breaks the program: collector down, port taken, bad variables."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from instrumented_run import run_instrumented, running_instrumented
from otlp_receiver import OtlpReceiver, SilentTcpServer, unused_tcp_port

from otel_resilience.sdk.settings import RESILIENCE_VARIABLES, Variable

REPOSITORY = Path(__file__).resolve().parents[2]

# A program that produces all three signals and says when its own work is done, so the
# test can measure how long the exit takes after that.
APP = """
import logging, time
from opentelemetry import metrics, trace
with trace.get_tracer("test.app").start_as_current_span("work"):
    metrics.get_meter("test.app").create_counter("app.jobs", unit="{job}").add(1)
    logging.getLogger("test.app").warning("job done")
print(f"finished-at {time.time():.6f}", flush=True)
"""


def _exit_delay(env: dict[str, str]) -> float:
    """Seconds between the program's last statement and the end of its process."""
    run = run_instrumented(APP, env=env, timeout=90).check()
    exited_at = time.time()
    match = re.search(r"finished-at (\S+)", run.stdout)
    assert match, run.stdout + run.stderr
    return exited_at - float(match.group(1))


PROTOCOLS = ["grpc", "http/protobuf"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nothing_listening_adds_at_most_the_budget_to_exit(protocol: str) -> None:
    delay = _exit_delay(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{unused_tcp_port()}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        }
    )
    assert delay < 1.0 + 1.0, f"exit took {delay:.2f}s after the program finished"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_collector_that_never_answers_adds_at_most_the_budget_to_exit(
    protocol: str, silent_collector: SilentTcpServer
) -> None:
    delay = _exit_delay(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": silent_collector.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        }
    )
    assert silent_collector.accepted_connections >= 1, "the exporter never reached the collector"
    assert delay < 1.0 + 1.0, f"exit took {delay:.2f}s after the program finished"


def test_the_exit_budget_is_configurable(silent_collector: SilentTcpServer) -> None:
    # With a hung collector the flush really waits: a larger budget is spent in full,
    # which also shows that the 1 s bound above is what cuts the upstream wait short.
    delay = _exit_delay(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": silent_collector.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_RESILIENCE_SHUTDOWN_TIMEOUT": "4",
        }
    )
    assert 3.5 <= delay < 4.0 + 1.0, f"exit took {delay:.2f}s with a 4 s budget"


def test_hung_collector_warns_once_at_exit(silent_collector: SilentTcpServer) -> None:
    run = run_instrumented(
        APP,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": silent_collector.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_RESILIENCE_SHUTDOWN_TIMEOUT": "0.5",
        },
    ).check()
    assert run.stderr.count("OTEL_RESILIENCE_SHUTDOWN_TIMEOUT") == 1, run.stderr


def test_taken_prometheus_port_warns_once_and_tracing_goes_on(
    taken_port: int, otlp_receiver: OtlpReceiver
) -> None:
    run = run_instrumented(
        APP,
        env={
            "OTEL_METRICS_EXPORTER": "prometheus",
            "OTEL_EXPORTER_PROMETHEUS_PORT": str(taken_port),
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint,
        },
    ).check()
    warnings = [line for line in run.stderr.splitlines() if "Prometheus endpoint" in line]
    assert len(warnings) == 1, run.stderr
    assert str(taken_port) in warnings[0]
    assert "Traceback" not in run.stderr
    assert otlp_receiver.wait_for_spans(lambda s: s.name == "work")
    assert otlp_receiver.wait_for_logs(lambda r: r.body == "job done")


PARENT_WITH_CHILD = """
import subprocess, sys, urllib.request
from otel_resilience import installed_telemetry
child = subprocess.run(
    [sys.executable, "-c", "from otel_resilience import installed_telemetry as t; "
     "print('child configured', t() is not None, t().prometheus_url)"],
    capture_output=True, text=True,
)
print(child.stdout, end="")
print("child stderr:", child.stderr.strip().replace("\\n", " | "))
url = installed_telemetry().prometheus_url
print("parent serves", url, urllib.request.urlopen(url).status)
"""


def test_child_process_reinstrumented_on_the_same_port_keeps_running() -> None:
    # The launcher puts its sitecustomize on PYTHONPATH, so a Python child is instrumented
    # again with the same environment and finds the parent's Prometheus port taken.
    port = unused_tcp_port()
    run = run_instrumented(PARENT_WITH_CHILD, env={"OTEL_EXPORTER_PROMETHEUS_PORT": str(port)})
    run.check()
    assert "child configured True None" in run.stdout
    child_stderr = next(line for line in run.stdout.splitlines() if line.startswith("child stderr"))
    assert child_stderr.count("Prometheus endpoint") == 1
    assert f"parent serves http://localhost:{port}/metrics 200" in run.stdout


@pytest.mark.parametrize("variable", RESILIENCE_VARIABLES, ids=lambda v: v.name)
def test_malformed_variable_in_a_launched_program_is_one_clear_line(
    variable: Variable[object],
) -> None:
    run = run_instrumented(
        APP, env={variable.name: variable.invalid_example, "OTEL_METRICS_EXPORTER": "none"}
    ).check()
    assert "finished-at" in run.stdout
    lines = [line for line in run.stderr.splitlines() if variable.name in line]
    assert len(lines) == 1, run.stderr
    assert repr(variable.invalid_example) in lines[0]
    assert variable.expected in lines[0]


def test_malformed_upstream_variables_in_a_launched_program(otlp_receiver: OtlpReceiver) -> None:
    run = run_instrumented(
        APP,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint,
            "OTEL_TRACES_EXPORTER": "otlp,jaegerr",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        },
    ).check()
    assert "finished-at" in run.stdout
    assert "'otlp,jaegerr'" in run.stderr
    assert "'http/json'" in run.stderr
    # The valid part of the configuration still works: gRPC, the default protocol.
    assert otlp_receiver.wait_for_spans(lambda s: s.name == "work")[0].protocol == "grpc"


def test_demo_runs_and_shows_its_metrics() -> None:
    with running_instrumented(
        REPOSITORY / "examples" / "demo.py",
        args=["--calls", "12"],
        env={
            "OTEL_EXPORTER_PROMETHEUS_PORT": "0",
            "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "3",
            "OTEL_RESILIENCE_BREAKER_RECOVERY_TIMEOUT": "0.5",
        },
    ) as demo:
        demo.wait_for_output("point Prometheus at that endpoint", timeout=60)
    assert demo.result is not None
    assert demo.result.returncode == 0, demo.result.stderr
    assert "12 calls, counted in a SQLite file:" in demo.result.stdout
    assert ": closed -> open" in demo.result.stdout  # the outage trips the endpoint's breaker
    assert "http_client_request_duration_seconds_count" in demo.result.stdout
    assert 'db_client_operation_duration_seconds_count{db_collection_name="demo_calls"' in (
        demo.result.stdout
    )
    assert 'resilience_call_outcome="rejected"' in demo.result.stdout


def test_default_registry_builds_breakers_from_the_environment() -> None:
    run = run_instrumented(
        "from otel_resilience import default_registry\n"
        "breaker = default_registry().get('http://inventory:8080')\n"
        "print(breaker.policy.consecutive_failures, default_registry().max_breakers)\n",
        env={
            "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "2",
            "OTEL_RESILIENCE_BREAKER_MAX_BREAKERS": "7",
            "OTEL_RESILIENCE_BREAKER_WINDOW_SIZE": "many",
        },
    ).check()
    assert run.stdout.strip() == "2 7"
    # The configurator and the registry both read the settings: still one warning.
    assert run.stderr.count("OTEL_RESILIENCE_BREAKER_WINDOW_SIZE") == 1
