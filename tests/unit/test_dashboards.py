"""The Grafana dashboards as committed: provisioned, with variables, units and rate intervals.

Whether they are the generator's output, their PromQL is valid and every panel shows data
from a real workload is checked in tests/launcher/test_dashboards.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from collector_files import (
    GRAFANA,
    dashboard_queries,
    dashboards,
    load,
    panels,
    variable_promql,
)

ROOT = Path(__file__).resolve().parents[2]
PROVIDER = GRAFANA / "provisioning" / "dashboards" / "otel-resilience.yaml"


VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def test_grafana_provisions_the_dashboards_from_the_mounted_directory() -> None:
    config = load(PROVIDER)
    (provider,) = config["providers"]
    assert config["apiVersion"] == 1
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    uids = [dashboard["uid"] for dashboard in dashboards().values()]
    assert len(set(uids)) == len(uids)
    assert "Resilience overview" in {dashboard["title"] for dashboard in dashboards().values()}


def test_the_dashboard_lets_users_choose_data_source_service_and_breaker() -> None:
    dashboard = dashboards()["resilience-overview.json"]
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variable_promql(variables["service"]) == "target_info"
    assert "resilience_circuit_breaker_name" in variables["breaker"]["regex"]
    for name in ("service", "breaker"):
        assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert variables[name]["multi"] and variables[name]["includeAll"]
        assert variables[name]["allValue"] == ".*"
    used = {
        match.group(1) or match.group(2)
        for query in dashboard_queries()
        for match in VARIABLE.finditer(query.expr)
    }
    assert used <= {*variables, "__rate_interval"}


def test_every_panel_has_a_unit_a_description_and_the_chosen_data_source() -> None:
    problems = []
    for where, panel in panels():
        if panel["type"] == "row":
            continue
        if not panel.get("description", "").strip():
            problems.append(f"{where}: no description")
        if not panel["fieldConfig"]["defaults"].get("unit"):
            problems.append(f"{where}: no unit")
        sources = [panel["datasource"], *(target["datasource"] for target in panel["targets"])]
        if any(source != {"type": "prometheus", "uid": "${datasource}"} for source in sources):
            problems.append(f"{where}: not on the $datasource variable")
        if not panel["targets"]:
            problems.append(f"{where}: no query")
    assert problems == []


def test_every_rate_uses_grafanas_rate_interval() -> None:
    """``$__rate_interval`` is never shorter than four scrapes, whatever the zoom."""
    problems = []
    for query in dashboard_queries():
        windows = re.findall(r"\[([^\]]*)\]", query.expr)
        if any(window != "$__rate_interval" for window in windows):
            problems.append(f"{query.where}: {windows}")
    assert problems == []
