"""What the collector/ tests share: its YAML files, its alerts and dashboard queries, promtool."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

__all__ = [
    "DASHBOARDS",
    "GENERATOR",
    "GRAFANA",
    "PROMETHEUS",
    "REPOSITORY",
    "RULE_FILES",
    "TEST_FILES",
    "Query",
    "alerts",
    "dashboard_queries",
    "dashboards",
    "load",
    "panels",
    "promtool",
    "variable_promql",
]


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


REPOSITORY = Path(__file__).resolve().parents[2]
PROMETHEUS = REPOSITORY / "collector" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.rules.yaml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.test.yaml"))
GRAFANA = REPOSITORY / "collector" / "grafana"
GENERATOR = GRAFANA / "generate.py"
DASHBOARDS = GRAFANA / "dashboards"


def alerts() -> dict[str, dict[str, Any]]:
    """Every alert rule of the rule files by name; an alert defined twice fails the test."""
    found: dict[str, dict[str, Any]] = {}
    for path in RULE_FILES:
        for group in load(path)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in found, f"{rule['alert']} defined twice"
                    found[rule["alert"]] = rule
    return found


@dataclass(frozen=True)
class Query:
    """One PromQL query of a dashboard, and where it is, for failure messages."""

    where: str
    expr: str
    panel: bool = True
    """False for the query behind a template variable."""


def dashboards() -> dict[str, dict[str, Any]]:
    """The committed dashboards, the JSON users load, by file name."""
    found = {path.name: json.loads(path.read_text("utf-8")) for path in DASHBOARDS.glob("*.json")}
    assert found, f"no dashboards in {DASHBOARDS}: run python {GENERATOR.relative_to(REPOSITORY)}"
    return found


def panels() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every panel, those of collapsed rows included, with where it is."""
    for name, dashboard in dashboards().items():
        for panel in dashboard["panels"]:
            yield f"{name}: {panel['title']!r}", panel
            for nested in panel.get("panels", []):  # panels of a collapsed row
                yield f"{name}: {nested['title']!r}", nested


def variable_promql(variable: Mapping[str, Any]) -> str | None:
    """The PromQL behind a query variable: label_values' metric, query_result's query."""
    query = variable["query"]
    text: str = query["query"] if isinstance(query, dict) else query
    if match := re.fullmatch(r"label_values\((.+),\s*\w+\)", text):
        return match.group(1)
    if match := re.fullmatch(r"query_result\((.+)\)", text):
        return match.group(1)
    return None


def dashboard_queries() -> list[Query]:
    """Every query of every dashboard: the panels' targets and the query variables."""
    found = [
        Query(f"{where} {target['refId']}", target["expr"])
        for where, panel in panels()
        for target in panel.get("targets", [])
    ]
    for name, dashboard in dashboards().items():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                promql = variable_promql(variable)
                assert promql is not None, f"{name}: variable {variable['name']} is not PromQL"
                where = f"{name}: variable ${variable['name']}"
                found.append(Query(where, promql, panel=False))
    return found
