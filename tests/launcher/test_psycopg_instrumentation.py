"""The psycopg instrumentation in a program run by the real launcher, against the real PostgreSQL.

The tests in the test process are in tests/integration/test_psycopg_instrumentation.py.
"""

from __future__ import annotations

from instrumented_run import run_instrumented
from otlp_receiver import OtlpReceiver, unused_tcp_port

HOST, PORT, DATABASE, USER = "127.0.0.1", 5432, "test", "postgres"


APP = """
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute("SET statement_timeout = 50")
    try:
        conn.execute("SELECT pg_sleep(1)")
    except psycopg.OperationalError as error:  # the program's own except clause
        print(type(error).__name__)
for _ in range(3):
    try:
        psycopg.connect(sys.argv[2])
    except psycopg.OperationalError as error:
        print(type(error).__name__)
"""


def test_loaded_by_the_launcher_with_environment_variables_only(
    otlp_receiver: OtlpReceiver,
) -> None:
    refused = unused_tcp_port()
    run = run_instrumented(
        APP,
        args=[
            f"host={HOST} port={PORT} dbname={DATABASE} user={USER}",
            f"host={HOST} port={refused} dbname={DATABASE} user={USER}",
        ],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint,
            "OTEL_RESILIENCE_RETRY_MAX_ATTEMPTS": "2",
            "OTEL_RESILIENCE_RETRY_INITIAL_BACKOFF": "0.01",
            "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "1",
            "OTEL_RESILIENCE_DB_RETRY_READ_ONLY": "true",
        },
    ).check()
    # The first connect to the refused port tries three times: one failed call, which opens
    # its breaker (consecutive_failures=1).
    assert run.stdout.splitlines() == [
        "QueryCanceled",
        "OperationalError",
        "PsycopgCircuitOpenError",
        "PsycopgCircuitOpenError",
    ]
    spans = otlp_receiver.wait_for_spans(count=4)
    assert [span.name for span in spans] == ["SET test"] + ["SELECT test"] * 3
    assert {span.scope_name for span in spans} == {"otel_resilience.instrumentation.psycopg"}


def test_with_the_upstream_instrumentor_installed_there_is_one_span_per_statement(
    otlp_receiver: OtlpReceiver,
) -> None:
    from importlib.metadata import entry_points

    values = {e.value for e in entry_points(group="opentelemetry_instrumentor", name="psycopg")}
    assert any(v.startswith("opentelemetry.instrumentation.psycopg") for v in values)
    run_instrumented(
        "import psycopg, sys\n"
        "with psycopg.connect(sys.argv[1]) as conn:\n"
        "    conn.execute('SELECT 1')\n",
        args=[f"host={HOST} port={PORT} dbname={DATABASE} user={USER}"],
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint},
    ).check()
    spans = otlp_receiver.wait_for_spans(count=2)
    assert {span.scope_name for span in spans} == {"otel_resilience.instrumentation.psycopg"}
    assert [span.name for span in spans] == ["SELECT test", "COMMIT test"]
    assert len(otlp_receiver.spans()) == 2  # none from upstream's instrumentor
