"""The Grafana dashboards: generated from code, valid PromQL, and every panel shows data.

The committed JSON under collector/grafana/dashboards/ is what users load, so the tests
read it (after checking it is exactly the generator's output). The decisive test runs
tests/support/dashboard_workload.py under the real launcher, lets a real Prometheus scrape it, and
runs every panel's query as Grafana would: a panel that names a metric or label we do not
emit, or that loses its data in a join, comes back empty and fails.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from collector_files import (
    DASHBOARDS,
    GENERATOR,
    Query,
    dashboard_queries,
    promtool,
)
from instrumented_run import running_instrumented
from prometheus_server import PrometheusServer, Sample, free_tcp_port

ROOT = Path(__file__).resolve().parents[2]


WORKLOAD = Path(__file__).resolve().parents[1] / "support" / "dashboard_workload.py"

SERVICE = "dashboard-workload"
"""The workload's service.name, chosen in the dashboards' service variable."""

PER_PROCESS_LABELS = {"instance", "job", "service_instance_id"}

VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def _substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana's variables as it would before sending ``expr`` to Prometheus."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise AssertionError(f"unknown variable ${name} in {expr}")
        return values[name]

    return VARIABLE.sub(value, expr)


def _values(service: str) -> dict[str, str]:
    return {"__rate_interval": "1m", "service": service, "breaker": ".*"}


# --- the files ---------------------------------------------------------------------------------


def _generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_committed_dashboards_are_what_the_generator_writes() -> None:
    run = _generate("--check")
    assert run.returncode == 0, run.stderr


def test_the_check_reports_a_dashboard_edited_by_hand(tmp_path: Path) -> None:
    for path in DASHBOARDS.glob("*.json"):
        shutil.copy(path, tmp_path)
    edited = tmp_path / "resilience-overview.json"
    edited.write_text(edited.read_text("utf-8").replace("Rejected calls", "Rejections"), "utf-8")

    run = _generate("--check", "--output-dir", str(tmp_path))

    assert run.returncode == 1
    assert f"{edited}: differs from the generator's output" in run.stderr


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    queries = dashboard_queries()
    rules = [
        {"record": f"dashboard:query_{number}", "expr": _substitute(query.expr, _values(".*"))}
        for number, query in enumerate(queries)
    ]
    rule_file = tmp_path / "dashboard-queries.yaml"
    rule_file.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}), "utf-8")

    check = subprocess.run(
        [promtool(), "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    names = "\n".join(
        f"{rule['record']}: {query.where}" for rule, query in zip(rules, queries, strict=True)
    )
    assert check.returncode == 0, f"{check.stdout}{check.stderr}\nwhich is which:\n{names}"
    assert f"SUCCESS: {len(rules)} rules found" in check.stdout


# --- against a real Prometheus scraping a real workload -------------------------------------


WORKLOAD_ENVIRONMENT = {
    "OTEL_SERVICE_NAME": SERVICE,
    "OTEL_METRICS_EXPORTER": "prometheus",
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    # Quick breaker cycles: open after 3 failures, probe after 0.5 s, one probe closes it.
    "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "3",
    "OTEL_RESILIENCE_BREAKER_RECOVERY_TIMEOUT": "0.5",
    "OTEL_RESILIENCE_BREAKER_HALF_OPEN_MAX_CALLS": "1",
    "OTEL_RESILIENCE_BREAKER_SLOW_CALL_DURATION": "0.05",
    # Retries that do not wait, under a budget that stops most of them.
    "OTEL_RESILIENCE_RETRY_INITIAL_BACKOFF": "0.001",
    "OTEL_RESILIENCE_RETRY_BUDGET_RATIO": "0.01",
    # JSON logs to a file through a one-record queue: records are dropped.
    "OTEL_RESILIENCE_LOG_FORMAT": "json",
    "OTEL_RESILIENCE_LOG_OUTPUTS": "file",
    "OTEL_RESILIENCE_LOG_NON_BLOCKING": "true",
    "OTEL_RESILIENCE_LOG_QUEUE_SIZE": "1",
}


def _has_finite_value(samples: Sequence[Sample]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in samples)


def _wait_for_data(
    prometheus: PrometheusServer, queries: Sequence[Query], service: str, timeout: float
) -> dict[Query, list[Sample]]:
    """Run every query until each returns a finite value or ``timeout`` passes; the results.

    Some series appear a scrape or two late (a breaker's next opening), hence the retries.
    """
    deadline = time.monotonic() + timeout
    results: dict[Query, list[Sample]] = {}
    while True:
        for query in queries:
            if not _has_finite_value(results.get(query, [])):
                results[query] = prometheus.query(_substitute(query.expr, _values(service)))
        if all(_has_finite_value(samples) for samples in results.values()):
            return results
        if time.monotonic() >= deadline:
            return results
        time.sleep(0.5)


def test_every_query_shows_data_from_a_real_workload(
    start_prometheus: Callable[[Sequence[str]], PrometheusServer], tmp_path: Path
) -> None:
    port = free_tcp_port()
    environment = {
        **WORKLOAD_ENVIRONMENT,
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
        "OTEL_RESILIENCE_LOG_FILE": str(tmp_path / "workload.log"),
    }
    queries = dashboard_queries()
    with running_instrumented(WORKLOAD, env=environment, eof_grace=10) as workload:
        workload.wait_for_output(r"^ready ", timeout=60)
        prometheus = start_prometheus([f"127.0.0.1:{port}"])
        # Two scrapes, so that rates exist; no metric of ours named, so this cannot hide one.
        prometheus.wait_for_query("count_over_time(up[1m]) >= 2", timeout=60)

        results = _wait_for_data(prometheus, queries, SERVICE, timeout=20)

        empty = [
            f"{query.where}: {query.expr}"
            for query in queries
            if not _has_finite_value(results[query])
        ]
        assert empty == [], "queries without data:\n" + "\n".join(empty)
        # One line per breaker or endpoint, however many processes: none kept apart.
        per_process = [
            f"{query.where}: {sample['metric']}"
            for query in queries
            if query.panel
            for sample in results[query]
            if PER_PROCESS_LABELS & sample["metric"].keys()
        ]
        assert per_process == []
        service_variable, breaker_variable = (q for q in queries if not q.panel)
        assert {s["metric"]["service_name"] for s in results[service_variable]} == {SERVICE}
        breakers = {
            s["metric"]["resilience_circuit_breaker_name"] for s in results[breaker_variable]
        }
        assert len(breakers) == 2  # the workload's two upstream services
        assert all(name.startswith("http://127.0.0.1:") for name in breakers)

        # With another service chosen, no panel shows anything of this one.
        other = _wait_for_data(prometheus, queries, "another-service", timeout=0)
        assert [q.where for q in queries if q is not service_variable and other[q]] == []

        # And the check bites: a query naming a metric we do not emit has no data.
        misnamed = Query("misnamed", "sum(rate(resilience_circuit_breaker_state_ratio[1m]))")
        assert _wait_for_data(prometheus, [misnamed], SERVICE, timeout=0)[misnamed] == []
    assert workload.result is not None
    assert workload.result.returncode == 0, workload.result.stderr
