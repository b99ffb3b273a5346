"""Every variable we read: valid values parse, invalid ones warn once and fall back."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, cast

import pytest

from otel_resilience import BreakerPolicy
from otel_resilience.sdk import settings as config
from otel_resilience.sdk.settings import RESILIENCE_VARIABLES, ExportSettings, Settings, Variable

REPOSITORY = Path(__file__).resolve().parents[2]
README = REPOSITORY / "README.md"


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


@pytest.mark.parametrize("raw", ["-1", "nan", "1s", "soon"])
def test_shutdown_timeout_rejects_non_durations(raw: str) -> None:
    assert config.SHUTDOWN_TIMEOUT.read({config.SHUTDOWN_TIMEOUT.name: raw}) == 1.0


DURATIONS = [v for v in RESILIENCE_VARIABLES if v.type_name.startswith("seconds")]


def test_the_duration_variables_are_the_ones_we_expect() -> None:
    assert {variable.name.removeprefix("OTEL_RESILIENCE_") for variable in DURATIONS} == {
        "SHUTDOWN_TIMEOUT",
        "BREAKER_SLOW_CALL_DURATION",
        "BREAKER_RECOVERY_TIMEOUT",
        "BREAKER_MAX_RECOVERY_TIMEOUT",
        "RETRY_INITIAL_BACKOFF",
        "RETRY_MAX_BACKOFF",
        "HEALTH_CHECK_TIMEOUT",
    }


@pytest.mark.parametrize("variable", DURATIONS, ids=lambda v: v.name)
@pytest.mark.parametrize("raw", ["1e10", "9.3e9", "inf", "1e400"])
def test_a_duration_above_the_maximum_uses_the_maximum_with_one_warning(
    variable: Variable[object], raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert variable.read({variable.name: raw}) == config.MAX_SECONDS == 86_400
    (record,) = caplog.records
    assert record.getMessage() == (
        f"{variable.name}={raw!r} is above the maximum: expected {variable.expected}; using 86400"
    )
    assert "86400" in variable.type_name  # the README table documents it


@pytest.mark.parametrize("variable", DURATIONS, ids=lambda v: v.name)
def test_a_duration_of_nan_is_invalid(
    variable: Variable[object], caplog: pytest.LogCaptureFixture
) -> None:
    assert variable.read({variable.name: "nan"}) == variable.default
    assert "is invalid" in caplog.records[0].getMessage()


def test_the_maximum_itself_is_accepted_silently(caplog: pytest.LogCaptureFixture) -> None:
    for variable in DURATIONS:
        assert variable.read({variable.name: "86400"}) == 86_400
    assert caplog.records == []


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
    assert "bad.example" not in settings.breaker_overrides  # its only field was invalid
    (record,) = caplog.records
    assert "OTEL_RESILIENCE_BREAKER_OVERRIDES" in record.getMessage()
    assert "'bad.example'" in record.getMessage()
    assert settings.breaker_excluded == ("localhost", "*.cache")


def _overrides(caplog: pytest.LogCaptureFixture, value: object) -> dict[str, BreakerPolicy]:
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        settings = Settings.from_environment({config.BREAKER_OVERRIDES.name: json.dumps(value)})
    return dict(settings.breaker_overrides)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("window_size", 2.5, "a whole number from 1 to 100000"),
        ("window_size", "30", "a whole number from 1 to 100000"),
        ("window_size", True, "a whole number from 1 to 100000"),
        ("window_size", 100_001, "a whole number from 1 to 100000"),
        ("minimum_calls", 1.0, "a whole number >= 1"),
        ("half_open_max_calls", 0, "a whole number >= 1"),
        ("consecutive_failures", False, "a whole number >= 1, or null"),
        ("failure_rate_threshold", 50, "a fraction in (0, 1], or null"),
        ("slow_call_rate_threshold", "0.5", "a fraction in (0, 1], or null"),
        ("slow_call_duration", 0, "a number of seconds > 0, at most 86400, or null for adaptive"),
        ("recovery_timeout", "10", "a number of seconds from 0 to 86400"),
        ("recovery_timeout", -1, "a number of seconds from 0 to 86400"),
        ("healthy_period", None, "a number of seconds from 0 to 86400"),
        ("window_kind", "sliding", '"count" or "time"'),
        ("recovery_backoff_multiplier", 0.5, "a finite number >= 1"),
        ("adaptive_slow_call_multiplier", True, "a finite number > 0"),
        ("recovery_jitter", 1, "a number in [0, 1)"),
    ],
)
def test_an_invalid_override_field_is_reported_and_the_entrys_other_fields_apply(
    field: str, value: object, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    overrides = _overrides(caplog, {"api.internal": {field: value, "max_recovery_timeout": 600}})
    policy = overrides["api.internal"]
    assert policy.max_recovery_timeout == 600
    assert getattr(policy, field) == getattr(BreakerPolicy(), field)
    (record,) = caplog.records
    assert record.getMessage() == (
        f"OTEL_RESILIENCE_BREAKER_OVERRIDES entry 'api.internal': {field}={json.dumps(value)} "
        f"is invalid: expected {expected}; that field is ignored"
    )


def test_every_override_field_is_a_breaker_policy_field() -> None:
    policy_fields = set(BreakerPolicy.__dataclass_fields__)
    assert set(config.OVERRIDE_FIELDS) <= policy_fields
    assert policy_fields - set(config.OVERRIDE_FIELDS) == {
        "failure_exceptions",
        "ignored_exceptions",
        "failure_result",
    }


def test_valid_override_fields_of_every_kind_are_taken(caplog: pytest.LogCaptureFixture) -> None:
    overrides = _overrides(
        caplog,
        {
            "*.internal": {
                "consecutive_failures": None,
                "failure_rate_threshold": 0.25,
                "slow_call_duration": "adaptive",
                "window_kind": "TIME",
                "window_size": 30,
                "minimum_calls": 5,
                "recovery_timeout": 2,
                "max_recovery_timeout": 86400,
                "recovery_jitter": 0,
            }
        },
    )
    policy = overrides["*.internal"]
    assert (policy.consecutive_failures, policy.failure_rate_threshold) == (None, 0.25)
    assert (policy.window_kind, policy.window_size, policy.minimum_calls) == ("time", 30, 5)
    assert (policy.recovery_timeout, policy.max_recovery_timeout) == (2.0, 86400.0)
    assert caplog.records == []


def test_an_override_duration_above_the_maximum_uses_the_maximum(
    caplog: pytest.LogCaptureFixture,
) -> None:
    overrides = _overrides(caplog, {"db.internal": {"max_recovery_timeout": 1e10}})
    assert overrides["db.internal"].max_recovery_timeout == 86_400
    (record,) = caplog.records
    assert "max_recovery_timeout=10000000000.0 is above the maximum" in record.getMessage()


def test_unknown_override_fields_and_bad_patterns_are_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    overrides = _overrides(
        caplog,
        {
            "api.internal": {"window_sise": 50, "window_size": 50},
            "api internal": {"window_size": 50},
            "code.internal": {"failure_exceptions": ["OSError"]},
        },
    )
    assert overrides["api.internal"].window_size == 50
    assert set(overrides) == {"api.internal"}
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert "entry 'api.internal' sets unknown field 'window_sise'" in messages[0]
    assert "entry 'api internal' is invalid: expected a host or endpoint pattern" in messages[1]
    assert "unknown field 'failure_exceptions'" in messages[2]


def test_override_fields_that_contradict_each_other_leave_the_entry_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    overrides = _overrides(caplog, {"api.internal": {"window_size": 10, "minimum_calls": 50}})
    assert overrides == {}
    (record,) = caplog.records
    assert "entry 'api.internal' does not fit together" in record.getMessage()
    assert "minimum_calls (50)" in record.getMessage()


@pytest.mark.parametrize(
    ("field", "value"),
    [("window_size", 2.5), ("window_size", True), ("minimum_calls", "3"), ("healthy_period", "1")],
)
def test_a_breaker_policy_built_in_code_checks_its_field_types(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a"):
        BreakerPolicy(**cast(dict[str, Any], {field: value}))


def test_a_large_backoff_multiplier_after_many_re_opens_waits_the_cap() -> None:
    policy = BreakerPolicy(recovery_backoff_multiplier=1e6, max_recovery_timeout=600)
    assert policy.recovery_wait(1) == 10
    assert policy.recovery_wait(70) == 600  # 1e6 ** 64 overflowed a float


def test_the_window_size_variable_has_the_policys_range(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_environment({config.BREAKER_WINDOW_SIZE.name: "200000"})
    assert settings.breaker_policy == BreakerPolicy()
    (record,) = caplog.records  # that variable alone, not "the variables do not fit together"
    assert record.getMessage().startswith("OTEL_RESILIENCE_BREAKER_WINDOW_SIZE='200000'")


# --- OTEL_RESILIENCE_DISABLED ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "disabled", "unknown", "using"),
    [
        ("reqeusts", {"sqlite3"}, "reqeusts", "using the default sqlite3"),
        ("requests, reqeusts", {"requests"}, "reqeusts", "using requests"),
        ("sqlite3,htpx,redis", {"sqlite3", "redis"}, "htpx", "using redis,sqlite3"),
        ("*,foo", {"*"}, "foo", "using *"),
    ],
)
def test_unknown_names_in_disabled_are_reported_and_the_known_ones_kept(
    raw: str, disabled: set[str], unknown: str, using: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_environment({config.DISABLED.name: raw})
    assert settings.resilience_disabled == disabled
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith(f"OTEL_RESILIENCE_DISABLED={raw!r} names unknown")
    assert f"instrumentation(s) {unknown}:" in message
    assert "expected a comma list of httpx, " in message
    assert message.endswith(using)


@pytest.mark.parametrize("raw", ["requests", "sqlite3,psycopg2", "*", "PyMySQL, redis, httpx"])
def test_known_names_in_disabled_are_taken_silently(
    raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_environment({config.DISABLED.name: raw})
    assert settings.resilience_disabled == {name.strip().lower() for name in raw.split(",")}
    assert caplog.records == []


def test_our_instrumentation_names_are_every_adapters_entry_point() -> None:
    ours = {
        entry.name
        for entry in entry_points(group="opentelemetry_instrumentor")
        if entry.value.startswith("otel_resilience_instrumentation_")
    }
    adapters = {path.parent.name for path in REPOSITORY.glob("instrumentations/*/pyproject.toml")}
    assert ours == adapters == set(config.INSTRUMENTATION_NAMES)


# --- the SDK's own variables -------------------------------------------------------------


@pytest.mark.parametrize("variable", config.SDK_VARIABLES, ids=lambda v: v.name)
def test_an_invalid_sdk_variable_warns_once_and_only_its_piece_uses_the_default(
    variable: Variable[object], caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_environment({variable.name: variable.invalid_example})
    (record,) = caplog.records
    assert record.getMessage() == (
        f"{variable.name}={variable.invalid_example!r} is invalid: expected {variable.expected}; "
        f"using the default {config._render_default(variable.default)}"
    )
    defaults = Settings.from_environment({})
    assert dataclasses.replace(settings.sdk, rejected_variables=frozenset()) == defaults.sdk
    assert dataclasses.replace(settings, sdk=defaults.sdk) == defaults


def test_sdk_variables_pass_through_with_their_upstream_meaning() -> None:
    sdk = Settings.from_environment(
        {
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "64",
            "OTEL_METRIC_EXPORT_INTERVAL": "1500.5",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "3",
            "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "0.5",
        }
    ).sdk
    # a queue below the default batch size lowers the batch size with it, silently
    assert sdk.span_batch == config.BatchSettings(200, 100, 100, 30_000)
    assert sdk.log_batch == config.BatchSettings(1000, 2048, 64, 30_000)
    assert sdk.metric_export_interval_millis == 1500.5
    assert sdk.otlp_timeouts == {"traces": 3.0, "metrics": 3.0, "logs": 0.5}
    assert sdk.rejected_variables == frozenset()


def test_a_batch_larger_than_its_queue_is_lowered_to_the_queue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sdk = Settings.from_environment(
        {"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "200"}
    ).sdk
    assert (sdk.span_batch.max_queue_size, sdk.span_batch.max_export_batch_size) == (100, 100)
    (record,) = caplog.records
    assert record.getMessage() == (
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE='200' exceeds the queue size 100 "
        "(OTEL_BSP_MAX_QUEUE_SIZE): expected at most the queue size; using 100"
    )


def test_the_sdk_reads_no_rejected_variable(caplog: pytest.LogCaptureFixture) -> None:
    sdk = Settings.from_environment(
        {
            "OTEL_ATTRIBUTE_COUNT_LIMIT": "-1",
            "OTEL_SPAN_LINK_COUNT_LIMIT": "64",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "soon",
            "OTEL_BSP_MAX_QUEUE_SIZE": "0",
        }
    ).sdk
    # Passed as arguments (the batch options) need no hiding; the others are hidden.
    assert sdk.rejected_variables == {
        "OTEL_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    }
    assert len(caplog.records) == 3


@pytest.mark.parametrize(
    ("variable", "raw", "maximum"),
    [
        ("OTEL_BSP_SCHEDULE_DELAY", "10000000000000", 86_400_000),
        ("OTEL_METRIC_EXPORT_INTERVAL", "inf", 86_400_000),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1e10", 86_400),
    ],
)
def test_sdk_durations_above_the_maximum_use_the_maximum(
    variable: str, raw: str, maximum: int, caplog: pytest.LogCaptureFixture
) -> None:
    sdk = Settings.from_environment({variable: raw}).sdk
    values = {
        "OTEL_BSP_SCHEDULE_DELAY": sdk.span_batch.schedule_delay_millis,
        "OTEL_METRIC_EXPORT_INTERVAL": sdk.metric_export_interval_millis,
        "OTEL_EXPORTER_OTLP_TIMEOUT": sdk.otlp_timeouts["traces"],
    }
    assert values[variable] == maximum
    (record,) = caplog.records
    assert record.getMessage().endswith(
        f"is above the maximum: expected {_expected(variable)}; using {maximum}"
    )


def _expected(name: str) -> str:
    return next(v.expected for v in config.SDK_VARIABLES if v.name == name)
