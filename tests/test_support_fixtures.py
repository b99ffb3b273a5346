"""Tests of the test-support helpers against the real Prometheus and the real launcher.

If these fail, every end-to-end test built on the helpers is suspect, so they are kept
separate and cheap (one shared Prometheus for the query tests).
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from instrumented_run import (
    InstrumentedRun,
    child_environment,
    run_instrumented,
    running_instrumented,
)
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_server import (
    PrometheusError,
    PrometheusQueryError,
    PrometheusServer,
    free_tcp_port,
    sample_value,
)

# Keep the distro quiet and offline whatever state it is in: these tests are about the
# launcher plumbing, not about what the distro exports.
QUIET_OTEL = {
    "OTEL_SDK_DISABLED": "true",
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
}

GAUGE = "support_fixture_test_gauge"


class Endpoint:
    """An in-process /metrics endpoint with one gauge, served by prometheus_client."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.gauge = Gauge(GAUGE, "Gauge scraped by the helper tests.", registry=self.registry)
        self.gauge.set(42.5)
        # Port 0: the kernel picks, so there is no race with other tests for the port.
        self.server, self.thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.port: int = self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint()
    try:
        yield ep
    finally:
        ep.close()


@pytest.fixture(scope="module")
def prometheus(endpoint: Endpoint) -> Iterator[PrometheusServer]:
    # No skip when it is missing: `make test` installs it, and a missing component must fail.
    assert shutil.which("prometheus"), "prometheus is not installed: run `make test`"
    with PrometheusServer([f"127.0.0.1:{endpoint.port}"]) as prom:
        yield prom


# --------------------------------------------------------------------------- Prometheus


def test_free_tcp_port_is_bindable() -> None:
    port = free_tcp_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_for_query_sees_gauge(prometheus: PrometheusServer, endpoint: Endpoint) -> None:
    result = prometheus.wait_for_query(GAUGE, timeout=30)
    assert [sample_value(s) for s in result] == [42.5]
    assert result[0]["metric"]["job"] == "test"
    assert result[0]["metric"]["instance"] == f"127.0.0.1:{endpoint.port}"


def test_wait_for_query_predicate_sees_update(
    prometheus: PrometheusServer, endpoint: Endpoint
) -> None:
    prometheus.wait_for_query(GAUGE, timeout=30)
    endpoint.gauge.set(7)
    result = prometheus.wait_for_query(
        GAUGE, timeout=15, predicate=lambda r: sample_value(r[0]) == 7
    )
    assert sample_value(result[0]) == 7
    endpoint.gauge.set(42.5)


def test_targets_health_reports_up(prometheus: PrometheusServer, endpoint: Endpoint) -> None:
    prometheus.wait_for_query("up{job='test'} == 1", timeout=30)
    (target,) = prometheus.targets_health()
    assert target["health"] == "up"
    assert target["scrapeUrl"] == f"http://127.0.0.1:{endpoint.port}/metrics"


def test_bad_query_raises_prometheus_message(prometheus: PrometheusServer) -> None:
    with pytest.raises(PrometheusQueryError, match="parse error") as info:
        prometheus.query("sum(rate(")
    assert info.value.error_type == "bad_data"
    assert info.value.http_status == 400
    assert "sum(rate(" in str(info.value)
    # A syntax error can never heal, so waiting must not burn the whole timeout.
    with pytest.raises(PrometheusQueryError):
        prometheus.wait_for_query("sum(rate(", timeout=60)


def test_wait_for_query_timeout_explains(prometheus: PrometheusServer, endpoint: Endpoint) -> None:
    prometheus.wait_for_query(GAUGE, timeout=30)  # targets are scraped by now
    with pytest.raises(AssertionError) as info:
        prometheus.wait_for_query("no_such_metric_anywhere", timeout=1.0)
    message = str(info.value)
    assert "no_such_metric_anywhere" in message
    assert "Last result: []" in message
    assert f"http://127.0.0.1:{endpoint.port}/metrics: health=up" in message


def test_start_failure_shows_prometheus_log(tmp_path: Path) -> None:
    rules = tmp_path / "broken.rules.yml"
    rules.write_text("groups:\n  - name: x\n    rules:\n      - record: a\n        expr: 'sum('\n")
    server = PrometheusServer([], rule_files=[rules])
    with pytest.raises(
        PrometheusError, match=r"(?s)exited with code 1.*broken\.rules\.yml.*parse error"
    ):
        server.start()
    # Failed start cleans up after itself.
    with pytest.raises(PrometheusError, match="not running"):
        _ = server.url


def test_rejects_malformed_target() -> None:
    with pytest.raises(ValueError, match="host:port"):
        PrometheusServer(["localhost"])


# --------------------------------------------------------------------------- launcher

ENV_DUMP = """\
import json, os, sys
keys = sorted(k for k in os.environ if k.startswith(("OTEL_", "SUPPORT_TEST_")))
print(json.dumps({
    "env": {k: os.environ[k] for k in keys},
    "unbuffered": os.environ.get("PYTHONUNBUFFERED"),
    "argv": sys.argv[1:],
    "sitecustomize": getattr(sys.modules.get("sitecustomize"), "__file__", None),
}))
"""


def test_otel_vars_do_not_leak_but_explicit_env_arrives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "leaked-from-parent")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("SUPPORT_TEST_PARENT", "inherited")

    run = run_instrumented(
        ENV_DUMP,
        env={**QUIET_OTEL, "OTEL_RESOURCE_ATTRIBUTES": "k=v", "SUPPORT_TEST_CHILD": "given"},
        args=["--flag", "value with spaces"],
    ).check()

    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["env"] == {
        **QUIET_OTEL,
        "OTEL_RESOURCE_ATTRIBUTES": "k=v",
        "SUPPORT_TEST_CHILD": "given",
        "SUPPORT_TEST_PARENT": "inherited",
    }
    assert seen["unbuffered"] == "1"
    assert seen["argv"] == ["--flag", "value with spaces"]
    # Proof that the real launcher ran: it injects its own sitecustomize.
    assert "auto_instrumentation" in seen["sitecustomize"]
    assert run.duration_seconds > 0


def test_child_environment_env_overrides() -> None:
    env = child_environment({"PYTHONUNBUFFERED": "0", "OTEL_X": "1"})
    assert env["PYTHONUNBUFFERED"] == "0"
    assert env["OTEL_X"] == "1"


def test_exit_code_and_output_come_back() -> None:
    src = "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\nsys.exit(3)\n"
    run = run_instrumented(src, env=QUIET_OTEL)
    assert run.returncode == 3
    assert run.stdout == "to stdout\n"
    assert "to stderr" in run.stderr
    with pytest.raises(AssertionError, match=r"(?s)exited with 3.*to stdout.*to stderr"):
        run.check()
    assert InstrumentedRun(0, "", "", 0.0).check().returncode == 0


def test_script_path_resolved_against_cwd(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text("import os\nprint(os.getcwd())\n")
    run = run_instrumented("hello.py", cwd=tmp_path, env=QUIET_OTEL).check()
    assert run.stdout.strip() == str(tmp_path)
    with pytest.raises(FileNotFoundError):
        run_instrumented(tmp_path / "missing.py")


def test_timeout_kills_child_and_shows_output() -> None:
    src = "import time\nprint('started', flush=True)\ntime.sleep(60)\n"
    with pytest.raises(AssertionError, match=r"(?s)still running after 2 s.*started"):
        run_instrumented(src, env=QUIET_OTEL, timeout=2)


def test_running_instrumented_talks_to_child() -> None:
    src = textwrap.dedent(
        """\
        import sys
        print("ready", flush=True)
        line = sys.stdin.readline()
        print("got:" + line.strip())
        sys.stdin.readline()  # EOF from stop()
        print("bye")
        """
    )
    with running_instrumented(src, env=QUIET_OTEL) as proc:
        proc.wait_for_output(r"^ready$", timeout=15)
        proc.send_line("hello")
        assert proc.wait_for_output(r"got:(\w+)", timeout=5).group(1) == "hello"
    assert proc.result is not None
    assert proc.result.returncode == 0, proc.result.stderr
    assert proc.result.stdout.splitlines() == ["ready", "got:hello", "bye"]


def test_running_instrumented_terminates_stubborn_child() -> None:
    src = "import time\nprint('serving', flush=True)\nwhile True:\n    time.sleep(1)\n"
    with running_instrumented(src, env=QUIET_OTEL, eof_grace=0.1) as proc:
        proc.wait_for_output("serving", timeout=15)
    assert proc.result is not None
    assert proc.result.returncode == -signal.SIGTERM


def test_wait_for_output_fails_fast_when_child_dies() -> None:
    src = "import sys\nsys.exit('boom')\n"
    with (
        running_instrumented(src, env=QUIET_OTEL) as proc,
        pytest.raises(AssertionError, match=r"(?s)child exited with 1.*boom"),
    ):
        proc.wait_for_output("never printed", timeout=30)


# --------------------------------------------------------------------------- both together

METRICS_CHILD = textwrap.dedent(
    """\
    import sys
    from prometheus_client import CollectorRegistry, Counter, start_http_server
    registry = CollectorRegistry()
    Counter("support_child_events", "Events.", registry=registry).inc(3)
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    print("port", server.server_address[1], flush=True)
    sys.stdin.readline()
    """
)


def test_prometheus_scrapes_instrumented_child() -> None:
    with running_instrumented(METRICS_CHILD, env=QUIET_OTEL) as proc:
        port = int(proc.wait_for_output(r"^port (\d+)$", timeout=15).group(1))
        with PrometheusServer([f"127.0.0.1:{port}"]) as prom:
            result = prom.wait_for_query("support_child_events_total", timeout=30)
            assert sample_value(result[0]) == 3
    assert proc.result is not None
    assert proc.result.returncode == 0, proc.result.stderr
