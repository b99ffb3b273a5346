"""What the collector/ tests share: reading its YAML files and finding promtool."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

__all__ = ["load", "promtool"]


def load(path: Path) -> Any:
    """A YAML file of collector/ as plain data."""
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def promtool() -> str:
    """The promtool binary; a test that needs it fails (never skips) when it is missing."""
    found = shutil.which("promtool") or (
        "/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None
    )
    if found is None:
        pytest.fail("promtool not found: install Debian's `prometheus` package (CI installs it)")
    return found
