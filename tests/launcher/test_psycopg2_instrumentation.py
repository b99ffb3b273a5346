"""The psycopg2 instrumentation in a program run by the real launcher, against the real PostgreSQL.

The tests in the test process are in tests/integration/test_psycopg2_instrumentation.py.
"""

from __future__ import annotations

from instrumented_run import run_instrumented
from otlp_receiver import OtlpReceiver

DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


DURATION = "db.client.operation.duration"


APP = f"""
import psycopg2
connection = psycopg2.connect("{DSN}")
with connection.cursor() as cursor:
    cursor.execute("SELECT %s::text", ("a secret parameter",))
    print(cursor.fetchone()[0])
connection.close()
"""


def test_loaded_by_the_launcher_beside_the_upstream_instrumentor(
    otlp_receiver: OtlpReceiver,
) -> None:
    from importlib.metadata import entry_points

    values = {e.value for e in entry_points(group="opentelemetry_instrumentor", name="psycopg2")}
    assert any(v.startswith("opentelemetry.instrumentation.psycopg2") for v in values)
    run = run_instrumented(
        APP, env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint}
    ).check()
    assert run.stdout.strip() == "a secret parameter"
    (span,) = otlp_receiver.wait_for_spans()
    assert span.name == "SELECT test"
    assert span.scope_name == "otel_resilience.instrumentation.psycopg2"
    assert otlp_receiver.wait_for_metric(DURATION)
    assert otlp_receiver.wait_for_metric("resilience.circuit_breaker.calls")
    assert "a secret parameter" not in repr(otlp_receiver.spans())
