"""The Prometheus alert rules in collector/prometheus, read as files: covered, labelled, explained.

What needs ``promtool`` or a program under the launcher is in tests/launcher/test_alert_rules.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from collector_files import RULE_FILES, TEST_FILES, alerts, load

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR_README = ROOT / "collector" / "README.md"

SEVERITIES = {"critical", "warning", "info"}
ANNOTATIONS = {"summary", "description", "runbook", "runbook_url"}


def test_the_unit_tests_cover_every_rule_file_and_alert_firing_and_quiet() -> None:
    tested_files: set[Path] = set()
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        document = load(path)
        tested_files |= {(path.parent / name).resolve() for name in document["rule_files"]}
        for test in document["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert tested_files == {path.resolve() for path in RULE_FILES}
    defined = set(alerts())
    assert defined - firing == set(), "alerts never tested firing"
    assert defined - quiet == set(), "alerts never tested staying quiet"
    assert (firing | quiet) - defined == set(), "tests of alerts that do not exist"


def readme_anchors() -> set[str]:
    """GitHub's anchors for the headings of collector/README.md."""
    anchors = set()
    for line in COLLECTOR_README.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"#+\s+(.*)", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def test_every_alert_has_a_severity_and_says_what_happened_and_what_to_do() -> None:
    anchors = readme_anchors()
    for name, rule in alerts().items():
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert set(annotations) >= ANNOTATIONS, name
        assert all(annotations[key].strip() for key in ANNOTATIONS), name
        document, _, anchor = annotations["runbook_url"].partition("#")
        assert document == "collector/README.md", name
        assert anchor in anchors, f"{name}: no heading for #{anchor} in {COLLECTOR_README}"


def test_every_alert_aggregates_the_processes_of_a_service() -> None:
    for name, rule in alerts().items():
        groupings = re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", rule["expr"])
        assert groupings, f"{name} does not aggregate"
        for grouping in groupings:
            labels = {label.strip() for label in grouping.split(",")}
            assert "job" in labels, f"{name}: group by job (the service)"
            assert "instance" not in labels, f"{name}: one series per process"
