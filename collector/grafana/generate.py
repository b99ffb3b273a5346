"""Generate the Grafana dashboards in ``collector/grafana/dashboards/`` from code.

The JSON files are committed, so Grafana's file provider (see
``provisioning/dashboards/otel-resilience.yaml``) loads them with no build step, and they
are written by this script only, so a change is reviewed here, as code, and the tests
check that the committed files are exactly what it writes::

    python collector/grafana/generate.py          # rewrite the JSON files
    python collector/grafana/generate.py --check  # exit 1 if they differ (CI, tests)

Every query uses the names the OpenTelemetry Prometheus exporter gives our instruments
(README, "Telemetry names"): dots become underscores, counters gain ``_total``, histograms
in seconds become ``_seconds_bucket``/``_count``. tests/launcher/test_dashboards.py runs each query
against a real Prometheus scraping a real workload, so a name we do not emit fails there.

Choices every panel follows:

* **Processes are summed away.** Every query aggregates with ``sum by``/``max by`` the
  labels the panel is about (breaker, endpoint, outcome), never ``instance`` or
  ``service_instance_id``, so a service of twenty pre-fork workers shows one line per
  breaker, not twenty.
* **Service.** The exporter puts resource attributes (``service.name``,
  ``service.instance.id``) on one ``target_info`` series per process, not on every
  series, and ``job``/``instance`` identify the process: the scrape job and target when
  Prometheus scrapes the program, ``service.namespace/service.name`` and
  ``service.instance.id`` when the collector's Prometheus exporter (scraped with
  ``honor_labels``) or remote writer relays them. So the ``service`` variable lists
  ``label_values(target_info, service_name)`` and each query keeps only the processes of
  the chosen services by joining ``on (job, instance)`` with ``target_info``, which works
  in both set-ups; a ``job`` variable would only be right behind the collector.
* **Rates** use ``$__rate_interval``; every panel has a unit and a description.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["DASHBOARDS_DIR", "dashboards", "main", "render"]

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
"""Where the committed JSON files live (mounted at /var/lib/grafana/dashboards)."""

Json = dict[str, Any]

DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39  # Grafana 11.0; later 11.x releases migrate it on load

# Metric and label names exactly as the Prometheus exporter renders them.
BREAKER_STATE = "resilience_circuit_breaker_state"
BREAKER_CALLS = "resilience_circuit_breaker_calls_total"
BREAKER_SLOW_CALLS = "resilience_circuit_breaker_slow_calls_total"
BREAKER_TRANSITIONS = "resilience_circuit_breaker_transitions_total"
RETRY_ATTEMPTS = "resilience_retry_attempts_total"
HTTP_DURATION = "http_client_request_duration_seconds"
DB_DURATION = "db_client_operation_duration_seconds"
LOG_RECORDS_DROPPED = "resilience_log_records_dropped_total"

BREAKER = "resilience_circuit_breaker_name"
STATE = "resilience_circuit_breaker_state"
OUTCOME = "resilience_call_outcome"
RETRY_TARGET = "resilience_retry_target"
RETRY_OUTCOME = "resilience_retry_outcome"
HTTP_ENDPOINT = ("url_scheme", "server_address", "server_port")
DB_ENDPOINT = ("db_system_name", "server_address", "server_port", "db_namespace")
HTTP_LEGEND = "{{url_scheme}}://{{server_address}}:{{server_port}}"
DB_LEGEND = "{{db_system_name}} {{server_address}}:{{server_port}} {{db_namespace}}"

ON_BREAKERS = f'{BREAKER}=~"$breaker"'
ON_RETRY_TARGETS = f'{RETRY_TARGET}=~"$breaker"'

# The state timeline shows one number per breaker; the worst state of any process wins.
STATE_CODES = (
    ("closed", 0, "green"),
    ("disabled", 1, "blue"),
    ("half_open", 2, "yellow"),
    ("open", 3, "red"),
    ("forced_open", 4, "purple"),
)

PERCENTILES = (0.5, 0.95, 0.99)


# --- PromQL ----------------------------------------------------------------------------------


def of_service(vector: str, keep: Sequence[str] = ()) -> str:
    """``vector`` restricted to the processes of the chosen services (see the docstring).

    ``keep`` copies resource labels of ``target_info`` (e.g. ``service_name``) onto the
    result, for panels that show one line per service.
    """
    labels = ", ".join(keep)
    info_labels = ", ".join(("job", "instance", *keep))
    return (
        f"{vector} * on (job, instance) group_left ({labels}) "
        f'group by ({info_labels}) (target_info{{service_name=~"$service"}})'
    )


def selector(metric: str, *matchers: str) -> str:
    return f"{metric}{{{', '.join(matchers)}}}" if matchers else metric


def equals(label: str, value: str) -> str:
    return f'{label}="{value}"'


def legend(*labels: str) -> str:
    """A legend naming the series by ``labels``: ``{{label}}`` each."""
    return " ".join("{{" + label + "}}" for label in labels)


def rate(metric: str, *matchers: str) -> str:
    return f"rate({selector(metric, *matchers)}[$__rate_interval])"


def sum_by(labels: Iterable[str], vector: str) -> str:
    return f"sum by ({', '.join(labels)}) ({vector})"


def share(labels: Sequence[str], part: str, whole: str) -> str:
    """``part / whole`` per ``labels``, 0 (not "no data") where ``part`` has no series."""
    part_sum, whole_sum = sum_by(labels, part), sum_by(labels, whole)
    return f"({part_sum} or 0 * {whole_sum}) / {whole_sum}"


def quantile(q: float, labels: Sequence[str], bucket_rate: str) -> str:
    return f"histogram_quantile({q}, {sum_by(('le', *labels), bucket_rate)})"


# --- panels ----------------------------------------------------------------------------------


def target(expr: str, legend_format: str, ref_id: str = "A") -> Json:
    return {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend_format,
        "range": True,
        "refId": ref_id,
    }


def timeseries(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Json],
    *,
    width: int = 12,
    stack: bool = False,
    bars: bool = False,
    max_value: float | None = None,
) -> Json:
    defaults: Json = {
        "unit": unit,
        "min": 0,
        "color": {"mode": "palette-classic"},
        "custom": {
            "drawStyle": "bars" if bars else "line",
            "lineWidth": 1,
            "fillOpacity": 80 if bars else 10,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "axisSoftMin": 0,
        },
    }
    if max_value is not None:
        defaults["max"] = max_value
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": list(targets),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": ["mean", "max", "lastNotNull"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "gridPos": {"w": width, "h": 8},
    }


def stat(title: str, description: str, unit: str, targets: Sequence[Json], *, width: int) -> Json:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": list(targets),
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "decimals": 0,
                "color": {"mode": "fixed", "fixedColor": "text"},
            },
            "overrides": [
                {
                    "matcher": {"id": "byName", "options": name},
                    "properties": [
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": color}}
                    ],
                }
                for name, _code, color in STATE_CODES
                if name != "closed"
            ],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "horizontal",
            "textMode": "value_and_name",
        },
        "gridPos": {"w": width, "h": 8},
    }


def state_timeline(title: str, description: str, targets: Sequence[Json], *, width: int) -> Json:
    return {
        "type": "state-timeline",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": list(targets),
        "fieldConfig": {
            "defaults": {
                "unit": "none",
                "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
                "mappings": [
                    {
                        "type": "value",
                        "options": {
                            str(code): {"text": name, "color": color, "index": code}
                            for name, code, color in STATE_CODES
                        },
                    }
                ],
                "custom": {"fillOpacity": 80, "lineWidth": 0},
            },
            "overrides": [],
        },
        "options": {
            "mergeValues": True,
            "showValue": "never",
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "single", "sort": "none"},
        },
        "gridPos": {"w": width, "h": 8},
    }


def row(title: str) -> Json:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24}}


def layout(panels: Sequence[Json]) -> list[Json]:
    """Number the panels and place them left to right, a new line at each row or when full."""
    placed: list[Json] = []
    x = y = line_height = 0
    for number, panel in enumerate(panels, start=1):
        width = panel["gridPos"]["w"]
        height = 1 if panel["type"] == "row" else panel["gridPos"]["h"]
        if panel["type"] == "row" or x + width > 24:
            x, y, line_height = 0, y + line_height, 0
        placed.append({"id": number, **panel, "gridPos": {"h": height, "w": width, "x": x, "y": y}})
        x += width
        line_height = max(line_height, height)
        if panel["type"] == "row":
            x, y, line_height = 0, y + height, 0
    return placed


# --- the dashboards --------------------------------------------------------------------------


def _breaker_panels() -> list[Json]:
    def calls(*matchers: str) -> str:
        return sum_by((BREAKER,), of_service(rate(BREAKER_CALLS, ON_BREAKERS, *matchers)))

    def in_state(name: str, code: int) -> str:
        return f"({of_service(selector(BREAKER_STATE, ON_BREAKERS, equals(STATE, name)))}) * {code}"

    state = of_service(selector(BREAKER_STATE, ON_BREAKERS))
    worst_state = " or ".join(in_state(name, code) for name, code, _color in STATE_CODES)
    permitted = calls(f'{OUTCOME}=~"success|failure"')
    rejected = calls(equals(OUTCOME, "rejected"))
    slow = sum_by((BREAKER,), of_service(rate(BREAKER_SLOW_CALLS, ON_BREAKERS)))
    transitions = sum_by((BREAKER, STATE), of_service(rate(BREAKER_TRANSITIONS, ON_BREAKERS)))
    by_breaker = legend(BREAKER)
    return [
        row("Circuit breakers"),
        stat(
            "Breakers by state",
            "How many breakers are in each state now. A breaker counts once per state that "
            "any process of the chosen services has it in, so a breaker open in one worker "
            "and closed in another counts as both.",
            "none",
            [target(sum_by((STATE,), f"max by ({BREAKER}, {STATE}) ({state})"), legend(STATE))],
            width=6,
        ),
        state_timeline(
            "Breaker state",
            "The state of each breaker over time; when processes disagree, the worst one "
            "is shown (forced open, then open, half open, disabled, closed).",
            [target(f"max by ({BREAKER}) ({worst_state})", by_breaker)],
            width=18,
        ),
        timeseries(
            "Rejected calls",
            "Calls refused by an open breaker without being sent: what users of the service "
            "see as errors raised at once (a CircuitOpenError of the library's own kind).",
            "ops",
            [target(rejected, by_breaker)],
        ),
        timeseries(
            "Share of calls rejected",
            "Rejected calls as a share of all calls through each breaker: the part of the "
            "traffic to that endpoint that fails fast instead of being sent.",
            "percentunit",
            [target(f"{rejected} / {calls()}", by_breaker)],
            max_value=1,
        ),
        timeseries(
            "State transitions",
            "Times each breaker entered each state, per minute. Frequent openings mean an "
            "unhealthy endpoint; open and half open alternating mean recovery probes fail.",
            "opm",
            [target(f"60 * {transitions}", f"{by_breaker} {legend(STATE)}")],
            bars=True,
        ),
        timeseries(
            "Calls by outcome",
            "Calls through the chosen breakers by outcome: success, failure (what the "
            "breaker counts against the endpoint), rejected, ignored (neither).",
            "ops",
            [
                target(
                    sum_by((OUTCOME,), of_service(rate(BREAKER_CALLS, ON_BREAKERS))),
                    legend(OUTCOME),
                )
            ],
            stack=True,
        ),
        timeseries(
            "Failure rate",
            "Failed calls as a share of the calls each breaker let through (successes and "
            "failures); the breaker's failure-rate threshold "
            "(OTEL_RESILIENCE_BREAKER_FAILURE_RATE) applies to its own window of this.",
            "percentunit",
            [target(f"{calls(equals(OUTCOME, 'failure'))} / {permitted}", by_breaker)],
            max_value=1,
        ),
        timeseries(
            "Slow-call rate",
            "Slow calls as a share of the calls each breaker let through; slow means longer "
            "than OTEL_RESILIENCE_BREAKER_SLOW_CALL_DURATION, or than 3 x the endpoint's "
            "own p99 when adaptive.",
            "percentunit",
            [target(f"{slow} / {permitted}", by_breaker)],
            max_value=1,
        ),
    ]


def _retry_panels() -> list[Json]:
    def retries(*matchers: str) -> str:
        return of_service(rate(RETRY_ATTEMPTS, ON_RETRY_TARGETS, *matchers))

    refused = retries(equals(RETRY_OUTCOME, "budget_exhausted"))
    return [
        row("Retries"),
        timeseries(
            "Retries by outcome",
            "retried: retries sent; succeeded, exhausted: how retried calls ended; "
            "budget_exhausted: retries the retry budget refused. A first-attempt success "
            "records nothing.",
            "ops",
            [target(sum_by((RETRY_OUTCOME,), retries()), legend(RETRY_OUTCOME))],
        ),
        timeseries(
            "Retry budget exhausted",
            "Retries refused per target because retries already added "
            "OTEL_RESILIENCE_RETRY_BUDGET_RATIO of the target's calls of the last 10 s: the "
            "budget keeping retries from multiplying the load during an outage.",
            "ops",
            [target(sum_by((RETRY_TARGET,), refused), legend(RETRY_TARGET))],
        ),
    ]


def _client_panels(
    title: str,
    noun: str,
    metric: str,
    endpoint: Sequence[str],
    endpoint_legend: str,
    rate_unit: str,
) -> list[Json]:
    count = rate(f"{metric}_count")
    errors = rate(f"{metric}_count", 'error_type!=""')
    return [
        row(title),
        timeseries(
            f"{noun} rate",
            f"{noun}s per second per endpoint, every attempt counted (a retried call counts "
            "each try). Not filtered by the breaker variable.",
            rate_unit,
            [target(sum_by(endpoint, of_service(count)), endpoint_legend)],
            width=8,
        ),
        timeseries(
            "Error rate",
            f"Share of {noun.lower()}s per endpoint that ended with an error (error.type set: "
            "an exception, or an HTTP status of 400 or more).",
            "percentunit",
            [target(share(endpoint, of_service(errors), of_service(count)), endpoint_legend)],
            width=8,
            max_value=1,
        ),
        timeseries(
            "Errors by type",
            f"{noun}s per second that failed, by error.type, across all endpoints.",
            rate_unit,
            [target(sum_by(("error_type",), of_service(errors)), legend("error_type"))],
            width=8,
            stack=True,
        ),
        timeseries(
            "Latency p50 / p95 / p99",
            f"Duration of {noun.lower()}s per endpoint, from the {metric} histogram "
            "(semantic-convention buckets: values between bounds are interpolated).",
            "s",
            [
                target(
                    quantile(q, endpoint, of_service(rate(f"{metric}_bucket"))),
                    f"p{round(q * 100)} {endpoint_legend}",
                    chr(ord("A") + index),
                )
                for index, q in enumerate(PERCENTILES)
            ],
            width=24,
        ),
    ]


def _log_panels() -> list[Json]:
    dropped = of_service(rate(LOG_RECORDS_DROPPED), keep=("service_name",))
    return [
        row("Logs"),
        timeseries(
            "Log records dropped",
            "Records the non-blocking log writer dropped because its queue "
            "(OTEL_RESILIENCE_LOG_QUEUE_SIZE) was full, per service. Anything above zero "
            "means log lines are missing.",
            "ops",
            [target(sum_by(("service_name",), dropped), legend("service_name"))],
            width=24,
        ),
    ]


def _variables() -> list[Json]:
    breakers_of_service = f"group by ({BREAKER}) ({of_service(BREAKER_STATE)})"
    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            # the Prometheus data source provisioned with the local stack (uid "prometheus")
            "current": {"selected": False, "text": "Prometheus", "value": "prometheus"},
            "hide": 0,
            "includeAll": False,
            "multi": False,
            "options": [],
            "refresh": 1,
            "regex": "",
        },
        {
            "name": "service",
            "label": "Service",
            "description": "service.name of the processes shown (target_info's service_name)",
            "type": "query",
            "datasource": DATASOURCE,
            "definition": "label_values(target_info, service_name)",
            "query": {
                "query": "label_values(target_info, service_name)",
                "refId": "PrometheusVariableQueryEditor-VariableQuery",
            },
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0,
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "options": [],
            "refresh": 2,
            "regex": "",
            "sort": 1,
        },
        {
            "name": "breaker",
            "label": "Breaker",
            "description": "Circuit breakers (one per endpoint) of the chosen services; also "
            "filters retries by target",
            "type": "query",
            "datasource": DATASOURCE,
            "definition": f"query_result({breakers_of_service})",
            "query": {
                "query": f"query_result({breakers_of_service})",
                "refId": "PrometheusVariableQueryEditor-VariableQuery",
            },
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0,
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "options": [],
            "refresh": 2,
            "regex": f'/{BREAKER}="([^"]+)"/',
            "sort": 1,
        },
    ]


def resilience_overview() -> Json:
    panels = [
        *_breaker_panels(),
        *_retry_panels(),
        *_client_panels(
            "HTTP client", "Request", HTTP_DURATION, HTTP_ENDPOINT, HTTP_LEGEND, "reqps"
        ),
        *_client_panels("Database client", "Operation", DB_DURATION, DB_ENDPOINT, DB_LEGEND, "ops"),
        *_log_panels(),
    ]
    return {
        "uid": "otel-resilience-overview",
        "title": "Resilience overview",
        "description": "Circuit breakers, retries, HTTP and database clients (rate, errors, "
        "duration) and dropped log records, from otel-resilience's metrics.",
        "tags": ["otel-resilience"],
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "weekStart": "",
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {"list": _variables()},
        "panels": layout(panels),
    }


def dashboards() -> dict[str, Json]:
    """Every dashboard, by file name."""
    return {"resilience-overview.json": resilience_overview()}


def render(dashboard: Json) -> str:
    """The committed form of a dashboard: stable key order, two-space indents, final newline."""
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the files differ from what would be written",
    )
    parser.add_argument("--output-dir", type=Path, default=DASHBOARDS_DIR)
    arguments = parser.parse_args(argv)
    directory: Path = arguments.output_dir
    expected = {name: render(dashboard) for name, dashboard in dashboards().items()}
    if not arguments.check:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in expected.items():
            (directory / name).write_text(text, encoding="utf-8")
        return 0
    problems = [
        f"{directory / name}: {'differs from' if (directory / name).exists() else 'missing in'} "
        "the generator's output"
        for name, text in expected.items()
        if not (directory / name).exists() or (directory / name).read_text(encoding="utf-8") != text
    ]
    problems += [
        f"{path}: not written by the generator"
        for path in sorted(directory.glob("*.json"))
        if path.name not in expected
    ]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"run: python {Path(__file__).as_posix()} to regenerate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
