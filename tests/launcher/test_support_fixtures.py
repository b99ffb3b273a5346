"""Tests of the test-support helpers against the real Prometheus and the real launcher.

If these fail, every end-to-end test built on the helpers is suspect, so they are kept
separate and cheap (one shared Prometheus for the query tests).
"""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

import pytest
from instrumented_run import (
    InstrumentedRun,
    run_instrumented,
    running_instrumented,
)
from prometheus_server import (
    PrometheusServer,
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
