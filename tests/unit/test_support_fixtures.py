"""Tests of the test-support helpers that need neither Prometheus nor a child process.

The helpers against the real Prometheus are in tests/integration/test_support_fixtures.py,
against the real launcher in tests/launcher/test_support_fixtures.py.
"""

from __future__ import annotations

import pytest
from instrumented_run import (
    child_environment,
)
from prometheus_server import (
    PrometheusServer,
)


def test_rejects_malformed_target() -> None:
    with pytest.raises(ValueError, match="host:port"):
        PrometheusServer(["localhost"])


def test_child_environment_env_overrides() -> None:
    env = child_environment({"PYTHONUNBUFFERED": "0", "OTEL_X": "1"})
    assert env["PYTHONUNBUFFERED"] == "0"
    assert env["OTEL_X"] == "1"
