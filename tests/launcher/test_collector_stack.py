"""The local stack in collector/, checked by the real tools: the compose file against the
compose specification, Prometheus's config with ``promtool``.

The checks that only read the files are in tests/unit/test_collector_stack.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from collector_files import promtool

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR = ROOT / "collector"
COMPOSE = COLLECTOR / "compose.yaml"


PROMETHEUS_CONFIG = COLLECTOR / "prometheus" / "prometheus.yml"


def test_compose_file_follows_the_compose_specification() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_passes_promtool() -> None:
    result = subprocess.run(
        [promtool(), "check", "config", "--syntax-only", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
