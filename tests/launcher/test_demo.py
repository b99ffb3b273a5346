"""The demo a newcomer runs first: its live view, its database side, its pointers.

``make demo`` must work the first time on any machine, so these tests run it under the real
launcher with the same environment the Makefile sets: the live view redrawn in place (as on
a terminal), plain lines otherwise, PostgreSQL when ``--dsn`` is given, and a summary that
says where the metrics and the trace-correlated logs are. The end-to-end tests
(``test_end_to_end.py``) check what it exports.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psycopg
from demo_environment import make_demo_environment
from instrumented_run import run_instrumented

REPOSITORY = Path(__file__).resolve().parents[2]
DEMO = REPOSITORY / "examples" / "demo.py"
QUICK = ["--calls", "30", "--interval", "0.05"]
POSTGRESQL = "host=127.0.0.1 dbname=test user=postgres"


def test_the_live_view_redraws_in_place_and_logs_go_to_the_file(tmp_path: Path) -> None:
    log_file = tmp_path / "demo.log"
    run = run_instrumented(
        DEMO, args=[*QUICK, "--view", "live"], env=make_demo_environment(log_file), timeout=90
    ).check()
    board_lines = run.stdout.split("What happened", 1)[0]
    assert re.search(r"\x1b\[\d+F", board_lines), "the board never moved the cursor up"
    assert board_lines.count("otel-resilience demo") > 10  # one redraw per call, at least
    assert "closed -> open" in run.stdout  # the summary lists every transition
    # Nothing but the board reached the terminal: the log records went to the file ...
    assert run.stderr == ""
    logged = log_file.read_text()
    calls = [line for line in logged.splitlines() if re.search(r" demo +call \d+:", line)]
    assert len(calls) == 30
    assert all(re.search(r"\[trace=[0-9a-f]{8} span=[0-9a-f]{8}\]", line) for line in calls)
    # ... and the summary says where, with the last few lines.
    assert f"logs, each with its trace id: {log_file}" in run.stdout


def test_without_a_terminal_the_view_prints_plain_lines(tmp_path: Path) -> None:
    run = run_instrumented(
        DEMO, args=QUICK, env=make_demo_environment(tmp_path / "demo.log"), timeout=90
    ).check()
    assert "\x1b" not in run.stdout
    assert re.search(r"^\[ *\d+\.\d+s\] call \d+/30: ", run.stdout, re.MULTILINE)
    assert re.search(r"^  breaker http://127\.0\.0\.1:\d+: closed -> open ", run.stdout, re.M)
    assert re.search(r"^  breaker sqlite:///\S+: closed -> open ", run.stdout, re.M)
    assert "-- call 4: the inventory service is down" in run.stdout
    assert "metrics: http://127.0.0.1:" in run.stdout
    assert "docker compose -f collector/compose.yaml up" in run.stdout
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317" in run.stdout


def test_with_a_dsn_the_answers_go_to_postgresql_which_gets_its_own_breaker(
    tmp_path: Path,
) -> None:
    run = run_instrumented(
        DEMO,
        args=["--calls", "30", "--interval", "0.1", "--dsn", POSTGRESQL],
        env=make_demo_environment(tmp_path / "demo.log"),
        timeout=90,
    ).check()
    (table,) = re.findall(r"30 calls, counted in PostgreSQL table (demo_calls_\d+):", run.stdout)
    # The maintenance job's lock makes writes hit the statement timeout: a failure that
    # opens the database's breaker, which closes again once the lock is gone.
    assert "breaker postgresql://127.0.0.1:5432/test: closed -> open" in run.stdout
    assert re.search(
        r"breaker postgresql://127\.0\.0\.1:5432/test: closed; .* rejected", run.stdout
    )
    with psycopg.connect(POSTGRESQL, connect_timeout=5) as connection:
        row = connection.execute("SELECT to_regclass(%s) IS NULL", (table,)).fetchone()
    assert row == (True,), "the demo left its table behind"


def test_the_status_endpoint_is_pointed_at_when_health_is_enabled(tmp_path: Path) -> None:
    environment = make_demo_environment(tmp_path / "demo.log")
    environment["OTEL_RESILIENCE_HEALTH_ENABLED"] = "true"
    run = run_instrumented(DEMO, args=["--calls", "2"], env=environment, timeout=90).check()
    (metrics,) = re.findall(r"metrics: (http://127\.0\.0\.1:\d+)/metrics", run.stdout)
    assert f"status: {metrics}/status" in run.stdout


def test_the_demo_says_how_to_run_it_without_the_launcher() -> None:
    run = subprocess.run(
        [sys.executable, str(DEMO), "--calls", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert "run this under `opentelemetry-instrument`" in run.stdout


def test_help_and_duration_work(tmp_path: Path) -> None:
    helped = subprocess.run(
        [sys.executable, str(DEMO), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert helped.returncode == 0
    for flag in ("--calls", "--duration", "--interval", "--dsn", "--linger", "--view"):
        assert flag in helped.stdout

    run = run_instrumented(
        DEMO,
        args=["--duration", "1", "--interval", "0.05"],
        env=make_demo_environment(tmp_path / "demo.log"),
        timeout=90,
    ).check()
    (calls,) = re.findall(r"^  (\d+) calls, counted in", run.stdout, re.MULTILINE)
    assert 1 <= int(calls) < 80, "a short duration makes fewer calls than the default run"
