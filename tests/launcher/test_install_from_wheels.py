"""Installed as users install it: wheels, a fresh virtual environment, outside the repository.

Every distribution is built into a wheel (``pip wheel``), and a new venv gets
``otel-resilience`` with only its runtime dependencies plus the libraries a small program
uses. The program runs from a directory outside the repository, under the venv's own
``opentelemetry-instrument``, against a real HTTP server and the real Redis: its calls must
get spans and breakers with no further step. Then redis-py is uninstalled, and its adapter
must stay silent while everything else goes on working.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_test_server import ScriptedHttpServer
from instrumented_run import child_environment
from otlp_receiver import OtlpReceiver

REPOSITORY = Path(__file__).resolve().parents[2]
CONSTRAINTS = REPOSITORY / "requirements" / "constraints.txt"

APP = """\
import sys

import redis
import requests

response = requests.get(sys.argv[1], timeout=5)
client = redis.Redis(host="127.0.0.1", port=6379)
client.set("otel-resilience-install-test", "1")
print("status", response.status_code, "redis", client.get("otel-resilience-install-test"))
client.delete("otel-resilience-install-test")
"""

APP_WITHOUT_REDIS = """\
import importlib.util
import sys

import requests

assert importlib.util.find_spec("redis") is None
print("status", requests.get(sys.argv[1], timeout=5).status_code)
"""


def _pip(python: Path, *arguments: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet", *arguments],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A venv with otel-resilience installed from freshly built wheels; its bin/ folder."""
    root = tmp_path_factory.mktemp("install")
    wheels = root / "wheels"
    projects = [REPOSITORY, *sorted((REPOSITORY / "instrumentations").glob("*/"))]
    _pip(
        Path(sys.executable),
        "wheel",
        "--no-deps",
        "--wheel-dir",
        str(wheels),
        *(str(project) for project in projects if (project / "pyproject.toml").exists()),
    )
    environment = root / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    # Only the wheels of this repository come from the folder; everything else from the
    # package index, within the ranges the wheels declare (the constraints pin them).
    _pip(
        python,
        "install",
        "--find-links",
        str(wheels),
        "-c",
        str(CONSTRAINTS),
        "otel-resilience",
        "requests",
        "redis",
    )
    yield environment / "bin"


def _doctor(bin_folder: Path, cwd: Path) -> dict[str, str]:
    """``python -m otel_resilience doctor --json`` in the venv: each of ours and its status."""
    done = subprocess.run(
        [str(bin_folder / "python"), "-m", "otel_resilience", "doctor", "--json"],
        cwd=cwd,
        env={**child_environment(), "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(done.stdout)
    assert report["distro"]["in_use"] == "otel_resilience", report["distro"]
    return {
        item["name"]: item["status"] + (f": {item['reason']}" if item["reason"] else "")
        for item in report["instrumentations"]
        if item["ours"]
    }


def _run(bin_folder: Path, script: str, cwd: Path, *arguments: str, **env: str) -> str:
    """Run ``script`` from ``cwd`` under the venv's launcher; its output, stdout and stderr."""
    program = cwd / "app.py"
    program.write_text(script)
    environment = child_environment(env)
    environment.pop("PYTHONPATH", None)  # nothing of the repository on sys.path
    environment["PATH"] = f"{bin_folder}{os.pathsep}{environment.get('PATH', '')}"
    command = [str(bin_folder / "opentelemetry-instrument"), str(bin_folder / "python")]
    done = subprocess.run(
        [*command, str(program), *arguments],
        check=False,  # the output goes into the assertion's message
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_one_install_instruments_every_library_the_program_uses(
    installed: Path,
    tmp_path: Path,
    http_server: ScriptedHttpServer,
    otlp_receiver: OtlpReceiver,
) -> None:
    output = _run(
        installed,
        APP,
        tmp_path,
        http_server.url("/ok"),
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.grpc_endpoint,
        OTEL_SERVICE_NAME="installed-app",
    )
    assert "status 200 redis b'1'" in output
    spans = otlp_receiver.wait_for_spans(count=4)
    scopes = {span.scope_name for span in spans}
    assert "otel_resilience.instrumentation.requests" in scopes
    assert "otel_resilience.instrumentation.redis" in scopes
    calls = otlp_receiver.wait_for_metric("resilience.circuit_breaker.calls")
    breakers = {p.attributes.get("resilience.circuit_breaker.name") for p in calls.data_points}
    assert f"http://127.0.0.1:{http_server.port}" in breakers
    assert "redis://127.0.0.1:6379/0" in breakers
    assert "Traceback" not in output
    statuses = _doctor(installed, tmp_path)
    assert statuses["requests"] == statuses["redis"] == "active"
    assert statuses["httpx"].startswith("inactive"), statuses  # httpx is not installed


def test_a_program_that_imports_no_library_pays_for_none(installed: Path, tmp_path: Path) -> None:
    """Each instrumentation loads when its library is imported, not at start-up."""
    output = _run(
        installed,
        "import sys\n"
        "print('imported:', sorted(m for m in ('requests', 'redis') if m in sys.modules))\n",
        tmp_path,
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    assert "imported: []" in output


def test_an_adapter_whose_library_is_absent_stays_silent(
    installed: Path, tmp_path: Path, http_server: ScriptedHttpServer
) -> None:
    _pip(installed / "python", "uninstall", "--yes", "redis")
    try:
        output = _run(
            installed,
            APP_WITHOUT_REDIS,
            tmp_path,
            http_server.url("/ok"),
            OTEL_TRACES_EXPORTER="console",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
        statuses = _doctor(installed, tmp_path)
    finally:
        _pip(installed / "python", "install", "-c", str(CONSTRAINTS), "redis")
    assert statuses["redis"].startswith("inactive"), statuses
    assert statuses["redis"] == "inactive: library_absent", statuses
    assert "status 200" in output
    assert '"name": "GET"' in output  # requests is still instrumented
    for noise in ("redis", "DependencyConflict", "Traceback", "WARNING", "ERROR"):
        assert noise not in output.replace("otel-resilience-instrumentation", ""), output
