"""The pymysql instrumentation in a program run by the real launcher, against the real MariaDB.

The tests in the test process are in tests/integration/test_pymysql_instrumentation.py.
"""

from __future__ import annotations

from instrumented_run import run_instrumented
from otlp_receiver import OtlpReceiver, unused_tcp_port

DURATION = "db.client.operation.duration"


SCOPE = "otel_resilience.instrumentation.pymysql"


APP = """
import sys
import pymysql

connection = pymysql.connect(host="127.0.0.1", user="root", password="", database="test")
with connection.cursor() as cursor:
    cursor.execute("SELECT %s", ("a private note",))
    print(cursor.fetchone()[0])
for _ in range(3):
    try:
        pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="root", database="test")
    except pymysql.err.OperationalError as error:  # the program's own except clause
        print("error:", type(error).__name__)
"""


def test_loaded_by_the_launcher_with_environment_variables_only(
    otlp_receiver: OtlpReceiver,
) -> None:
    run = run_instrumented(
        APP,
        args=[str(unused_tcp_port())],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint,
            "OTEL_RESILIENCE_RETRY_MAX_ATTEMPTS": "0",
            "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "2",
        },
    ).check()
    assert run.stdout.splitlines() == [
        "a private note",
        "error: OperationalError",
        "error: OperationalError",
        "error: PyMySQLCircuitOpenError",
    ]
    (span,) = otlp_receiver.wait_for_spans()
    assert (span.name, span.scope_name) == ("SELECT test", SCOPE)
    assert span.attributes["db.system.name"] == "mariadb"
    assert span.attributes["db.query.text"] == "SELECT %s"
    assert otlp_receiver.wait_for_metric(DURATION)
    assert otlp_receiver.wait_for_metric("resilience.circuit_breaker.calls")
    assert "a private note" not in repr(otlp_receiver.spans())


def test_with_the_upstream_instrumentor_installed_there_is_one_span_per_statement(
    otlp_receiver: OtlpReceiver,
) -> None:
    from importlib.metadata import entry_points

    values = {e.value for e in entry_points(group="opentelemetry_instrumentor", name="pymysql")}
    assert any(v.startswith("opentelemetry.instrumentation.pymysql") for v in values)
    assert "otel_resilience_instrumentation_pymysql:PyMySQLInstrumentor" in values
    run_instrumented(
        "import pymysql\n"
        "connection = pymysql.connect(host='127.0.0.1', user='root', database='test')\n"
        "connection.cursor().execute('SELECT 1')\n",
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint},
    ).check()
    (span,) = otlp_receiver.wait_for_spans()
    assert span.scope_name == SCOPE
    assert len(otlp_receiver.spans()) == 1
