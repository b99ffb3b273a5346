"""Every variable we read: valid values parse, invalid ones warn once and fall back."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from otel_resilience import config
from otel_resilience.config import RESILIENCE_VARIABLES, ExportSettings, Settings, Variable

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.parametrize("variable", RESILIENCE_VARIABLES, ids=lambda v: v.name)
def test_malformed_resilience_variable_warns_once_and_uses_the_default(
    variable: Variable[object], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        value = variable.read({variable.name: variable.invalid_example})
    assert value == variable.default
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert variable.name in message
    assert repr(variable.invalid_example) in message
    assert variable.expected in message


@pytest.mark.parametrize("variable", RESILIENCE_VARIABLES, ids=lambda v: v.name)
def test_settings_survive_every_malformed_resilience_variable(
    variable: Variable[object], caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_environment({variable.name: variable.invalid_example})
    assert settings == Settings.from_environment({})
    assert any(variable.name in r.getMessage() for r in caplog.records)


def test_unset_and_blank_variables_use_defaults_silently(caplog: pytest.LogCaptureFixture) -> None:
    blank = {variable.name: "  " for variable in RESILIENCE_VARIABLES}
    assert Settings.from_environment(blank) == Settings.from_environment({})
    assert caplog.records == []


def test_shutdown_timeout_accepts_seconds() -> None:
    assert Settings.from_environment({config.SHUTDOWN_TIMEOUT.name: "2.5"}).shutdown_timeout == 2.5
    assert Settings.from_environment({config.SHUTDOWN_TIMEOUT.name: "0"}).shutdown_timeout == 0.0


@pytest.mark.parametrize("raw", ["-1", "nan", "inf", "1s", "soon"])
def test_shutdown_timeout_rejects_non_durations(raw: str) -> None:
    assert config.SHUTDOWN_TIMEOUT.read({config.SHUTDOWN_TIMEOUT.name: raw}) == 1.0


def test_readme_table_matches_the_code() -> None:
    text = README.read_text()
    match = re.search(
        r"<!-- configuration-table:start -->\n(.*?)\n<!-- configuration-table:end -->",
        text,
        re.DOTALL,
    )
    assert match is not None, "README lacks the configuration table markers"
    assert match.group(1).strip() == config.markdown_table()


# --- upstream variables -----------------------------------------------------------------


def test_embedded_default_without_any_otlp_endpoint() -> None:
    export = ExportSettings.from_environment({})
    assert export.exporters == {"traces": (), "metrics": ("prometheus",), "logs": ()}
    assert (export.prometheus_host, export.prometheus_port) == ("localhost", 9464)


@pytest.mark.parametrize(
    "variable",
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    ],
)
def test_any_otlp_endpoint_makes_otlp_the_default(variable: str) -> None:
    export = ExportSettings.from_environment({variable: "http://127.0.0.1:4317"})
    assert export.exporters == {"traces": ("otlp",), "metrics": ("otlp",), "logs": ("otlp",)}


def test_exporter_lists_keep_upstream_meaning() -> None:
    export = ExportSettings.from_environment(
        {
            "OTEL_TRACES_EXPORTER": "console, otlp",
            "OTEL_METRICS_EXPORTER": "otlp,prometheus,otlp",
            "OTEL_LOGS_EXPORTER": "none",
        }
    )
    assert export.exporters == {
        "traces": ("console", "otlp"),
        "metrics": ("otlp", "prometheus"),
        "logs": (),
    }


def test_unknown_exporter_is_reported_and_the_valid_ones_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    export = ExportSettings.from_environment({"OTEL_TRACES_EXPORTER": "otlp,zipkinn"})
    assert export.exporters["traces"] == ("otlp",)
    (record,) = caplog.records
    assert "OTEL_TRACES_EXPORTER" in record.getMessage()
    assert "'otlp,zipkinn'" in record.getMessage()
    assert "zipkinn" in record.getMessage()


def test_prometheus_is_not_a_trace_exporter(caplog: pytest.LogCaptureFixture) -> None:
    export = ExportSettings.from_environment({"OTEL_TRACES_EXPORTER": "prometheus"})
    assert export.exporters["traces"] == ()
    assert "OTEL_TRACES_EXPORTER" in caplog.records[0].getMessage()


def test_signal_protocol_overrides_the_general_one() -> None:
    export = ExportSettings.from_environment(
        {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
        }
    )
    assert export.otlp_protocols == {
        "traces": "http/protobuf",
        "metrics": "grpc",
        "logs": "http/protobuf",
    }


@pytest.mark.parametrize(
    ("variable", "raw", "expected_fragment"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "grpc or http/protobuf"),
        ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "udp", "grpc or http/protobuf"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", "99999", "a port number from 0 to 65535"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", "ninety", "a port number from 0 to 65535"),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "local host", "a host name or address"),
    ],
)
def test_malformed_upstream_variable_warns_and_uses_the_default(
    variable: str, raw: str, expected_fragment: str, caplog: pytest.LogCaptureFixture
) -> None:
    export = ExportSettings.from_environment({variable: raw})
    defaults = ExportSettings.from_environment({})
    assert export == defaults
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert variable in messages[0]
    assert repr(raw) in messages[0]
    assert expected_fragment in messages[0]


# --- circuit-breaker and retry defaults ----------------------------------------------------


def test_breaker_policy_from_the_environment() -> None:
    settings = Settings.from_environment(
        {
            "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "none",
            "OTEL_RESILIENCE_BREAKER_FAILURE_RATE": "25",
            "OTEL_RESILIENCE_BREAKER_SLOW_CALL_DURATION": "2.5",
            "OTEL_RESILIENCE_BREAKER_WINDOW_KIND": "TIME",
            "OTEL_RESILIENCE_BREAKER_WINDOW_SIZE": "30",
            "OTEL_RESILIENCE_BREAKER_MAX_BREAKERS": "50",
            "OTEL_RESILIENCE_RETRY_MAX_ATTEMPTS": "0",
            "OTEL_RESILIENCE_RETRY_JITTER": "decorrelated",
        }
    )
    policy = settings.breaker_policy
    assert policy.consecutive_failures is None
    assert policy.failure_rate_threshold == 0.25
    assert policy.slow_call_duration == 2.5
    assert (policy.window_kind, policy.window_size) == ("time", 30)
    assert settings.max_breakers == 50
    assert (settings.retry.max_retries, settings.retry.jitter) == (0, "decorrelated")
    assert Settings.from_environment({}).breaker_policy.slow_call_duration is None  # adaptive


def test_contradicting_breaker_values_fall_back_to_the_default_policy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings.from_environment(
        {
            "OTEL_RESILIENCE_BREAKER_RECOVERY_TIMEOUT": "600",
            "OTEL_RESILIENCE_BREAKER_MAX_RECOVERY_TIMEOUT": "60",
        }
    )
    assert settings.breaker_policy == Settings.from_environment({}).breaker_policy
    (record,) = caplog.records
    assert "OTEL_RESILIENCE_BREAKER_" in record.getMessage()
    assert "max_recovery_timeout" in record.getMessage()


def test_contradicting_retry_backoffs_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_environment(
        {"OTEL_RESILIENCE_RETRY_INITIAL_BACKOFF": "5", "OTEL_RESILIENCE_RETRY_MAX_BACKOFF": "1"}
    )
    assert (settings.retry.initial_backoff, settings.retry.max_backoff) == (0.1, 10.0)
    (record,) = caplog.records
    assert "OTEL_RESILIENCE_RETRY_INITIAL_BACKOFF" in record.getMessage()


def test_breaker_overrides_and_exclusions_from_the_environment(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings.from_environment(
        {
            "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "7",
            "OTEL_RESILIENCE_BREAKER_OVERRIDES": (
                '{"*.internal": {"recovery_timeout": 2}, "bad.example": {"window_size": 0}}'
            ),
            "OTEL_RESILIENCE_BREAKER_EXCLUDED": "localhost, *.cache",
        }
    )
    override = settings.breaker_overrides["*.internal"]
    assert override.recovery_timeout == 2
    assert override.consecutive_failures == 7  # the configured default, not the library's
    assert "bad.example" not in settings.breaker_overrides
    (record,) = caplog.records
    assert "OTEL_RESILIENCE_BREAKER_OVERRIDES" in record.getMessage()
    assert "'bad.example'" in record.getMessage()
    assert settings.breaker_excluded == ("localhost", "*.cache")
