"""No credential leaves through the logs: every output, every place a secret can hide.

One unmistakable secret is planted in every form a program lets slip (bound fields, ``extra=``
names and values, nested values, bytes, a dataclass, the message, a real ``requests``
exception quoting its URL, a traceback line with a hard-coded DSN, ``stack_info``) and logged
through the real outputs: the JSON formatter (orjson and json), the human formatter, the OTLP
handler into an SDK in-memory exporter, and the in-memory buffer. Not one occurrence may come
out; ordinary fields and words must come out untouched.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from otel_resilience import logs
from otel_resilience.logs._context import bind
from otel_resilience.logs._human_format import HumanFormatter
from otel_resilience.logs._json_format import JsonFormatter
from otel_resilience.logs._memory import RingBufferHandler
from otel_resilience.logs._otlp_handler import OtlpLogHandler
from otel_resilience.logs._redaction import REDACTED, Redactor

SECRET = "s3cr3t-XYZ"

NAMED_LIKE_SECRETS = (
    "auth",
    "dsn",
    "database_url",
    "jwt",
    "passphrase",
    "signature",
    "otp",
    "secret",
    "userOTP",
    "clientSecret",
    "x_auth",
    "SENTRY_DSN",
)


@dataclass
class DatabaseSettings:
    host: str
    password: str = field(repr=False)  # hidden from repr, not from the JSON lines' dict


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _refuse(dsn: str) -> None:
    del dsn
    raise ConnectionRefusedError("connection refused")


def _connect_with_a_hard_coded_dsn() -> None:
    _refuse("postgresql://orders:s3cr3t-XYZ@127.0.0.1:5432/orders")  # quoted by the traceback


def log_every_form(log: logging.Logger) -> None:
    """Log the secret in every form, twice where a second record takes a cached fast path."""
    with bind(database=f"postgresql://app:{SECRET}@127.0.0.1:5432/test", request_id="r-1"):
        log.info(
            "connecting to %s",
            f"mysql://root:{SECRET}@127.0.0.1:3306/test",
            extra={
                "target": f"https://api.example.com/v1?page=2&sig={SECRET}",
                "headers": {"Accept": "*/*", "X-Forwarded": f"Bearer {SECRET}"},
                "conninfo": f"host=127.0.0.1 sslpassword={SECRET} user=app",
                "steps": [f"token={SECRET}&next=1", "ok"],
                "raw": f"password={SECRET}".encode(),
                "settings": DatabaseSettings("127.0.0.1", SECRET),
                "footprint": 3,
                "author": "bob",
                **dict.fromkeys(NAMED_LIKE_SECRETS, SECRET),
            },
        )
        for _ in range(2):  # the second time, the name is known clean: the fast paths
            log.info("retrying with %s", f"token={SECRET}", extra={"note": f"Bearer {SECRET}"})
    with bind(request_id="r-2"):
        try:
            requests.get(f"http://127.0.0.1:{_closed_port()}/v1/items?token={SECRET}", timeout=5)
        except requests.ConnectionError:
            log.exception("upstream failed")
    try:
        _connect_with_a_hard_coded_dsn()
    except ConnectionError:
        log.exception("database failed")
    log.info("checked password=s3cr3t-XYZ", stack_info=True)


class Lines(logging.Handler):
    """Formats each record at emit, as a stream handler would, and keeps the text."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


_counter = iter(range(1_000_000))


@pytest.fixture
def logger() -> Iterator[Callable[[logging.Handler], logging.Logger]]:
    attached: list[tuple[logging.Logger, logging.Handler]] = []

    def attach(handler: logging.Handler) -> logging.Logger:
        log = logging.getLogger(f"test_log_redaction.{next(_counter)}")
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.addHandler(handler)
        attached.append((log, handler))
        return log

    yield attach
    for log, handler in attached:
        log.removeHandler(handler)


@pytest.mark.parametrize("serialiser", ["orjson", "json"])
def test_json_lines_carry_no_secret(
    serialiser: str, logger: Callable[[logging.Handler], logging.Logger]
) -> None:
    formatter = JsonFormatter()
    formatter._use_orjson = serialiser == "orjson"
    output = Lines(formatter)
    log_every_form(logger(output))

    assert SECRET not in "\n".join(output.lines)
    first, retry, retry_again, upstream, database, checked = map(json.loads, output.lines)
    assert first["message"] == "connecting to mysql://REDACTED:REDACTED@127.0.0.1:3306/test"
    assert first["database"] == "postgresql://REDACTED:REDACTED@127.0.0.1:5432/test"
    assert first["request_id"] == "r-1"
    assert first["target"] == "https://api.example.com/v1?page=REDACTED&sig=REDACTED"
    assert first["headers"] == {"Accept": "*/*", "X-Forwarded": "Bearer REDACTED"}
    assert first["conninfo"] == "host=127.0.0.1 sslpassword=REDACTED user=app"
    assert first["steps"] == ["token=REDACTED&next=1", "ok"]
    assert first["raw"] == "b'password=REDACTED'"
    assert first["settings"] == {"host": "127.0.0.1", "password": REDACTED}
    assert (first["footprint"], first["author"]) == (3, "bob")
    for name in NAMED_LIKE_SECRETS:
        assert first[name] == REDACTED, name
    for line in (retry, retry_again):
        assert line["message"] == "retrying with token=REDACTED"
        assert line["note"] == "Bearer REDACTED"
    assert upstream["exception.type"] == "requests.exceptions.ConnectionError"
    assert "/v1/items?token=REDACTED" in upstream["exception.message"]
    assert "/v1/items?token=REDACTED" in upstream["exception.stacktrace"]
    assert "postgresql://REDACTED:REDACTED@127.0.0.1" in database["exception.stacktrace"]
    assert checked["message"] == "checked password=REDACTED"
    assert 'log.info("checked password=REDACTED"' in checked["code.stacktrace"]


def test_human_lines_carry_no_secret(logger: Callable[[logging.Handler], logging.Logger]) -> None:
    output = Lines(HumanFormatter())
    log_every_form(logger(output))

    text = "\n".join(output.lines)
    assert SECRET not in text
    first = output.lines[0]
    assert "connecting to mysql://REDACTED:REDACTED@127.0.0.1:3306/test" in first
    assert 'target="https://api.example.com/v1?page=REDACTED&sig=REDACTED"' in first
    assert "footprint=3 author=bob" in first
    assert "auth=[REDACTED]" in first
    assert "Max retries exceeded with url: /v1/items?token=REDACTED" in text
    assert "postgresql://REDACTED:REDACTED@127.0.0.1:5432/orders" in text


def test_otlp_records_carry_no_secret(logger: Callable[[logging.Handler], logging.Logger]) -> None:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    try:
        log_every_form(logger(OtlpLogHandler(provider)))
        records = [finished.log_record for finished in exporter.get_finished_logs()]
    finally:
        provider.shutdown()

    exported = [(record.body, dict(record.attributes or {})) for record in records]
    assert SECRET not in repr(exported)
    (first_body, first), (retry_body, retry), (_, retry_again), (_, upstream) = exported[:4]
    assert first_body == "connecting to mysql://REDACTED:REDACTED@127.0.0.1:3306/test"
    assert first["database"] == "postgresql://REDACTED:REDACTED@127.0.0.1:5432/test"
    assert first["target"] == "https://api.example.com/v1?page=REDACTED&sig=REDACTED"
    assert first["steps"] == ("token=REDACTED&next=1", "ok")
    assert (first["footprint"], first["author"]) == (3, "bob")
    assert first["auth"] == REDACTED
    assert retry_body == "retrying with token=REDACTED"
    assert retry["note"] == retry_again["note"] == "Bearer REDACTED"
    assert "/v1/items?token=REDACTED" in str(upstream["exception.message"])


def test_memory_entries_hold_only_the_redacted_form(
    logger: Callable[[logging.Handler], logging.Logger],
) -> None:
    plain = RingBufferHandler(context_provider=logs.bound)
    plain.setFormatter(logging.Formatter())  # not ours: the buffer redacts its lines itself
    ours = RingBufferHandler(context_provider=logs.bound)
    ours.setFormatter(JsonFormatter())
    unformatted = RingBufferHandler(context_provider=logs.bound)
    for handler in (plain, ours, unformatted):
        log_every_form(logger(handler))
        entries = handler.entries()
        assert len(entries) == 6
        kept = repr([(e.message, dict(e.attributes), e.formatted) for e in entries])
        assert SECRET not in kept
        first = entries[0]
        assert first.message == "connecting to mysql://REDACTED:REDACTED@127.0.0.1:3306/test"
        assert first.attributes["database"] == "postgresql://REDACTED:REDACTED@127.0.0.1:5432/test"
        assert first.attributes["conninfo"] == "host=127.0.0.1 sslpassword=REDACTED user=app"
        assert first.attributes["auth"] == REDACTED
        assert first.attributes["footprint"] == 3
        assert handler.errors == 0
    upstream = plain.entries(contains="upstream failed")[0]
    assert upstream.formatted is not None
    assert "/v1/items?token=REDACTED" in upstream.formatted


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    setup = logs.current_setup()
    if setup is not None:
        setup.close()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logging")
def test_memory_log_of_the_configured_set_up_holds_no_secret() -> None:
    logs.configure(format="json", level="DEBUG", outputs=["memory"])
    log_every_form(logging.getLogger("test_log_redaction.configured"))
    memory = logs.memory_log()
    assert memory is not None
    entries = memory.entries(logger="test_log_redaction.configured")
    assert len(entries) == 6
    assert SECRET not in repr([(e.message, dict(e.attributes), e.formatted) for e in entries])


# -- the name rule --------------------------------------------------------------------------


def test_short_names_match_whole_words_or_the_end_and_long_ones_anywhere() -> None:
    redactor = Redactor()
    for name in (
        *NAMED_LIKE_SECRETS,
        "AUTH",
        "auth_header",
        "basicAuth",
        "HTTPAuth",
        "oauth",
        "totp",
        "user-otp",
        "id_jwt",
        "Database-URL",
        "primary_database_url",
        "X-Amz-Signature",
        "sig",
        "oldpwd",
        "app_secret",
        "api_passphrase",
    ):
        assert redactor.is_sensitive(name), name
    for name in (
        "footprint",
        "author",
        "authority",
        "authenticated",
        "signal",
        "design",
        "keyboard",
        "hotpot",
        "adsnet",
        "user_id",
    ):
        assert not redactor.is_sensitive(name), name


def test_keep_lets_a_name_through_untouched_and_values_can_be_left_unscanned() -> None:
    url = f"https://app:{SECRET}@127.0.0.1/x"
    keep = Redactor(keep=["callback", "auth_method"])
    fields: dict[str, Any] = {"callback": url, "auth_method": "basic", "other": url}
    redacted = keep.redact(fields)
    assert redacted["callback"] == url
    assert redacted["auth_method"] == "basic"
    assert redacted["other"] == "https://REDACTED:REDACTED@127.0.0.1/x"

    names_only = Redactor(scan_values=False)
    assert names_only.redact({"other": url, "dsn": url}) == {"other": url, "dsn": REDACTED}
    assert names_only.redact_text(url) == url
    assert Redactor(enabled=False).redact_text(url) == url


def test_clean_fields_come_back_as_the_same_objects() -> None:
    redactor = Redactor()
    fields = {"user": "u7", "nested": {"a": [1, "two"]}, "tags": frozenset({"x"})}
    assert redactor.redact(fields) is fields
    text = "GET /v1/items -> 200"
    assert redactor.redact_text(text) is text
