"""The Prometheus alert rules in collector/prometheus: valid, unit-tested, and about real series.

``promtool`` (Debian's ``prometheus`` package) checks the rule files and runs their unit
tests; these tests fail, never skip, without it. The last test runs a program under the
launcher that makes every kind of event happen, reads its own Prometheus endpoint, and checks
that every series selector and grouping label of every alert matches what the exporter
renders, so a renamed metric or label cannot leave an alert silently watching nothing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from collector_files import PROMETHEUS, RULE_FILES, TEST_FILES, alerts, promtool
from instrumented_run import run_instrumented
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


SCRAPE_LABELS = {"job", "instance"}
"""Added by Prometheus when it scrapes (or by the collector's exporter), not by the program."""


def run_promtool(*arguments: str) -> str:
    result = subprocess.run(
        [promtool(), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=ROOT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_the_rule_files_pass_promtool_check() -> None:
    assert RULE_FILES, f"no *.rules.yaml in {PROMETHEUS / 'rules'}"
    output = run_promtool("check", "rules", *map(str, RULE_FILES))
    assert output.count("SUCCESS") == len(RULE_FILES), output


def test_the_rules_unit_tests_pass() -> None:
    assert TEST_FILES, f"no *.test.yaml in {PROMETHEUS / 'tests'}"
    output = run_promtool("test", "rules", *map(str, TEST_FILES))
    assert output.count("SUCCESS") == len(TEST_FILES), output


# A program that makes every series the alerts watch appear: a breaker that opens, rejects,
# probes and closes; retries that run out and that the retry budget refuses; HTTP durations;
# and log records dropped by a one-record queue. It prints its own Prometheus endpoint's page.
WORKLOAD = """
import logging
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from otel_resilience import BreakerPolicy, default_registry, installed_telemetry


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(503 if self.path == "/fail" else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


def serve():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


telemetry = installed_telemetry()
tripping, unbreakable = serve(), serve()
default_registry().override(
    unbreakable,
    BreakerPolicy(consecutive_failures=None, failure_rate_threshold=None,
                  slow_call_rate_threshold=None),
)
for _ in range(6):
    try:
        requests.get(tripping + "/fail", timeout=5)
    except requests.exceptions.ConnectionError:
        pass
time.sleep(0.3)
requests.get(tripping + "/ok", timeout=5)
for _ in range(15):
    requests.get(unbreakable + "/fail", timeout=5)
for number in range(100):
    logging.getLogger("workload").warning("record %d", number)
with urllib.request.urlopen(telemetry.prometheus_url, timeout=5) as response:
    print(response.read().decode())
"""

WORKLOAD_ENVIRONMENT = {
    "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
    "OTEL_EXPORTER_PROMETHEUS_PORT": "0",
    "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "3",
    "OTEL_RESILIENCE_BREAKER_RECOVERY_TIMEOUT": "0.2",
    "OTEL_RESILIENCE_BREAKER_HALF_OPEN_MAX_CALLS": "1",
    "OTEL_RESILIENCE_RETRY_INITIAL_BACKOFF": "0.001",
    "OTEL_RESILIENCE_RETRY_MAX_BACKOFF": "0.001",
    "OTEL_RESILIENCE_LOG_FORMAT": "json",
    "OTEL_RESILIENCE_LOG_QUEUE_SIZE": "1",
}

SELECTOR = re.compile(r"\b([a-zA-Z_:][\w:]*)(\{[^}]*\})?(\[[^\]]+\])?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def selectors(expression: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The series selectors of a PromQL expression: metric name and label matchers."""
    found = []
    for match in SELECTOR.finditer(expression):
        name, matchers, range_ = match.groups()
        if matchers or range_:
            found.append((name, MATCHER.findall(matchers or "")))
    return found


def matches(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for label, operator, value in matchers:
        actual = labels.get(label, "")
        if operator == "=" and actual != value:
            return False
        if operator == "!=" and actual == value:
            return False
        if operator == "=~" and not re.fullmatch(value, actual):
            return False
        if operator == "!~" and re.fullmatch(value, actual):
            return False
    return True


def test_every_alert_watches_series_the_exporter_renders() -> None:
    page = run_instrumented(WORKLOAD, env=WORKLOAD_ENVIRONMENT, timeout=90).check().stdout
    samples = [
        (sample.name, dict(sample.labels))
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    ]
    assert samples, page
    for name, rule in alerts().items():
        chosen = selectors(rule["expr"])
        assert chosen, f"{name}: no series selector found in {rule['expr']}"
        label_names: set[str] = set()
        for metric, matchers in chosen:
            found = [
                labels
                for sample_name, labels in samples
                if sample_name == metric and matches(labels, matchers)
            ]
            assert found, f"{name}: nothing the exporter serves matches {metric} {matchers}"
            label_names |= {label for labels in found for label in labels}
        for grouping in re.findall(r"\bby\s*\(([^)]*)\)", rule["expr"]):
            grouped = {label.strip() for label in grouping.split(",")} - SCRAPE_LABELS
            assert grouped <= label_names, f"{name}: no such labels {grouped - label_names}"
