"""The sqlite3 instrumentation loaded by the real launcher, beside the upstream instrumentor."""

from __future__ import annotations

from pathlib import Path

from instrumented_run import run_instrumented
from otlp_receiver import OtlpReceiver

DURATION = "db.client.operation.duration"


APP = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
connection.execute("CREATE TABLE IF NOT EXISTS notes (body TEXT)")
connection.execute("INSERT INTO notes (body) VALUES ('a private note')")
print(connection.execute("SELECT COUNT(*) FROM notes").fetchone()[0])
connection.close()
"""


def test_loaded_by_the_launcher_beside_the_upstream_instrumentor(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    # opentelemetry-instrumentation-sqlite3 is installed too (a test dependency): the
    # launcher finds two entry points named "sqlite3" and the distro keeps only ours.
    from importlib.metadata import entry_points

    values = {e.value for e in entry_points(group="opentelemetry_instrumentor", name="sqlite3")}
    assert any(v.startswith("opentelemetry.instrumentation.sqlite3") for v in values)
    run = run_instrumented(
        APP,
        args=[str(tmp_path / "notes.db")],
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.grpc_endpoint},
    ).check()
    assert run.stdout.strip() == "1"
    spans = otlp_receiver.wait_for_spans(count=3)
    assert [span.name for span in spans] == ["CREATE notes", "INSERT notes", "SELECT notes"]
    assert {span.scope_name for span in spans} == {"otel_resilience.instrumentation.sqlite3"}
    assert otlp_receiver.wait_for_metric(DURATION)
    assert "a private note" not in repr(otlp_receiver.spans())
