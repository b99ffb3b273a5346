"""``python -m otel_resilience doctor``, run as a user runs it: a subprocess of a real venv.

Every case starts from :func:`instrumented_run.child_environment` (no ``OTEL_*`` variable of
the developer's shell) and sets only what it is about.

A library absent: the launcher decides through distribution metadata (its
``get_dist_dependency_conflicts`` asks ``importlib.metadata`` for the library's
distribution), not through ``import``, so a stub module that fails to import would test
nothing it looks at. The faithful case is a venv in which the library is not installed,
and the cheap way to have one is :func:`venv_without`: a new venv whose site-packages holds
a symbolic link to every entry of the dev venv's, except those the library's own ``RECORD``
lists (what ``pip uninstall`` would remove). It is made in about a tenth of a second, runs
the same code, and needs no index or network; the shared dev venv is left untouched.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Mapping
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

from instrumented_run import child_environment, run_instrumented

from otel_resilience.sdk.settings import INSTRUMENTATION_NAMES

SECRETS = ("hunter2", "s3cr3t", "t0ken")


def doctor(
    *arguments: str, env: Mapping[str, str] | None = None, python: Path | str = sys.executable
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "otel_resilience", "doctor", *arguments],
        env=child_environment(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def report(
    env: Mapping[str, str] | None = None, python: Path | str = sys.executable
) -> tuple[dict[str, Any], int]:
    """The ``--json`` report and the exit code; nothing may reach stderr."""
    result = doctor("--json", env=env, python=python)
    assert result.stderr == "", result.stderr
    return json.loads(result.stdout), result.returncode


def instrumentation(document: dict[str, Any], name: str, *, ours: bool) -> dict[str, Any]:
    (found,) = (
        item
        for item in document["instrumentations"]
        if item["name"] == name and item["ours"] is ours
    )
    return dict(found)


def setting(document: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = (item for item in document["settings"] if item["name"] == name)
    return dict(found)


def venv_without(library: str, directory: Path) -> Path:
    """The python of a venv with everything of this one installed but ``library``."""
    removed = {
        Path(str(path)).parts[0]
        for path in distribution(library).files or ()
        if not str(path).startswith("..")  # scripts in bin/ matter to nobody here
    }
    assert removed, f"{library} has no RECORD to go by"
    venv.EnvBuilder(symlinks=True).create(directory)
    (target,) = directory.glob("lib/python*/site-packages")
    for entry in Path(sysconfig.get_path("purelib")).iterdir():
        if entry.name not in removed:
            (target / entry.name).symlink_to(entry)
    return directory / "bin" / "python"


def test_in_the_dev_venv_ours_is_in_use_and_all_seven_instrumentations_are_active() -> None:
    document, code = report()
    assert code == 0
    assert document["problems"] == []
    assert set(document) >= {
        "schema",
        "version",
        "distro",
        "configurator",
        "sdk_disabled",
        "instrumentations",
        "exporters",
        "settings",
        "problems",
    }
    assert document["schema"] == 1
    for choice in (document["distro"], document["configurator"]):
        assert choice["in_use"] == "otel_resilience"
        assert choice["ours"] is True
        assert choice["requested"] is None
    ours = {item["name"]: item for item in document["instrumentations"] if item["ours"]}
    assert set(ours) == set(INSTRUMENTATION_NAMES)
    assert {item["status"] for item in ours.values()} == {"active"}
    # SQLite is in OTEL_RESILIENCE_DISABLED by default: spans and metrics, no breakers.
    assert {name for name, item in ours.items() if item["resilience"] is False} == {"sqlite3"}
    # The embedded default: no OTLP endpoint, so metrics on Prometheus and nothing else.
    assert document["exporters"] == {
        "traces": [],
        "metrics": [
            {
                "name": "prometheus",
                "target": "localhost:9464",
                "protocol": None,
                "headers_from": None,
            }
        ],
        "logs": [],
    }


def test_a_library_that_is_not_installed_leaves_its_instrumentations_inactive(
    tmp_path: Path,
) -> None:
    python = venv_without("redis", tmp_path / "venv")
    document, code = report(python=python)
    assert code == 0  # an absent library is no problem: nothing to instrument
    for ours in (True, False):
        redis = instrumentation(document, "redis", ours=ours)
        assert redis["status"] == "inactive"
        assert redis["reason"] == "library_absent"
    assert instrumentation(document, "redis", ours=True)["detail"] == (
        "library not installed (redis>=4.3)"
    )
    assert instrumentation(document, "requests", ours=True)["status"] == "active"
    text = doctor(python=python).stdout
    assert re.search(
        r"^  redis +ours +inactive: library not installed \(redis>=4\.3\)$", text, re.M
    )


def test_a_library_version_outside_the_supported_range_is_a_problem(tmp_path: Path) -> None:
    python = venv_without("redis", tmp_path / "venv")
    # What an installed redis 3.0.0 shows the launcher: its distribution's metadata.
    (site_packages,) = (tmp_path / "venv").glob("lib/python*/site-packages")
    old = site_packages / "redis-3.0.0.dist-info"
    old.mkdir()
    (old / "METADATA").write_text("Metadata-Version: 2.1\nName: redis\nVersion: 3.0.0\n")
    document, code = report(python=python)
    redis = instrumentation(document, "redis", ours=True)
    assert (redis["status"], redis["reason"]) == ("inactive", "library_version")
    assert code == 1
    assert document["problems"] == [
        "redis: installed redis 3.0.0 is outside what it instruments (redis>=4.3)"
    ]


def test_an_instrumentation_disabled_by_the_upstream_variable_is_inactive() -> None:
    document, code = report({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "redis"})
    assert code == 0
    for ours in (True, False):
        redis = instrumentation(document, "redis", ours=ours)
        assert (redis["status"], redis["reason"]) == ("inactive", "disabled")
    assert instrumentation(document, "pymysql", ours=True)["status"] == "active"
    text = doctor(env={"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "redis"}).stdout
    assert re.search(
        r"^  redis +ours +inactive: disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS$", text, re.M
    )


def test_a_name_the_upstream_variable_matches_nothing_by_is_a_problem() -> None:
    document, code = report({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "redis, Requests"})
    assert code == 1
    assert instrumentation(document, "requests", ours=True)["status"] == "active"
    (problem,) = document["problems"]
    assert problem.startswith("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS names Requests,")


def test_the_upstream_instrumentor_of_a_library_we_cover_is_left_out() -> None:
    document, _ = report()
    upstream = instrumentation(document, "requests", ours=False)
    assert upstream["entry_point"] == "opentelemetry.instrumentation.requests:RequestsInstrumentor"
    assert (upstream["status"], upstream["reason"]) == ("inactive", "covered_by_otel_resilience")
    text = doctor().stdout
    assert re.search(
        r"^  requests +upstream +inactive: left out, otel-resilience instruments requests itself$",
        text,
        re.M,
    )


def test_without_our_distro_the_upstream_instrumentor_loads_too_and_that_is_a_problem() -> None:
    document, code = report({"OTEL_PYTHON_DISTRO": "elsewhere"})
    assert code == 1
    assert document["distro"] == {
        "installed": ["otel_resilience"],
        "requested": "elsewhere",
        "in_use": None,
        "ours": False,
    }
    assert instrumentation(document, "requests", ours=False)["status"] == "active"
    problems = "\n".join(document["problems"])
    assert "OTEL_PYTHON_DISTRO='elsewhere' names no installed distro" in problems
    assert "requests is instrumented twice" in problems


def test_resilience_turned_off_keeps_the_instrumentation_active() -> None:
    document, code = report({"OTEL_RESILIENCE_DISABLED": "requests"})
    assert code == 0
    requests = instrumentation(document, "requests", ours=True)
    assert (requests["status"], requests["resilience"]) == ("active", False)
    assert instrumentation(document, "sqlite3", ours=True)["resilience"] is True  # replaced
    text = doctor(env={"OTEL_RESILIENCE_DISABLED": "requests"}).stdout
    assert re.search(r"^  requests +ours +active, resilience off: ", text, re.M)
    assert re.search(r"^  sqlite3 +ours +active$", text, re.M)


def test_each_setting_says_whether_it_comes_from_the_environment() -> None:
    document, _ = report(
        {"OTEL_RESILIENCE_RETRY_MAX_ATTEMPTS": "5", "OTEL_RESILIENCE_BREAKER_FAILURE_RATE": "25"}
    )
    assert setting(document, "OTEL_RESILIENCE_RETRY_MAX_ATTEMPTS") == {
        "name": "OTEL_RESILIENCE_RETRY_MAX_ATTEMPTS",
        "value": "5",
        "source": "environment",
    }
    assert setting(document, "OTEL_RESILIENCE_BREAKER_FAILURE_RATE")["value"] == "25%"
    defaults = {row["name"] for row in document["settings"] if row["source"] == "default"}
    assert len(defaults) == len(document["settings"]) - 2
    assert setting(document, "OTEL_RESILIENCE_DISABLED") == {
        "name": "OTEL_RESILIENCE_DISABLED",
        "value": "sqlite3",
        "source": "default",
    }


def test_a_value_that_contradicts_another_shows_the_value_in_use() -> None:
    document, code = report({"OTEL_RESILIENCE_RETRY_INITIAL_BACKOFF": "20"})
    assert code == 1
    assert setting(document, "OTEL_RESILIENCE_RETRY_INITIAL_BACKOFF") == {
        "name": "OTEL_RESILIENCE_RETRY_INITIAL_BACKOFF",
        "value": "0.1",
        "source": "default",
    }
    (problem,) = document["problems"]
    assert "exceeds OTEL_RESILIENCE_RETRY_MAX_BACKOFF" in problem


def test_an_invalid_value_is_a_problem_and_its_default_is_shown() -> None:
    env = {"OTEL_RESILIENCE_BREAKER_WINDOW_SIZE": "2.5"}
    document, code = report(env)
    assert code == 1
    (problem,) = document["problems"]
    assert problem.startswith("OTEL_RESILIENCE_BREAKER_WINDOW_SIZE='2.5' is invalid")
    assert setting(document, "OTEL_RESILIENCE_BREAKER_WINDOW_SIZE") == {
        "name": "OTEL_RESILIENCE_BREAKER_WINDOW_SIZE",
        "value": "100",
        "source": "default",
    }
    result = doctor(env=env)
    assert result.returncode == 1
    assert result.stderr == ""  # the warning is reported once, as a problem
    assert f"problems\n  - {problem}" in result.stdout


def test_no_credential_of_an_otlp_endpoint_or_its_headers_is_shown() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://doctor:hunter2@collector.example:4318?token=t0ken",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer s3cr3t",
    }
    document, code = report(env)
    assert code == 0
    for signal in ("traces", "metrics", "logs"):  # an endpoint makes otlp every default
        (exporter,) = document["exporters"][signal]
        assert exporter["name"] == "otlp"
        assert exporter["protocol"] == "http/protobuf"
        assert exporter["headers_from"] == "OTEL_EXPORTER_OTLP_HEADERS"
        assert "collector.example:4318" in exporter["target"]
    for arguments in (("--json",), ()):
        result = doctor(*arguments, env=env)
        output = result.stdout + result.stderr
        assert "collector.example" in output
        assert not [secret for secret in SECRETS if secret in output], output


def test_a_usage_error_exits_64() -> None:
    assert doctor("--bogus").returncode == 64


APP = "print('ran')\n"


def test_at_start_up_one_info_line_says_the_same_in_short() -> None:
    run = run_instrumented(
        APP,
        env={"OTEL_RESILIENCE_LOG_LEVEL": "INFO", "OTEL_RESILIENCE_LOG_FORMAT": "human"},
    ).check()
    (line,) = [
        line for line in run.stderr.splitlines() if "otel_resilience.sdk.configurator" in line
    ]
    assert " INFO " in line
    assert "distro otel_resilience, configurator otel_resilience" in line
    assert "active: httpx, " in line and "(resilience off: sqlite3)" in line
    assert "left out for ours: upstream httpx, " in line
    assert "exports: traces none, metrics prometheus localhost:9464, logs none" in line
    assert line.endswith("0 problems (python -m otel_resilience doctor)")


def test_below_info_there_is_no_start_up_line() -> None:
    run = run_instrumented(APP, env={"OTEL_RESILIENCE_LOG_FORMAT": "human"}).check()
    assert run.stdout == "ran\n"
    assert "otel_resilience.sdk.configurator" not in run.stderr
