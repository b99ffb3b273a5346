"""No credential a program hands to its clients, its logs or its health checks leaves it.

``tests/support/secrets_app.py`` plants distinct secrets in everything the distribution instruments
(URL userinfo, query, fragment and matrix parameters, headers, DSNs, SQL literals of every
dialect, bound parameters, driver errors that echo them, Redis AUTH/HELLO/ACL in both forms,
log fields, bound context, log messages, exceptions, health-check failures) and runs the real
clients against the real servers on 127.0.0.1, under the real ``opentelemetry-instrument``.
Each test then reads everything the process exported and looks for every secret, in any
case, and for the base64 form of each HTTP Basic credential:

- over OTLP (traces over HTTP/protobuf, metrics over gRPC, logs over HTTP/protobuf) to the
  tests' receiver: every decoded span, event, status, metric point and log record, and the
  protobuf bytes of every request (re-encoded from what the receiver decoded, unknown fields
  included); the JSON log file; ``/metrics``, ``/status``, ``/readyz`` and
  ``/healthz`` while the program lingers; what it printed;
- through the console exporters of every signal and the human log format: all of standard
  output and standard error.

A leak is reported with the secret's name (which says where it was planted), where it was
found (signal and attribute, or file and line) and the text around it. The tests also check
that every planted call happened as planned and that the telemetry is really there, so that
exporting nothing cannot pass.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest
import redis
from http_test_server import ScriptedHttpServer
from instrumented_run import InstrumentedRun, run_instrumented, running_instrumented
from otlp_receiver import OtlpReceiver, unused_tcp_port
from prometheus_server import free_tcp_port
from secrets_app import (
    DATABASE,
    EXPECTED_FAILURES,
    LOCALHOST,
    MARIADB_PORT,
    REDIS_PASSWORDS,
    REDIS_PORT,
    SECRETS,
    UNREPORTED,
    needles,
)

APP = Path(__file__).resolve().parents[1] / "support" / "secrets_app.py"
CLIENT_SPAN = 3  # opentelemetry.proto SpanKind: one more than the API's
HTTP_REQUESTS_PER_CLIENT = 14  # the entries of secrets_app.http_plan
ENDPOINT_PATHS = ("/metrics", "/status", "/readyz", "/healthz")
PLACES_SHOWN = 6  # per leaked secret, in the failure message
# The last part of each instrumentation's scope name: every one must have sent client spans.
INSTRUMENTED = ("requests", "httpx", "psycopg", "psycopg2", "pymysql", "sqlite3", "redis")

Artifact = tuple[str, str]
"""Where a text was found (signal and attribute, or file and line), and the text."""


# --------------------------------------------------------------------------- what to look for


@dataclass(frozen=True)
class Leak:
    secret: str
    where: str
    excerpt: str


def find_leaks(artifacts: Iterable[Artifact], secrets: Mapping[str, str]) -> list[Leak]:
    lowered = {label: value.lower() for label, value in secrets.items()}
    leaks: list[Leak] = []
    for where, text in artifacts:
        folded = text.lower()
        for label, needle in lowered.items():
            start = folded.find(needle)
            if start >= 0:
                excerpt = text[max(0, start - 60) : start + len(needle) + 40]
                leaks.append(Leak(label, where, repr(excerpt)))
    return leaks


def walk(value: object, where: str) -> Iterator[Artifact]:
    """Every string (and number) in a decoded document, each with its path; keys too."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield f"{where} (a key)", str(key)
            yield from walk(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from walk(item, f"{where}[{index}]")
    elif isinstance(value, bytes):
        yield where, value.decode("latin-1")
    elif value is not None:
        yield where, str(value)


def otlp_artifacts(receiver: OtlpReceiver) -> Iterator[Artifact]:
    for span in receiver.spans():
        where = f"OTLP span {span.name!r} [{span.scope_name}]"
        yield f"{where} name", span.name
        yield from walk(span.attributes, f"{where} attribute")
        yield f"{where} status message", span.status_message
        for name, attributes in span.events:
            yield f"{where} event name", name
            yield from walk(attributes, f"{where} event {name!r} attribute")
        yield from walk(span.resource_attributes, "OTLP traces resource attribute")
    for record in receiver.logs():
        where = f"OTLP log record {str(record.body)[:40]!r} [{record.scope_name}]"
        yield from walk(record.body, f"{where} body")
        yield from walk(record.attributes, f"{where} attribute")
        yield f"{where} event name", record.event_name
        yield from walk(record.resource_attributes, "OTLP logs resource attribute")
    for metric in receiver.metrics():
        where = f"OTLP metric {metric.name!r} [{metric.scope_name}]"
        yield (
            f"{where} name, description, unit",
            f"{metric.name} {metric.description} {metric.unit}",
        )
        for point in metric.data_points:
            yield from walk(point.attributes, f"{where} point attribute")
        yield from walk(metric.resource_attributes, "OTLP metrics resource attribute")
    for index, request in enumerate(receiver.requests()):
        where = f"OTLP {request.signal} export #{index} over {request.protocol}"
        yield from walk(dict(request.headers), f"{where} header")
        yield f"{where}, raw protobuf", request.message.SerializeToString().decode("latin-1")


def without_redundant_raw_hits(leaks: list[Leak]) -> list[Leak]:
    """A raw-bytes hit only matters for a secret the decoded views did not find."""
    decoded = {leak.secret for leak in leaks if "raw protobuf" not in leak.where}
    return [
        leak for leak in leaks if "raw protobuf" not in leak.where or leak.secret not in decoded
    ]


def describe_document(document: object) -> str:
    if isinstance(document, dict):
        if "context" in document and "name" in document:
            return f"span {document['name']!r}"
        if "body" in document:
            return f"log record {str(document['body'])[:40]!r}"
        if "resource_metrics" in document:
            return "metrics"
        if "message" in document:
            return f"log line {str(document['message'])[:40]!r}"
    return "JSON document"


def console_artifacts(text: str, name: str) -> Iterator[Artifact]:
    """The JSON documents a console exporter printed (by path), and every other line."""
    decoder = json.JSONDecoder()
    position, line = 0, 1
    while position < len(text):
        if text[position] == "{":
            try:
                document, end = decoder.raw_decode(text, position)
            except ValueError:
                pass
            else:
                yield from walk(document, f"{name} line {line}, {describe_document(document)}")
                line += text.count("\n", position, end)
                position = end
                continue
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        yield f"{name} line {line}", text[position:end]
        position, line = end + 1, line + 1


def fetch(url: str) -> tuple[int, str]:
    """Status and body, for error statuses too (``/readyz`` answers 503 when down)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def endpoint_artifacts(bodies: Mapping[str, str]) -> Iterator[Artifact]:
    for path, body in bodies.items():
        try:
            document = json.loads(body)
        except ValueError:
            for number, line in enumerate(body.splitlines(), 1):
                yield f"{path} line {number}", line
        else:
            yield from walk(document, path)
        yield f"{path}, raw", body


def describe_leaks(leaks: list[Leak], secrets: Mapping[str, str]) -> str:
    by_secret: dict[str, list[Leak]] = {}
    for leak in leaks:
        by_secret.setdefault(leak.secret, []).append(leak)
    lines = [f"{len(by_secret)} planted secret(s) left the process, in {len(leaks)} place(s):"]
    for label, found in sorted(by_secret.items()):
        lines.append(f"  {label} = {secrets[label]!r}:")
        lines += [f"    {leak.where}: {leak.excerpt}" for leak in found[:PLACES_SHOWN]]
        if len(found) > PLACES_SHOWN:
            lines.append(f"    ... and {len(found) - PLACES_SHOWN} more")
    return "\n".join(lines)


# --------------------------------------------------------------------------- set-up


@pytest.fixture
def redis_user() -> Iterator[str]:
    """A Redis ACL user that accepts every password the program authenticates with."""
    name = f"secrets-e2e-{uuid.uuid4().hex[:12]}"
    with redis.Redis(host=LOCALHOST, port=REDIS_PORT) as admin:
        admin.acl_setuser(
            name,
            enabled=True,
            passwords=[f"+{SECRETS[label]}" for label in REDIS_PASSWORDS],
            keys=["*"],
            commands=["+@all"],
        )
        try:
            yield name
        finally:
            admin.acl_deluser(name)


@pytest.fixture
def mariadb_user() -> Iterator[str]:
    """A MariaDB user with a password (root has none); the program creates one more."""
    name = f"secrets_e2e_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(host=LOCALHOST, port=MARIADB_PORT, user="root", password="")
    with closing(admin), admin.cursor() as cursor:
        cursor.execute(
            "CREATE USER %s@'%%' IDENTIFIED BY %s", (name, SECRETS["pymysql-user-password"])
        )
        try:
            cursor.execute(f"GRANT ALL ON {DATABASE}.* TO %s@'%%'", (name,))
            yield name
        finally:
            for user in (name, f"{name}_made"):
                cursor.execute("DROP USER IF EXISTS %s@'%%'", (user,))


@pytest.fixture
def run_id() -> Iterator[str]:
    """Names the program's keys, tables and procedure; what a crash left behind goes after."""
    token = uuid.uuid4().hex[:10]
    yield token
    with redis.Redis(host=LOCALHOST, port=REDIS_PORT) as admin:
        for key in admin.scan_iter(match=f"secrets-e2e:{token}:*"):
            admin.delete(key)
    connection = pymysql.connect(host=LOCALHOST, port=MARIADB_PORT, user="root", password="")
    with closing(connection), connection.cursor() as cursor:
        cursor.execute(f"DROP PROCEDURE IF EXISTS {DATABASE}.secrets_e2e_echo_{token}")


@dataclass(frozen=True)
class Setting:
    """What the program is pointed at, as the fixtures made it."""

    http_server: ScriptedHttpServer
    redis_user: str
    mariadb_user: str
    run_id: str
    directory: Path


@pytest.fixture
def setting(
    http_server: ScriptedHttpServer, redis_user: str, mariadb_user: str, run_id: str, tmp_path: Path
) -> Setting:
    return Setting(http_server, redis_user, mariadb_user, run_id, tmp_path)


def app_environment(setting: Setting) -> dict[str, str]:
    return {
        "SECRETS_APP_HTTP_PORT": str(setting.http_server.port),
        "SECRETS_APP_CLOSED_PORT": str(unused_tcp_port()),
        "SECRETS_APP_SQLITE_PATH": str(setting.directory / "app.db"),
        "SECRETS_APP_REDIS_USER": setting.redis_user,
        "SECRETS_APP_MARIADB_USER": setting.mariadb_user,
        "SECRETS_APP_RUN_ID": setting.run_id,
        "OTEL_SERVICE_NAME": "secrets-e2e",
        # One quick retry, and a breaker that opens on the closed port's fifth failure.
        "OTEL_RESILIENCE_RETRY_MAX_ATTEMPTS": "1",
        "OTEL_RESILIENCE_RETRY_INITIAL_BACKOFF": "0.01",
        "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "5",
        # Every library's debug records too: urllib3 and httpx log the URLs they request.
        "OTEL_RESILIENCE_LOG_LEVEL": "DEBUG",
        "OTEL_RESILIENCE_SHUTDOWN_TIMEOUT": "10",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_BLRP_SCHEDULE_DELAY": "200",
    }


def keep(run: InstrumentedRun, tmp_path: Path) -> None:
    """The program's output as files, for a look after a failure."""
    (tmp_path / "stdout.txt").write_text(run.stdout, encoding="utf-8")
    (tmp_path / "stderr.txt").write_text(run.stderr, encoding="utf-8")


def check_every_call_happened_as_planned(run: InstrumentedRun) -> None:
    assert run.returncode == 0, f"the program failed ({run.returncode}):\n{run.stderr[-5000:]}"
    outcomes = dict(re.findall(r"^OUTCOME ([\w-]+) (\w+)$", run.stdout, re.MULTILINE))
    expected = {
        label: EXPECTED_FAILURES.get(label, "ok") for label in SECRETS if label not in UNREPORTED
    }
    wrong = {
        label: f"expected {expected.get(label)}, got {outcomes.get(label)}"
        for label in expected.keys() | outcomes.keys()
        if expected.get(label) != outcomes.get(label)
    }
    assert not wrong, f"planted calls that did not go as planned: {wrong}"


# --------------------------------------------------------------------------- the tests


def test_no_secret_reaches_otlp_the_log_file_metrics_or_status(
    otlp_receiver: OtlpReceiver, setting: Setting
) -> None:
    tmp_path = setting.directory
    port = free_tcp_port()
    log_file = tmp_path / "records.jsonl"
    env = {
        **app_environment(setting),
        "SECRETS_APP_LINGER": "1",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp,prometheus",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{otlp_receiver.http_endpoint}/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": otlp_receiver.grpc_endpoint,
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"{otlp_receiver.http_endpoint}/v1/logs",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_EXPORTER_PROMETHEUS_HOST": LOCALHOST,
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
        "OTEL_RESILIENCE_HEALTH_ENABLED": "true",
        "OTEL_RESILIENCE_LOG_FORMAT": "json",
        "OTEL_RESILIENCE_LOG_OUTPUTS": "file",
        "OTEL_RESILIENCE_LOG_FILE": str(log_file),
    }
    bodies: dict[str, str] = {}
    with running_instrumented(APP, env=env, eof_grace=30) as app:
        app.wait_for_output(r"^READY$", timeout=90)
        for path in ENDPOINT_PATHS:
            _status, bodies[path] = fetch(f"http://{LOCALHOST}:{port}{path}")
    assert app.result is not None
    keep(app.result, tmp_path)
    for path, body in bodies.items():
        (tmp_path / f"endpoint{path.replace('/', '-')}.txt").write_text(body, encoding="utf-8")
    check_every_call_happened_as_planned(app.result)

    # The telemetry is there: spans of every client, records, points, the endpoints' content.
    spans = otlp_receiver.wait_for_spans(
        lambda s: s.kind == CLIENT_SPAN and "url.full" in s.attributes,
        count=3 * HTTP_REQUESTS_PER_CLIENT,
    )
    assert {s.attributes.get("http.response.status_code") for s in spans} >= {200, 500, 503}
    client_spans: dict[str, int] = {}
    for span in otlp_receiver.spans():
        if span.kind == CLIENT_SPAN and (
            "url.full" in span.attributes or "db.query.text" in span.attributes
        ):
            library = span.scope_name.rpartition(".")[2]
            client_spans[library] = client_spans.get(library, 0) + 1
    assert client_spans.keys() >= set(INSTRUMENTED), f"client spans by library: {client_spans}"
    otlp_receiver.wait_for_logs(lambda r: r.body == "charging card")
    otlp_receiver.wait_for_logs(
        lambda r: r.body == "payment failed" and "exception.message" in r.attributes
    )
    for name in ("http.client.request.duration", "db.client.operation.duration"):
        assert otlp_receiver.wait_for_metric(name).data_points
    assert "http_client_request_duration_seconds_bucket" in bodies["/metrics"]
    assert "db_client_operation_duration_seconds_bucket" in bodies["/metrics"]
    status = json.loads(bodies["/status"])
    assert status["breakers"], status
    checks = {check["name"]: check["status"] for check in status["checks"]}
    assert checks["payments-database"] == "down", checks
    assert checks["cache"] == "degraded", checks  # registered with critical=False
    records = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    assert [r for r in records if r.get("message") == "payment failed" and "exception.message" in r]

    # And none of it holds a secret.
    artifacts: list[Artifact] = [
        *otlp_artifacts(otlp_receiver),
        *endpoint_artifacts(bodies),
        *console_artifacts(log_file.read_text(encoding="utf-8"), f"log file {log_file.name}"),
        *console_artifacts(app.result.stdout, "program stdout"),
        *console_artifacts(app.result.stderr, "program stderr"),
    ]
    secrets = needles(setting.redis_user)
    leaks = without_redundant_raw_hits(find_leaks(artifacts, secrets))
    assert not leaks, describe_leaks(leaks, secrets)


def test_no_secret_reaches_the_console_exporters_or_the_human_log_format(
    setting: Setting,
) -> None:
    tmp_path = setting.directory
    env = {
        **app_environment(setting),
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_LOGS_EXPORTER": "console",
        "OTEL_RESILIENCE_LOG_FORMAT": "human",
        "OTEL_RESILIENCE_LOG_OUTPUTS": "console",
    }
    run = run_instrumented(APP, env=env, timeout=120)
    keep(run, tmp_path)
    check_every_call_happened_as_planned(run)

    # The telemetry is there: spans, metric points and log records on stdout, lines on stderr.
    for expected in (
        '"url.full"',
        '"db.query.text"',
        '"db.system.name": "redis"',
        '"http.client.request.duration"',
        '"db.client.operation.duration"',
        '"body": "payment failed"',
        '"exception.message"',
    ):
        assert expected in run.stdout, f"{expected} is not in the console output"
    assert "payment failed" in run.stderr

    artifacts = [
        *console_artifacts(run.stdout, "console stdout"),
        *console_artifacts(run.stderr, "console stderr"),
    ]
    secrets = needles(setting.redis_user)
    leaks = find_leaks(artifacts, secrets)
    assert not leaks, describe_leaks(leaks, secrets)
