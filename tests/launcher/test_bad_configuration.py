"""Bad configuration costs one clear line and its own piece; everything else keeps working.

Each test starts a program, unchanged, under the real ``opentelemetry-instrument`` launcher
with one bad setting, and checks what a user would: the one line on standard error that
names the setting, and that the program's calls, spans, metrics and logs are all there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from http_test_server import ScriptedHttpServer
from instrumented_run import InstrumentedRun, run_instrumented
from otlp_receiver import OtlpReceiver

# --- shared checks ----------------------------------------------------------------------


def _lines_naming(run: InstrumentedRun, variable: str) -> list[str]:
    return [line for line in run.stderr.splitlines() if variable in line]


def _one_line_naming(run: InstrumentedRun, variable: str, *fragments: str) -> str:
    """The single stderr line about ``variable``; it must hold every fragment."""
    lines = _lines_naming(run, variable)
    assert len(lines) == 1, run.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in run.stderr, run.stderr
    return lines[0]


# --- item 8: every field of the breaker overrides is checked at start-up ------------------

CALLS = """
import sys, psycopg, pymysql, requests
from otel_resilience import default_registry
print("http", requests.get(sys.argv[1], timeout=10).status_code)
with psycopg.connect("host=127.0.0.1 dbname=test user=postgres") as conn:
    print("psycopg", conn.execute("select 1").fetchone()[0])
connection = pymysql.connect(host="127.0.0.1", user="root", password="", database="test")
with connection.cursor() as cursor:
    cursor.execute("select 1")
    print("pymysql", cursor.fetchone()[0])
connection.close()
for breaker in sorted(default_registry().breakers(), key=lambda b: b.name):
    print("breaker", breaker.name, breaker.policy.consecutive_failures, breaker.policy.window_size)
"""


@pytest.mark.parametrize(
    ("value", "shown"),
    [(20.5, "20.5"), ("30", '"30"'), (True, "true"), (0, "0"), (200_000, "200000")],
)
def test_an_invalid_override_field_is_one_line_and_every_call_stays_instrumented(
    value: object, shown: str, http_server: ScriptedHttpServer
) -> None:
    overrides = {"*": {"window_size": value, "consecutive_failures": 3}}
    run = run_instrumented(
        CALLS,
        args=[http_server.url("/ok")],
        env={
            "OTEL_RESILIENCE_BREAKER_OVERRIDES": json.dumps(overrides),
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_METRICS_EXPORTER": "none",
        },
    ).check()
    line = _one_line_naming(
        run, "OTEL_RESILIENCE_BREAKER_OVERRIDES", "'*'", f"window_size={shown}", "a whole number"
    )
    assert "from 1 to 100000" in line
    assert "not instrumented" not in run.stderr, run.stderr
    assert "http 200" in run.stdout
    assert "psycopg 1" in run.stdout
    assert "pymysql 1" in run.stdout
    # Every breaker has the entry's valid field and the configured window size.
    breakers = [line for line in run.stdout.splitlines() if line.startswith("breaker ")]
    assert len(breakers) == 3, run.stdout
    assert all(line.endswith(" 3 100") for line in breakers), breakers
    assert '"name": "GET"' in run.stdout  # the HTTP call still has its span


# --- item 9: one invalid SDK variable costs only the piece it configures -----------------

SIGNALS_APP = """
import logging
from opentelemetry import metrics, trace
with trace.get_tracer("test.app").start_as_current_span("work"):
    metrics.get_meter("test.app").create_counter("app.jobs", unit="{job}").add(1)
    logging.getLogger("test.app").warning("job done")
print("finished", flush=True)
"""


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0", "using the default 2048"),
        ("OTEL_BSP_SCHEDULE_DELAY", "-1", "using the default 5000"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "0", "using the default 60000"),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "0", "using the default 2048"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "5000", "using 2048"),
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "-1", "using the default 128"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "ten", "using the default 10"),
    ],
)
def test_an_invalid_sdk_variable_costs_one_line_and_every_signal_still_arrives(
    variable: str, value: str, fragment: str, otlp_receiver: OtlpReceiver
) -> None:
    run = run_instrumented(
        SIGNALS_APP,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            variable: value,
        },
    ).check()
    assert "finished" in run.stdout
    _one_line_naming(run, variable, repr(value), fragment)
    assert otlp_receiver.wait_for_spans(lambda s: s.name == "work", timeout=5)
    assert otlp_receiver.wait_for_metric("app.jobs", timeout=5).data_points[0].value == 1
    assert otlp_receiver.wait_for_logs(lambda r: r.body == "job done", timeout=5)


# --- item 10: an unopenable log file ------------------------------------------------------

LOGGING_APP = """
import logging
logging.getLogger("app").warning("order placed")
print("finished", flush=True)
"""


UNOPENABLE = {
    "a directory": ("", "IsADirectoryError"),
    "under a missing directory": ("missing/app.log", "FileNotFoundError"),
    "under a file": ("a-file/app.log", "NotADirectoryError"),
}


@pytest.mark.parametrize("case", UNOPENABLE)
def test_an_unopenable_log_file_is_one_line_and_the_console_output_stays(
    case: str, tmp_path: Path
) -> None:
    relative, error = UNOPENABLE[case]
    (tmp_path / "a-file").write_text("")
    path = tmp_path / relative if relative else tmp_path
    run = run_instrumented(
        LOGGING_APP,
        env={
            "OTEL_RESILIENCE_LOG_FORMAT": "json",
            "OTEL_RESILIENCE_LOG_OUTPUTS": "console,file",
            "OTEL_RESILIENCE_LOG_FILE": str(path),
            "OTEL_METRICS_EXPORTER": "none",
        },
    ).check()
    assert "finished" in run.stdout
    _one_line_naming(run, "OTEL_RESILIENCE_LOG_FILE", repr(str(path)), error, "console")
    records = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert [record["message"] for record in records] == ["order placed"], run.stderr


# --- item 11: unknown names in OTEL_RESILIENCE_DISABLED -----------------------------------

BREAKERS_APP = """
import sqlite3, sys, requests
from otel_resilience import default_registry
requests.get(sys.argv[1], timeout=10)
sqlite3.connect(":memory:").execute("select 1")
print("breakers", sorted(breaker.name.split(":")[0] for breaker in default_registry().breakers()))
"""


@pytest.mark.parametrize(
    ("value", "unknown", "breakers"),
    [
        # a typo alone keeps the default list (SQLite without breakers), not an empty one
        ("reqeusts", "reqeusts", "['http']"),
        # the valid name beside a typo still applies
        ("requests,reqeusts", "reqeusts", "['sqlite']"),
    ],
)
def test_unknown_names_in_disabled_are_reported_and_the_valid_ones_kept(
    value: str, unknown: str, breakers: str, http_server: ScriptedHttpServer
) -> None:
    run = run_instrumented(
        BREAKERS_APP,
        args=[http_server.url("/ok")],
        env={"OTEL_RESILIENCE_DISABLED": value, "OTEL_METRICS_EXPORTER": "none"},
    ).check()
    line = _one_line_naming(run, "OTEL_RESILIENCE_DISABLED", repr(value), unknown)
    assert "requests" in line.split("expected", 1)[1]  # and what the valid names are
    assert f"breakers {breakers}" in run.stdout


# --- item 12: durations above the maximum -------------------------------------------------


def test_a_huge_shutdown_timeout_is_capped_and_exit_is_clean() -> None:
    run = run_instrumented(
        SIGNALS_APP,
        env={"OTEL_RESILIENCE_SHUTDOWN_TIMEOUT": "1e10", "OTEL_TRACES_EXPORTER": "console"},
    ).check()
    _one_line_naming(run, "OTEL_RESILIENCE_SHUTDOWN_TIMEOUT", "'1e10'", "using 86400")
    assert '"name": "work"' in run.stdout  # and the final flush still happened


RETRYING_APP = """
import sys, threading, requests
outcome = []
def call():
    try:
        outcome.append(requests.get(sys.argv[1], timeout=10).status_code)
    except Exception as error:
        outcome.append(type(error).__name__)
caller = threading.Thread(target=call, daemon=True)
caller.start()
caller.join(3)
print("outcome", outcome[0] if outcome else "waiting to retry")
"""


def test_a_huge_retry_backoff_is_capped_and_the_call_waits_instead_of_raising(
    http_server: ScriptedHttpServer,
) -> None:
    run = run_instrumented(
        RETRYING_APP,
        args=[http_server.url("/status/503")],
        env={
            "OTEL_RESILIENCE_RETRY_INITIAL_BACKOFF": "1e10",
            "OTEL_RESILIENCE_RETRY_MAX_BACKOFF": "1e10",
            "OTEL_RESILIENCE_RETRY_JITTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
        },
    ).check()
    for variable in ("OTEL_RESILIENCE_RETRY_INITIAL_BACKOFF", "OTEL_RESILIENCE_RETRY_MAX_BACKOFF"):
        _one_line_naming(run, variable, "'1e10'", "using 86400")
    # Before the cap the first retry's sleep raised OverflowError out of requests.get.
    assert "outcome waiting to retry" in run.stdout, run.stdout
    assert len(http_server.received) == 1


HEALTH_APP = """
import time
from otel_resilience.health import health_report, register_check
register_check("database", lambda: time.sleep(0.2) or True)  # still running when waited for
print("health", health_report()["status"])
"""


def test_a_huge_health_check_timeout_is_capped_and_checks_still_run() -> None:
    run = run_instrumented(
        HEALTH_APP,
        env={"OTEL_RESILIENCE_HEALTH_CHECK_TIMEOUT": "1e10", "OTEL_METRICS_EXPORTER": "none"},
    ).check()
    _one_line_naming(run, "OTEL_RESILIENCE_HEALTH_CHECK_TIMEOUT", "'1e10'", "using 86400")
    assert "health ok" in run.stdout
