"""Every environment variable the distribution reads, parsed and validated in one place.

The distribution runs inside programs it does not own, so a mistyped value must never stop
one: each variable is read through :class:`Variable`, which turns an invalid value into one
warning that names the variable, the value and what was expected, and then uses the
default. Keeping all of them here gives the README's configuration table a single source
(:func:`markdown_table`), and a test keeps the two in agreement.

Two families are read:

* ``OTEL_RESILIENCE_*``: ours, listed in :data:`RESILIENCE_VARIABLES`.
* Upstream ``OTEL_*`` variables that keep their upstream meaning (exporter selection,
  OTLP protocol and timeouts, Prometheus host and port, the SDK's batch processor, metric
  reader and span limit variables); they are validated the same way so that a typo there
  is reported just as clearly, and costs only the piece it configures rather than all
  telemetry (the SDK's own constructors raise on such values).

Every duration has one documented maximum, :data:`MAX_SECONDS` (a day): a larger value,
``inf`` included, is lowered to it with one warning. Beyond a day a wait means "forever"
to a running program anyway, and values from about 9.2e9 s overflow the platform's
timeouts (``OverflowError`` out of a sleep or a thread join, far from the variable).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Generic, Literal, TypeVar, cast

from otel_resilience.breaker._policy import MAX_WINDOW_SIZE, BreakerPolicy

__all__ = [
    "MAX_SECONDS",
    "RESILIENCE_VARIABLES",
    "SDK_VARIABLES",
    "BatchSettings",
    "ExportSettings",
    "HealthSettings",
    "RetrySettings",
    "SdkSettings",
    "Settings",
    "Signal",
    "Variable",
    "current_settings",
    "markdown_table",
    "settings_from_options",
]

_logger = logging.getLogger(__name__)

T = TypeVar("T")

Signal = Literal["traces", "metrics", "logs"]
SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")

OtlpProtocol = Literal["grpc", "http/protobuf"]


MAX_SECONDS = 86_400.0
"""The longest duration any variable accepts (one day); see the module documentation."""


class _AboveMaximum(Exception):
    """Raised by a parser whose value is valid but too large; ``maximum`` is used instead."""

    def __init__(self, maximum: float) -> None:
        super().__init__(maximum)
        self.maximum = maximum


@dataclass(frozen=True, slots=True)
class Variable(Generic[T]):
    """One environment variable: how to parse it, its default, and how to document it."""

    name: str
    default: T
    parse: Callable[[str], T]
    type_name: str
    expected: str
    meaning: str
    invalid_example: str

    def read(self, environ: Mapping[str, str]) -> T:
        """Return the parsed value, or the default (with one warning) when it is invalid."""
        return self.read_checked(environ)[0]

    def read_checked(self, environ: Mapping[str, str]) -> tuple[T, bool]:
        """:meth:`read`, and whether the value set (if any) was rejected.

        A value above the parser's maximum is not rejected: the maximum is used, with one
        warning, because the user's intent ("a long time") is clear.
        """
        raw = environ.get(self.name)
        if raw is None or not raw.strip():
            return self.default, False
        try:
            return self.parse(raw.strip()), False
        except _AboveMaximum as capped:
            _logger.warning(
                "%s=%r is above the maximum: expected %s; using %s",
                self.name,
                raw,
                self.expected,
                _render_number(capped.maximum),
            )
            return cast(T, capped.maximum), False
        except ValueError:
            _logger.warning(
                "%s=%r is invalid: expected %s; using the default %s",
                self.name,
                raw,
                self.expected,
                _render_default(self.default),
            )
            return self.default, True


def _render_default(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | frozenset):
        return ",".join(sorted(str(item) for item in value)) or "(none)"
    if value is None:
        return "none"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _render_number(value: float) -> str:
    """``86400`` rather than ``86400.0`` or ``8.64e+07`` in a message."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _bounded(value: float, *, maximum: float, minimum: float = 0.0, open_below: bool) -> float:
    """``value`` checked against ``minimum`` (exclusive when ``open_below``) and ``maximum``.

    NaN is invalid; anything above ``maximum``, infinity included, raises
    :class:`_AboveMaximum` so that the caller uses the maximum.
    """
    if math.isnan(value) or value < minimum or (open_below and value == minimum):
        raise ValueError(value)
    if value > maximum:
        raise _AboveMaximum(maximum)
    return value


def _parse_seconds(raw: str) -> float:
    return _bounded(float(raw), maximum=MAX_SECONDS, open_below=False)


def _parse_positive_seconds(raw: str) -> float:
    return _bounded(float(raw), maximum=MAX_SECONDS, open_below=True)


_SECONDS = f"seconds, at most {_render_number(MAX_SECONDS)}"
_SECONDS_FROM_ZERO = f"a number of seconds from 0 to {_render_number(MAX_SECONDS)}"
_POSITIVE_SECONDS = f"a number of seconds > 0, at most {_render_number(MAX_SECONDS)}"


def _parse_count(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


def _parse_window_size(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= MAX_WINDOW_SIZE:
        raise ValueError(raw)
    return value


def _parse_retries(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


def _parse_optional_count(raw: str) -> int | None:
    return None if raw.lower() == "none" else _parse_count(raw)


def _parse_optional_percent(raw: str) -> float | None:
    """A percentage in (0, 100] as a fraction, or ``None`` for "none"."""
    if raw.lower() == "none":
        return None
    value = float(raw.removesuffix("%"))
    if not 0.0 < value <= 100.0:
        raise ValueError(raw)
    return value / 100.0


def _parse_slow_call_duration(raw: str) -> float | None:
    return None if raw.lower() == "adaptive" else _parse_positive_seconds(raw)


def _parse_window_kind(raw: str) -> Literal["count", "time"]:
    lowered = raw.lower()
    if lowered == "count":
        return "count"
    if lowered == "time":
        return "time"
    raise ValueError(raw)


def _parse_jitter(raw: str) -> Literal["full", "decorrelated", "none"]:
    lowered = raw.lower()
    if lowered == "full":
        return "full"
    if lowered == "decorrelated":
        return "decorrelated"
    if lowered == "none":
        return "none"
    raise ValueError(raw)


def _parse_budget_ratio(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 10.0:
        raise ValueError(raw)
    return value


def _parse_bool(raw: str) -> bool:
    value = raw.lower()
    if value in ("true", "false"):
        return value == "true"
    raise ValueError(raw)


LogFormat = Literal["json", "human", "none"]
LOG_LEVEL_NAMES = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_OUTPUT_NAMES = ("console", "file", "memory")


def _parse_log_format(raw: str) -> LogFormat:
    lowered = raw.lower()
    if lowered == "json":
        return "json"
    if lowered == "human":
        return "human"
    if lowered == "none":
        return "none"
    raise ValueError(raw)


def _parse_log_level(raw: str) -> str | None:
    upper = raw.upper()
    if upper == "WARN":
        return "WARNING"
    if upper not in LOG_LEVEL_NAMES:
        raise ValueError(raw)
    return upper


def _parse_log_outputs(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.strip().lower() for name in raw.split(",") if name.strip()))
    if not names or any(name not in LOG_OUTPUT_NAMES for name in names):
        raise ValueError(raw)
    return names


def _parse_file_path(raw: str) -> str:
    if raw.endswith(("/", "\\")) or "\0" in raw:  # a directory, or no path at all
        raise ValueError(raw)
    return raw


def _parse_name_list(raw: str) -> frozenset[str]:
    names = frozenset(name.strip().lower() for name in raw.split(",") if name.strip())
    if not names or not all(name == "*" or re.fullmatch(r"[a-z0-9_.-]+", name) for name in names):
        raise ValueError(raw)
    return names


def _parse_port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError(raw)
    return value


def _parse_protocol(raw: str) -> OtlpProtocol:
    lowered = raw.lower()
    if lowered == "grpc":
        return "grpc"
    if lowered == "http/protobuf":
        return "http/protobuf"
    raise ValueError(raw)


def _parse_host(raw: str) -> str:
    if any(character.isspace() for character in raw) or "/" in raw:
        raise ValueError(raw)
    return raw


SHUTDOWN_TIMEOUT = Variable(
    name="OTEL_RESILIENCE_SHUTDOWN_TIMEOUT",
    default=1.0,
    parse=_parse_seconds,
    type_name=_SECONDS,
    expected=_SECONDS_FROM_ZERO,
    meaning=(
        "The most a program's exit may wait for the last telemetry to be flushed, even when "
        "the collector is down or hangs; what is not sent by then is dropped with one warning. "
        "0 skips the final flush."
    ),
    invalid_example="soon",
)

_BREAKER_DEFAULTS = BreakerPolicy()
_BREAKER = "OTEL_RESILIENCE_BREAKER_"

BREAKER_CONSECUTIVE_FAILURES = Variable(
    name=_BREAKER + "CONSECUTIVE_FAILURES",
    default=_BREAKER_DEFAULTS.consecutive_failures,
    parse=_parse_optional_count,
    type_name="integer or `none`",
    expected="a whole number >= 1, or none",
    meaning="Failures in a row that open a breaker; `none` turns this trip condition off.",
    invalid_example="five",
)
BREAKER_FAILURE_RATE = Variable(
    name=_BREAKER + "FAILURE_RATE",
    default=_BREAKER_DEFAULTS.failure_rate_threshold,
    parse=_parse_optional_percent,
    type_name="percent or `none`",
    expected="a percentage in (0, 100], or none",
    meaning="Percentage of failed calls in the window that opens a breaker.",
    invalid_example="half",
)
BREAKER_SLOW_CALL_RATE = Variable(
    name=_BREAKER + "SLOW_CALL_RATE",
    default=_BREAKER_DEFAULTS.slow_call_rate_threshold,
    parse=_parse_optional_percent,
    type_name="percent or `none`",
    expected="a percentage in (0, 100], or none",
    meaning="Percentage of slow calls in the window that opens a breaker.",
    invalid_example="150",
)
BREAKER_SLOW_CALL_DURATION = Variable(
    name=_BREAKER + "SLOW_CALL_DURATION",
    default=_BREAKER_DEFAULTS.slow_call_duration,
    parse=_parse_slow_call_duration,
    type_name=f"{_SECONDS}, or `adaptive`",
    expected=f"{_POSITIVE_SECONDS}, or adaptive",
    meaning=(
        "A call slower than this is slow; `adaptive` derives it from each endpoint's own "
        "latency (3 x its p99, see the README)."
    ),
    invalid_example="fast",
)
BREAKER_WINDOW_KIND = Variable(
    name=_BREAKER + "WINDOW_KIND",
    default=_BREAKER_DEFAULTS.window_kind,
    parse=_parse_window_kind,
    type_name="`count` or `time`",
    expected="count or time",
    meaning="Whether the sliding window holds the last N calls or the last N seconds.",
    invalid_example="sliding",
)
BREAKER_WINDOW_SIZE = Variable(
    name=_BREAKER + "WINDOW_SIZE",
    default=_BREAKER_DEFAULTS.window_size,
    parse=_parse_window_size,
    type_name=f"integer, at most {MAX_WINDOW_SIZE}",
    expected=f"a whole number from 1 to {MAX_WINDOW_SIZE}",
    meaning="N: calls (count window) or seconds (time window).",
    invalid_example="100.5",
)
BREAKER_MINIMUM_CALLS = Variable(
    name=_BREAKER + "MINIMUM_CALLS",
    default=_BREAKER_DEFAULTS.minimum_calls,
    parse=_parse_count,
    type_name="integer",
    expected="a whole number >= 1",
    meaning="Calls the window must hold before its rates can open a breaker.",
    invalid_example="0",
)
BREAKER_HALF_OPEN_MAX_CALLS = Variable(
    name=_BREAKER + "HALF_OPEN_MAX_CALLS",
    default=_BREAKER_DEFAULTS.half_open_max_calls,
    parse=_parse_count,
    type_name="integer",
    expected="a whole number >= 1",
    meaning="Trial calls a half-open breaker admits at once; that many successes close it.",
    invalid_example="-1",
)
BREAKER_RECOVERY_TIMEOUT = Variable(
    name=_BREAKER + "RECOVERY_TIMEOUT",
    default=_BREAKER_DEFAULTS.recovery_timeout,
    parse=_parse_seconds,
    type_name=_SECONDS,
    expected=_SECONDS_FROM_ZERO,
    meaning="First open period; each consecutive re-open doubles it.",
    invalid_example="10s",
)
BREAKER_MAX_RECOVERY_TIMEOUT = Variable(
    name=_BREAKER + "MAX_RECOVERY_TIMEOUT",
    default=_BREAKER_DEFAULTS.max_recovery_timeout,
    parse=_parse_seconds,
    type_name=_SECONDS,
    expected=_SECONDS_FROM_ZERO,
    meaning="Cap on the open period.",
    invalid_example="forever",
)
BREAKER_MAX_BREAKERS = Variable(
    name=_BREAKER + "MAX_BREAKERS",
    default=1000,
    parse=_parse_count,
    type_name="integer",
    expected="a whole number >= 1",
    meaning="Breakers kept per process (one per endpoint); the least recently used go first.",
    invalid_example="many",
)


def _parse_patterns(raw: str) -> tuple[str, ...]:
    patterns = tuple(pattern.strip() for pattern in raw.split(",") if pattern.strip())
    if not patterns or any(any(c.isspace() for c in pattern) for pattern in patterns):
        raise ValueError(raw)
    return patterns


def _parse_overrides(raw: str) -> Mapping[str, Mapping[str, Any]]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(raw) from error
    if not isinstance(value, dict) or not all(
        isinstance(pattern, str) and isinstance(fields, dict) for pattern, fields in value.items()
    ):
        raise ValueError(raw)
    return value


BREAKER_EXCLUDED: Variable[tuple[str, ...]] = Variable(
    name=_BREAKER + "EXCLUDED",
    default=(),
    parse=_parse_patterns,
    type_name="comma list of patterns",
    expected="host or endpoint patterns separated by commas, such as localhost,*.internal",
    meaning=(
        "Endpoints that get no breaker and no retries (telemetry stays): patterns matched "
        "against the host (`*.internal`) or the whole breaker name (`https://api.example.com:443`)."
    ),
    invalid_example="local host",
)
BREAKER_OVERRIDES: Variable[Mapping[str, Mapping[str, Any]]] = Variable(
    name=_BREAKER + "OVERRIDES",
    default={},
    parse=_parse_overrides,
    type_name="JSON object",
    expected=(
        'a JSON object of pattern to settings, such as {"api.example.com": '
        '{"consecutive_failures": 10}}'
    ),
    meaning=(
        "Per-endpoint policies: each pattern (as for `_EXCLUDED`) maps to `BreakerPolicy` "
        "fields (rates as fractions, `null` for `none` or `adaptive`) that replace the "
        "defaults above for matching endpoints. Each field is checked as its variable is; "
        "an invalid one is reported and ignored, and the entry's other fields still apply."
    ),
    invalid_example="api.example.com=10",
)


# --- the fields an override may set, with the rules of the variables above ----------------
# JSON has types, so each field also checks its type: a whole-number field rejects 2.5,
# "3" and true; a number field rejects "10". Durations share MAX_SECONDS; rates are
# fractions here (JSON numbers), where the variables take percentages.


def _json_whole_number(value: object, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(value)
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(value)
    return value


def _json_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(value)
    return float(value)


def _override_count(value: object) -> int:
    return _json_whole_number(value, 1)


def _override_optional_count(value: object) -> int | None:
    return None if value is None else _override_count(value)


def _override_window_size(value: object) -> int:
    return _json_whole_number(value, 1, MAX_WINDOW_SIZE)


def _override_window_kind(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(value)
    return _parse_window_kind(value)


def _override_optional_fraction(value: object) -> float | None:
    if value is None:
        return None
    fraction = _json_number(value)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(value)
    return fraction


def _override_slow_call_duration(value: object) -> float | None:
    if value is None or (isinstance(value, str) and value.lower() == "adaptive"):
        return None
    return _bounded(_json_number(value), maximum=MAX_SECONDS, open_below=True)


def _override_seconds(value: object) -> float:
    return _bounded(_json_number(value), maximum=MAX_SECONDS, open_below=False)


def _override_adaptive_multiplier(value: object) -> float:
    multiplier = _json_number(value)
    if not (math.isfinite(multiplier) and multiplier > 0):
        raise ValueError(value)
    return multiplier


def _override_backoff_multiplier(value: object) -> float:
    multiplier = _json_number(value)
    if not (math.isfinite(multiplier) and multiplier >= 1):
        raise ValueError(value)
    return multiplier


def _override_jitter(value: object) -> float:
    jitter = _json_number(value)
    if not 0.0 <= jitter < 1.0:
        raise ValueError(value)
    return jitter


@dataclass(frozen=True, slots=True)
class _OverrideField:
    check: Callable[[object], object]
    expected: str


_COUNT = _OverrideField(_override_count, "a whole number >= 1")
_SECONDS_FIELD = _OverrideField(_override_seconds, _SECONDS_FROM_ZERO)
_RATE_FIELD = _OverrideField(_override_optional_fraction, "a fraction in (0, 1], or null")
OVERRIDE_FIELDS: Mapping[str, _OverrideField] = {
    "consecutive_failures": _OverrideField(
        _override_optional_count, "a whole number >= 1, or null"
    ),
    "failure_rate_threshold": _RATE_FIELD,
    "slow_call_rate_threshold": _RATE_FIELD,
    "slow_call_duration": _OverrideField(
        _override_slow_call_duration, f"{_POSITIVE_SECONDS}, or null for adaptive"
    ),
    "adaptive_slow_call_multiplier": _OverrideField(
        _override_adaptive_multiplier, "a finite number > 0"
    ),
    "window_kind": _OverrideField(_override_window_kind, '"count" or "time"'),
    "window_size": _OverrideField(_override_window_size, BREAKER_WINDOW_SIZE.expected),
    "minimum_calls": _COUNT,
    "half_open_max_calls": _COUNT,
    "recovery_timeout": _SECONDS_FIELD,
    "recovery_backoff_multiplier": _OverrideField(
        _override_backoff_multiplier, "a finite number >= 1"
    ),
    "max_recovery_timeout": _SECONDS_FIELD,
    "recovery_jitter": _OverrideField(_override_jitter, "a number in [0, 1)"),
    "healthy_period": _SECONDS_FIELD,
}
"""The :class:`BreakerPolicy` fields ``OTEL_RESILIENCE_BREAKER_OVERRIDES`` may set.

The others (exception matchers, the result predicate) are code, set through the API.
"""

RETRY_MAX_ATTEMPTS = Variable(
    name="OTEL_RESILIENCE_RETRY_MAX_ATTEMPTS",
    default=2,
    parse=_parse_retries,
    type_name="integer",
    expected="a whole number >= 0",
    meaning="Retries after the first attempt (so 2 means up to 3 attempts); 0 turns retries off.",
    invalid_example="three",
)
RETRY_INITIAL_BACKOFF = Variable(
    name="OTEL_RESILIENCE_RETRY_INITIAL_BACKOFF",
    default=0.1,
    parse=_parse_seconds,
    type_name=_SECONDS,
    expected=_SECONDS_FROM_ZERO,
    meaning="Wait before the first retry (before jitter); it doubles with each retry.",
    invalid_example="100ms",
)
RETRY_MAX_BACKOFF = Variable(
    name="OTEL_RESILIENCE_RETRY_MAX_BACKOFF",
    default=10.0,
    parse=_parse_seconds,
    type_name=_SECONDS,
    expected=_SECONDS_FROM_ZERO,
    meaning="Cap on one wait between retries.",
    invalid_example="-3",
)
RETRY_JITTER: Variable[Literal["full", "decorrelated", "none"]] = Variable(
    name="OTEL_RESILIENCE_RETRY_JITTER",
    default="full",
    parse=_parse_jitter,
    type_name="`full`, `decorrelated` or `none`",
    expected="full, decorrelated or none",
    meaning="How waits are randomised so that clients don't retry in step.",
    invalid_example="some",
)
RETRY_BUDGET_RATIO = Variable(
    name="OTEL_RESILIENCE_RETRY_BUDGET_RATIO",
    default=0.2,
    parse=_parse_budget_ratio,
    type_name="ratio",
    expected="a number from 0 to 10",
    meaning="Retries may add at most this share of a target's calls of the last 10 s.",
    invalid_example="lots",
)

DB_RETRY_READ_ONLY = Variable(
    name="OTEL_RESILIENCE_DB_RETRY_READ_ONLY",
    default=False,
    parse=_parse_bool,
    type_name="`true` or `false`",
    expected="true or false",
    meaning=(
        "Also retry read-only SQL statements (`SELECT`, `SHOW`...) outside a transaction when "
        "the server is unavailable. Connecting is always retried; writes and statements in a "
        "transaction never are."
    ),
    invalid_example="yes",
)
REDIS_RETRY_READ_ONLY = Variable(
    name="OTEL_RESILIENCE_REDIS_RETRY_READ_ONLY",
    default=True,
    parse=_parse_bool,
    type_name="`true` or `false`",
    expected="true or false",
    meaning=(
        "Retry read-only Redis commands (`GET`, `HGETALL`...) on a connection error or "
        "timeout; redis-py reconnects for the retry. Writes are never sent twice, by us or "
        "by redis-py's own retry."
    ),
    invalid_example="1",
)

LOG_FORMAT: Variable[LogFormat] = Variable(
    name="OTEL_RESILIENCE_LOG_FORMAT",
    default="none",
    parse=_parse_log_format,
    type_name="`json`, `human` or `none`",
    expected="json, human or none",
    meaning=(
        "Write the program's log records (every logger's) in this format, with trace "
        "correlation and bound context, to `OTEL_RESILIENCE_LOG_OUTPUTS`; `none` adds no "
        "handler. The program's own handlers and levels are left as they are."
    ),
    invalid_example="xml",
)
LOG_LEVEL: Variable[str | None] = Variable(
    name="OTEL_RESILIENCE_LOG_LEVEL",
    default=None,
    parse=_parse_log_level,
    type_name="`TRACE`, `DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`",
    expected="TRACE, DEBUG, INFO, WARNING, ERROR or CRITICAL",
    meaning=(
        "The root logger's level. Unset, the program's own (or Python's default, WARNING) is kept."
    ),
    invalid_example="LOUD",
)
LOG_OUTPUTS: Variable[tuple[str, ...]] = Variable(
    name="OTEL_RESILIENCE_LOG_OUTPUTS",
    default=("console",),
    parse=_parse_log_outputs,
    type_name="comma list of `console`, `file`, `memory`",
    expected="console, file or memory, separated by commas",
    meaning=(
        "Where formatted records go: standard error, `OTEL_RESILIENCE_LOG_FILE`, or a "
        "bounded in-memory ring buffer (`otel_resilience.logs.memory_log()`). Records reach "
        "an OTel collector through `OTEL_LOGS_EXPORTER` as before."
    ),
    invalid_example="console;syslog",
)
LOG_FILE: Variable[str | None] = Variable(
    name="OTEL_RESILIENCE_LOG_FILE",
    default=None,
    parse=_parse_file_path,
    type_name="path",
    expected="a file path (not a directory)",
    meaning="The file of the `file` output (required for it).",
    invalid_example="/var/log/",
)
LOG_FILE_MAX_BYTES: Variable[int | None] = Variable(
    name="OTEL_RESILIENCE_LOG_FILE_MAX_BYTES",
    default=None,
    parse=_parse_optional_count,
    type_name="count or `none`",
    expected="a positive integer or none",
    meaning="Rotate the log file when it would grow past this size.",
    invalid_example="10MB",
)
LOG_FILE_BACKUP_COUNT = Variable(
    name="OTEL_RESILIENCE_LOG_FILE_BACKUP_COUNT",
    default=5,
    parse=_parse_retries,
    type_name="count",
    expected="an integer >= 0",
    meaning="How many rotated log files to keep.",
    invalid_example="many",
)
LOG_NON_BLOCKING = Variable(
    name="OTEL_RESILIENCE_LOG_NON_BLOCKING",
    default=True,
    parse=_parse_bool,
    type_name="`true` or `false`",
    expected="true or false",
    meaning=(
        "Write console and file records from a background thread: the caller only "
        "serialises and enqueues; on overflow records are dropped, never blocking, and "
        "counted in `resilience.log.records.dropped`. Everything queued is written at exit."
    ),
    invalid_example="maybe",
)
LOG_QUEUE_SIZE = Variable(
    name="OTEL_RESILIENCE_LOG_QUEUE_SIZE",
    default=10_000,
    parse=_parse_count,
    type_name="count",
    expected="a positive integer",
    meaning="Records the non-blocking writer may hold before it drops new ones.",
    invalid_example="0",
)
LOG_REDACT = Variable(
    name="OTEL_RESILIENCE_LOG_REDACT",
    default=True,
    parse=_parse_bool,
    type_name="`true` or `false`",
    expected="true or false",
    meaning=(
        "Redact credentials in what logs carry: fields named like secrets (`password`, "
        "`authorization`, `token`, `dsn`...) become `[REDACTED]`, and credentials quoted in "
        "messages, values and exceptions (URLs, `token=`, `Bearer`...) become `REDACTED` "
        "(see the README)."
    ),
    invalid_example="on",
)
LOG_FAST_RECORDS = Variable(
    name="OTEL_RESILIENCE_LOG_FAST_RECORDS",
    default=True,
    parse=_parse_bool,
    type_name="`true` or `false`",
    expected="true or false",
    meaning=(
        "Make log records with a `LogRecord` subclass that sets the same attributes with "
        "the same values, about 1 µs sooner, where no other record factory is set. `false` "
        "keeps `logging`'s own."
    ),
    invalid_example="on",
)
LOG_LEAN_RECORDS = Variable(
    name="OTEL_RESILIENCE_LOG_LEAN_RECORDS",
    default=False,
    parse=_parse_bool,
    type_name="`true` or `false`",
    expected="true or false",
    meaning=(
        "Apply Python's documented `logging` optimisations to the whole program: no caller "
        "frame (`funcName`, `lineno`, `pathname` become placeholders), thread, process or "
        "task names in records. About a third off each record's cost; leave off if your "
        "own log formats show those fields."
    ),
    invalid_example="on",
)

METRICS_CARDINALITY_LIMIT = Variable(
    name="OTEL_RESILIENCE_METRICS_CARDINALITY_LIMIT",
    default=2000,
    parse=_parse_count,
    type_name="count",
    expected="a positive integer",
    meaning=(
        "Label sets kept per `otel_resilience.metrics` instrument; further ones are added "
        "to one overflow series labelled `otel.metric.overflow=true`, as the SDK does."
    ),
    invalid_example="unlimited",
)


def _parse_optional_port(raw: str) -> int | None:
    return None if raw.lower() == "prometheus" else _parse_port(raw)


HEALTH_ENABLED = Variable(
    name="OTEL_RESILIENCE_HEALTH_ENABLED",
    default=False,
    parse=_parse_bool,
    type_name="`true` or `false`",
    expected="true or false",
    meaning="Serve `/healthz`, `/readyz` and `/status` (see Health and status).",
    invalid_example="yes",
)
HEALTH_HOST = Variable(
    name="OTEL_RESILIENCE_HEALTH_HOST",
    default="localhost",
    parse=_parse_host,
    type_name="host",
    expected="a host name or address without spaces or slashes",
    meaning="Address the health endpoint binds to when it has its own port.",
    invalid_example="local host",
)
HEALTH_PORT: Variable[int | None] = Variable(
    name="OTEL_RESILIENCE_HEALTH_PORT",
    default=None,
    parse=_parse_optional_port,
    type_name="port or `prometheus`",
    expected="a port number from 0 to 65535, or prometheus",
    meaning=(
        "Its own port for the health endpoint; `prometheus` (the default, shown as none) "
        "serves it beside `/metrics` on the Prometheus endpoint, or on 9465 when there is "
        "no Prometheus endpoint."
    ),
    invalid_example="ninety",
)
HEALTH_CHECK_TIMEOUT = Variable(
    name="OTEL_RESILIENCE_HEALTH_CHECK_TIMEOUT",
    default=2.0,
    parse=_parse_positive_seconds,
    type_name=_SECONDS,
    expected=_POSITIVE_SECONDS,
    meaning="How long one health check may take before it counts as failed.",
    invalid_example="-1",
)
HEALTH_CRITICAL_BREAKERS: Variable[tuple[str, ...]] = Variable(
    name="OTEL_RESILIENCE_HEALTH_CRITICAL_BREAKERS",
    default=(),
    parse=_parse_patterns,
    type_name="comma list of patterns",
    expected="breaker name or host patterns separated by commas, such as db.internal,*",
    meaning=(
        "Breakers whose open state makes `/readyz` fail (503) and the report `down`; any "
        "other open breaker makes it `degraded` only."
    ),
    invalid_example="local host",
)

INSTRUMENTATION_NAMES = ("httpx", "psycopg", "psycopg2", "pymysql", "redis", "requests", "sqlite3")
"""Our instrumentations' names, installed or not: what ``OTEL_RESILIENCE_DISABLED`` takes."""

DISABLED = Variable(
    name="OTEL_RESILIENCE_DISABLED",
    default=frozenset({"sqlite3"}),
    parse=_parse_name_list,
    type_name="comma list of instrumentation names, `*` or `none`",
    expected="instrumentation names such as requests,httpx separated by commas, * or none",
    meaning=(
        "Instrumentations whose breakers and retries are turned off (`*`: all, `none`: "
        "none, SQLite's included); their spans "
        "and metrics stay. SQLite has no network, so it is in the default list; a value "
        "replaces the default. An unknown name is reported and left out (a list of only "
        "unknown names keeps the default). To drop an instrumentation entirely, use the "
        "upstream `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`."
    ),
    invalid_example="requests;httpx",
)

RESILIENCE_VARIABLES: tuple[Variable[Any], ...] = (
    SHUTDOWN_TIMEOUT,
    DISABLED,
    BREAKER_CONSECUTIVE_FAILURES,
    BREAKER_FAILURE_RATE,
    BREAKER_SLOW_CALL_RATE,
    BREAKER_SLOW_CALL_DURATION,
    BREAKER_WINDOW_KIND,
    BREAKER_WINDOW_SIZE,
    BREAKER_MINIMUM_CALLS,
    BREAKER_HALF_OPEN_MAX_CALLS,
    BREAKER_RECOVERY_TIMEOUT,
    BREAKER_MAX_RECOVERY_TIMEOUT,
    BREAKER_MAX_BREAKERS,
    BREAKER_EXCLUDED,
    BREAKER_OVERRIDES,
    RETRY_MAX_ATTEMPTS,
    RETRY_INITIAL_BACKOFF,
    RETRY_MAX_BACKOFF,
    RETRY_JITTER,
    RETRY_BUDGET_RATIO,
    DB_RETRY_READ_ONLY,
    REDIS_RETRY_READ_ONLY,
    LOG_FORMAT,
    LOG_LEVEL,
    LOG_OUTPUTS,
    LOG_FILE,
    LOG_FILE_MAX_BYTES,
    LOG_FILE_BACKUP_COUNT,
    LOG_NON_BLOCKING,
    LOG_QUEUE_SIZE,
    LOG_REDACT,
    LOG_FAST_RECORDS,
    LOG_LEAN_RECORDS,
    METRICS_CARDINALITY_LIMIT,
    HEALTH_ENABLED,
    HEALTH_HOST,
    HEALTH_PORT,
    HEALTH_CHECK_TIMEOUT,
    HEALTH_CRITICAL_BREAKERS,
)
"""Every ``OTEL_RESILIENCE_*`` variable, in the order of the README table."""


def markdown_table() -> str:
    """Render :data:`RESILIENCE_VARIABLES` as the README's configuration table."""
    lines = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    lines.extend(
        f"| `{variable.name}` | {variable.type_name} | `{_render_default(variable.default)}` "
        f"| {variable.meaning} |"
        for variable in RESILIENCE_VARIABLES
    )
    return "\n".join(lines)


# --- upstream variables, upstream meaning -------------------------------------------------

_EXPORTER_VARIABLES: dict[Signal, str] = {
    "traces": "OTEL_TRACES_EXPORTER",
    "metrics": "OTEL_METRICS_EXPORTER",
    "logs": "OTEL_LOGS_EXPORTER",
}
_BUILT_IN_EXPORTERS: dict[Signal, tuple[str, ...]] = {
    "traces": ("otlp", "console", "none"),
    "metrics": ("otlp", "prometheus", "console", "none"),
    "logs": ("otlp", "console", "none"),
}
_OTLP_ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
)

PROMETHEUS_HOST = Variable(
    name="OTEL_EXPORTER_PROMETHEUS_HOST",
    default="localhost",
    parse=_parse_host,
    type_name="host",
    expected="a host name or address without spaces or slashes",
    meaning="Address the Prometheus endpoint binds to.",
    invalid_example="local host",
)
PROMETHEUS_PORT = Variable(
    name="OTEL_EXPORTER_PROMETHEUS_PORT",
    default=9464,
    parse=_parse_port,
    type_name="port",
    expected="a port number from 0 to 65535",
    meaning="Port of the Prometheus endpoint.",
    invalid_example="ninety",
)


def _protocol_variable(name: str, default: OtlpProtocol) -> Variable[OtlpProtocol]:
    return Variable(
        name=name,
        default=default,
        parse=_parse_protocol,
        type_name="grpc | http/protobuf",
        expected="grpc or http/protobuf",
        meaning="OTLP transport.",
        invalid_example="carrier-pigeon",
    )


def installed_exporter_names(signal: Signal) -> tuple[str, ...]:
    """Names usable in ``OTEL_<SIGNAL>_EXPORTER``: the built-in ones plus installed plugins.

    Plugins are found the way the upstream SDK finds them, through the
    ``opentelemetry_<signal>_exporter`` entry-point groups, so a third-party exporter
    installed next to us keeps working under our configurator.
    """
    plugins = {entry.name for entry in entry_points(group=f"opentelemetry_{signal}_exporter")}
    return tuple(sorted(plugins.union(_BUILT_IN_EXPORTERS[signal])))


def _read_exporter_names(
    signal: Signal, environ: Mapping[str, str], default: tuple[str, ...]
) -> tuple[str, ...]:
    """Parse a comma list of exporter names, keeping the valid ones.

    An unknown name is reported and left out while the valid names beside it are kept:
    dropping a whole list for one typo would silently lose telemetry the user asked for.
    A list with no valid name at all falls back to the default.
    """
    variable = _EXPORTER_VARIABLES[signal]
    raw = environ.get(variable)
    if raw is None or not raw.strip():
        return default
    requested = [name.strip().lower() for name in raw.split(",") if name.strip()]
    known = installed_exporter_names(signal)
    unknown = [name for name in requested if name not in known]
    valid = tuple(dict.fromkeys(name for name in requested if name in known))
    if unknown:
        _logger.warning(
            "%s=%r names unknown exporter(s) %s: expected a comma list of %s; %s",
            variable,
            raw,
            ", ".join(unknown),
            ", ".join(known),
            f"using {','.join(valid)}"
            if valid
            else f"using the default {_render_default(default)}",
        )
    if not valid:
        return default
    if "none" in valid:
        return ()
    return valid


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """Which exporters each signal uses, and how OTLP and Prometheus are reached."""

    exporters: Mapping[Signal, tuple[str, ...]]
    otlp_protocols: Mapping[Signal, OtlpProtocol]
    prometheus_host: str
    prometheus_port: int
    otlp_endpoint_configured: bool

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ExportSettings:
        """Read the upstream exporter variables, with the embedded defaults described below.

        When no OTLP endpoint is configured anywhere, a newcomer has no collector: the
        default is then metrics on the Prometheus endpoint and no traces or logs export,
        so nothing is spent or logged trying to reach an absent collector. As soon as an
        endpoint is configured, the defaults are upstream's (``otlp`` for every signal).
        """
        endpoint_configured = any(
            environ.get(name, "").strip() for name in _OTLP_ENDPOINT_VARIABLES
        )
        defaults: dict[Signal, tuple[str, ...]] = (
            {"traces": ("otlp",), "metrics": ("otlp",), "logs": ("otlp",)}
            if endpoint_configured
            else {"traces": (), "metrics": ("prometheus",), "logs": ()}
        )
        general_protocol = _protocol_variable("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc").read(environ)
        return cls(
            exporters={
                signal: _read_exporter_names(signal, environ, defaults[signal])
                for signal in SIGNALS
            },
            otlp_protocols={
                signal: _protocol_variable(
                    f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", general_protocol
                ).read(environ)
                for signal in SIGNALS
            },
            prometheus_host=PROMETHEUS_HOST.read(environ),
            prometheus_port=PROMETHEUS_PORT.read(environ),
            otlp_endpoint_configured=endpoint_configured,
        )


# --- the SDK's own variables ----------------------------------------------------------------
# The SDK's constructors read these themselves and raise on a value they reject, which
# cost every signal at once. Here they are validated like ours and the values passed to
# the constructors, so that an invalid one falls back to its upstream default alone.

MAX_MILLISECONDS = int(MAX_SECONDS * 1000)


def _whole_milliseconds(raw: str, minimum: int) -> int:
    """Whole milliseconds, as upstream parses these (with ``int``), up to the maximum."""
    value = int(raw)
    if value < minimum:
        raise ValueError(raw)
    if value > MAX_MILLISECONDS:
        raise _AboveMaximum(MAX_MILLISECONDS)
    return value


def _parse_delay_milliseconds(raw: str) -> int:
    return _whole_milliseconds(raw, 1)


def _parse_timeout_milliseconds(raw: str) -> int:
    return _whole_milliseconds(raw, 0)


def _parse_positive_milliseconds(raw: str) -> float:
    """A positive number of milliseconds, as upstream parses them (with ``float``)."""
    return _bounded(float(raw), maximum=float(MAX_MILLISECONDS), open_below=True)


def _parse_limit(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


_DELAY_EXPECTED = f"a whole number of milliseconds > 0, at most {MAX_MILLISECONDS}"


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """A batch processor's options: spans (``OTEL_BSP_*``) or log records (``OTEL_BLRP_*``)."""

    schedule_delay_millis: int = 5000
    max_queue_size: int = 2048
    max_export_batch_size: int = 512
    export_timeout_millis: int = 30_000


@dataclass(frozen=True, slots=True)
class _BatchVariables:
    schedule_delay: Variable[int]
    max_queue_size: Variable[int]
    max_export_batch_size: Variable[int]
    export_timeout: Variable[int]

    def __iter__(self) -> Iterator[Variable[int]]:
        yield from (
            self.schedule_delay,
            self.max_queue_size,
            self.max_export_batch_size,
            self.export_timeout,
        )

    def read(self, environ: Mapping[str, str]) -> BatchSettings:
        """The options; a batch larger than the queue is lowered to the queue's size.

        Only a batch size the user set is reported: the default one exceeds a queue set
        below 512, and the user asked for nothing wrong there.
        """
        queue = self.max_queue_size.read(environ)
        batch, rejected = self.max_export_batch_size.read_checked(environ)
        if batch > queue:
            raw = environ.get(self.max_export_batch_size.name, "")
            if raw.strip() and not rejected:
                _logger.warning(
                    "%s=%r exceeds the queue size %s (%s): expected at most the queue size; "
                    "using %s",
                    self.max_export_batch_size.name,
                    raw,
                    queue,
                    self.max_queue_size.name,
                    queue,
                )
            batch = queue
        return BatchSettings(
            schedule_delay_millis=self.schedule_delay.read(environ),
            max_queue_size=queue,
            max_export_batch_size=batch,
            export_timeout_millis=self.export_timeout.read(environ),
        )


def _batch_variables(prefix: str, items: str, defaults: BatchSettings) -> _BatchVariables:
    return _BatchVariables(
        schedule_delay=Variable(
            name=f"{prefix}_SCHEDULE_DELAY",
            default=defaults.schedule_delay_millis,
            parse=_parse_delay_milliseconds,
            type_name="milliseconds",
            expected=_DELAY_EXPECTED,
            meaning=f"Delay between two exports of {items}.",
            invalid_example="-1",
        ),
        max_queue_size=Variable(
            name=f"{prefix}_MAX_QUEUE_SIZE",
            default=defaults.max_queue_size,
            parse=_parse_count,
            type_name="integer",
            expected="a whole number >= 1",
            meaning=f"The most {items} waiting for export; more are dropped.",
            invalid_example="0",
        ),
        max_export_batch_size=Variable(
            name=f"{prefix}_MAX_EXPORT_BATCH_SIZE",
            default=defaults.max_export_batch_size,
            parse=_parse_count,
            type_name="integer",
            expected="a whole number >= 1",
            meaning=f"The most {items} in one export.",
            invalid_example="none",
        ),
        export_timeout=Variable(
            name=f"{prefix}_EXPORT_TIMEOUT",
            default=defaults.export_timeout_millis,
            parse=_parse_timeout_milliseconds,
            type_name="milliseconds",
            expected=f"a whole number of milliseconds from 0 to {MAX_MILLISECONDS}",
            meaning=f"How long one export of {items} may take.",
            invalid_example="-5",
        ),
    )


SPAN_BATCH = _batch_variables("OTEL_BSP", "spans", BatchSettings())
LOG_BATCH = _batch_variables("OTEL_BLRP", "log records", BatchSettings(schedule_delay_millis=1000))

METRIC_EXPORT_INTERVAL = Variable(
    name="OTEL_METRIC_EXPORT_INTERVAL",
    default=60_000.0,
    parse=_parse_positive_milliseconds,
    type_name="milliseconds",
    expected=f"a number of milliseconds > 0, at most {MAX_MILLISECONDS}",
    meaning="Time between two exports of the push metric exporters.",
    invalid_example="0",
)
METRIC_EXPORT_TIMEOUT = Variable(
    name="OTEL_METRIC_EXPORT_TIMEOUT",
    default=30_000.0,
    parse=_parse_positive_milliseconds,
    type_name="milliseconds",
    expected=f"a number of milliseconds > 0, at most {MAX_MILLISECONDS}",
    meaning="How long one metric collection and export may take.",
    invalid_example="-1",
)


def _otlp_timeout_variable(name: str, default: float) -> Variable[float]:
    # Seconds, as the Python exporters read them (the specification says milliseconds).
    return Variable(
        name=name,
        default=default,
        parse=_parse_positive_seconds,
        type_name="seconds",
        expected=_POSITIVE_SECONDS,
        meaning="How long one OTLP export may take.",
        invalid_example="ten",
    )


OTLP_TIMEOUT = _otlp_timeout_variable("OTEL_EXPORTER_OTLP_TIMEOUT", 10.0)


def _span_limit_variable(name: str, default: int | None) -> Variable[int | None]:
    return Variable(
        name=name,
        default=default,
        parse=_parse_limit,
        type_name="integer",
        expected="a whole number >= 0",
        meaning="A limit on what one span records (see the SDK's SpanLimits).",
        invalid_example="-1",
    )


# Read by the SDK's TracerProvider, which takes no value for them one by one: it is built
# with the rejected ones hidden (see SdkSettings.rejected_variables).
SPAN_LIMITS: tuple[Variable[int | None], ...] = (
    *(
        _span_limit_variable(name, 128)
        for name in (
            "OTEL_ATTRIBUTE_COUNT_LIMIT",
            "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
            "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
            "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
            "OTEL_SPAN_EVENT_COUNT_LIMIT",
            "OTEL_SPAN_LINK_COUNT_LIMIT",
        )
    ),
    _span_limit_variable("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", None),
    _span_limit_variable("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", None),
)

SDK_VARIABLES: tuple[Variable[Any], ...] = (
    *SPAN_BATCH,
    *LOG_BATCH,
    METRIC_EXPORT_INTERVAL,
    METRIC_EXPORT_TIMEOUT,
    OTLP_TIMEOUT,
    *(
        _otlp_timeout_variable(f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT", 10.0)
        for signal in SIGNALS
    ),
    *SPAN_LIMITS,
)
"""The SDK variables we validate, upstream meaning and defaults kept."""


@dataclass(frozen=True, slots=True)
class SdkSettings:
    """The SDK's batch processors, metric reader and OTLP timeouts, read once like ours.

    ``rejected_variables`` are the SDK variables whose values were rejected: the SDK
    reads some of them itself even when given a value (span limits in ``TracerProvider``,
    a signal's timeout in the gRPC exporters), so it is built with them hidden and falls
    back to its own defaults for them alone.
    """

    span_batch: BatchSettings = BatchSettings()
    log_batch: BatchSettings = BatchSettings(schedule_delay_millis=1000)
    metric_export_interval_millis: float = 60_000.0
    metric_export_timeout_millis: float = 30_000.0
    otlp_timeouts: Mapping[Signal, float] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(SIGNALS, 10.0)
    )
    rejected_variables: frozenset[str] = frozenset()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> SdkSettings:
        rejected = {variable.name for variable in SPAN_LIMITS if variable.read_checked(environ)[1]}
        general_timeout, general_rejected = OTLP_TIMEOUT.read_checked(environ)
        timeouts: dict[Signal, float] = {}
        for signal in SIGNALS:
            variable = _otlp_timeout_variable(
                f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT", general_timeout
            )
            timeouts[signal], signal_rejected = variable.read_checked(environ)
            if signal_rejected:
                rejected.add(variable.name)
        if general_rejected:
            rejected.add(OTLP_TIMEOUT.name)
        return cls(
            span_batch=SPAN_BATCH.read(environ),
            log_batch=LOG_BATCH.read(environ),
            metric_export_interval_millis=METRIC_EXPORT_INTERVAL.read(environ),
            metric_export_timeout_millis=METRIC_EXPORT_TIMEOUT.read(environ),
            otlp_timeouts=timeouts,
            rejected_variables=frozenset(rejected),
        )


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How instrumentations retry by default (see :class:`otel_resilience.Retry`).

    ``max_retries`` counts retries after the first attempt, so ``Retry(max_attempts=...)``
    gets ``max_retries + 1``.
    """

    max_retries: int
    initial_backoff: float
    max_backoff: float
    jitter: Literal["full", "decorrelated", "none"]
    budget_ratio: float


def _breaker_policy(environ: Mapping[str, str]) -> BreakerPolicy:
    """The policy new breakers get; a combination that contradicts itself falls back whole."""
    window_kind = BREAKER_WINDOW_KIND.read(environ)
    try:
        return BreakerPolicy(
            consecutive_failures=BREAKER_CONSECUTIVE_FAILURES.read(environ),
            failure_rate_threshold=BREAKER_FAILURE_RATE.read(environ),
            slow_call_rate_threshold=BREAKER_SLOW_CALL_RATE.read(environ),
            slow_call_duration=BREAKER_SLOW_CALL_DURATION.read(environ),
            window_kind=window_kind,
            window_size=BREAKER_WINDOW_SIZE.read(environ),
            minimum_calls=BREAKER_MINIMUM_CALLS.read(environ),
            half_open_max_calls=BREAKER_HALF_OPEN_MAX_CALLS.read(environ),
            recovery_timeout=BREAKER_RECOVERY_TIMEOUT.read(environ),
            max_recovery_timeout=BREAKER_MAX_RECOVERY_TIMEOUT.read(environ),
        )
    except ValueError as error:
        _logger.warning(
            "%s* variables do not fit together (%s); using the default circuit-breaker policy",
            _BREAKER,
            error,
        )
        return _BREAKER_DEFAULTS


_IGNORED = object()
"""What :func:`_override_field` returns for a field it reported and left out."""


def _breaker_overrides(
    environ: Mapping[str, str], policy: BreakerPolicy
) -> dict[str, BreakerPolicy]:
    """Per-endpoint policies, each field checked by the rules of its variable.

    An invalid field costs one warning and is ignored, as an invalid variable is: the
    entry's other fields still apply, over the configured policy. An entry whose fields
    contradict each other, or whose pattern could never match, is left out whole.
    """
    overrides: dict[str, BreakerPolicy] = {}
    for pattern, fields in BREAKER_OVERRIDES.read(environ).items():
        if not pattern.strip() or any(character.isspace() for character in pattern):
            _logger.warning(
                "%s entry %r is invalid: expected a host or endpoint pattern without spaces; "
                "that entry is left out",
                BREAKER_OVERRIDES.name,
                pattern,
            )
            continue
        accepted: dict[str, Any] = {}
        for name, raw in fields.items():
            value = _override_field(pattern, name, raw)
            if value is not _IGNORED:
                accepted[name] = value
        if not accepted:
            continue  # every field was reported; the configured policy applies
        try:
            overrides[pattern] = dataclasses.replace(policy, **accepted)
        except ValueError as error:
            _logger.warning(
                "%s entry %r does not fit together (%s); that entry is left out",
                BREAKER_OVERRIDES.name,
                pattern,
                error,
            )
    return overrides


def _override_field(pattern: str, name: str, value: object) -> object:
    """The checked value of one override field, or :data:`_IGNORED` after one warning."""
    field = OVERRIDE_FIELDS.get(name)
    if field is None:
        _logger.warning(
            "%s entry %r sets unknown field %r: expected one of %s; that field is ignored",
            BREAKER_OVERRIDES.name,
            pattern,
            name,
            ", ".join(OVERRIDE_FIELDS),
        )
        return _IGNORED
    try:
        return field.check(value)
    except _AboveMaximum as capped:
        _logger.warning(
            "%s entry %r: %s=%s is above the maximum: expected %s; using %s",
            BREAKER_OVERRIDES.name,
            pattern,
            name,
            json.dumps(value),
            field.expected,
            _render_number(capped.maximum),
        )
        return capped.maximum
    except ValueError:
        _logger.warning(
            "%s entry %r: %s=%s is invalid: expected %s; that field is ignored",
            BREAKER_OVERRIDES.name,
            pattern,
            name,
            json.dumps(value),
            field.expected,
        )
        return _IGNORED


def known_instrumentation_names() -> tuple[str, ...]:
    """Names ``OTEL_RESILIENCE_DISABLED`` accepts: ours, plus every installed instrumentor.

    Installed instrumentors are found through the launcher's ``opentelemetry_instrumentor``
    entry-point group, so that an adapter someone else built on our core can be named too.
    """
    installed = {entry.name for entry in entry_points(group="opentelemetry_instrumentor")}
    return tuple(sorted(installed.union(INSTRUMENTATION_NAMES)))


def _resilience_disabled(environ: Mapping[str, str]) -> frozenset[str]:
    """``OTEL_RESILIENCE_DISABLED``, keeping the known names of a list with a typo in it.

    A misspelt name would otherwise turn nothing off and, since a value replaces the
    default list, silently turn SQLite's breakers on; so it is reported and left out, and
    a list with no known name at all keeps the default.
    """
    names = DISABLED.read(environ)
    if names == {"none"}:
        return frozenset()
    if names.issubset(INSTRUMENTATION_NAMES) or names == {"*"}:
        return names  # the usual case, without looking up entry points
    known = known_instrumentation_names()
    unknown = sorted(name for name in names if name != "*" and name not in known)
    if not unknown:
        return names
    valid = names.difference(unknown)
    _logger.warning(
        "%s=%r names unknown instrumentation(s) %s: expected a comma list of %s, * or none; %s",
        DISABLED.name,
        environ.get(DISABLED.name),
        ", ".join(unknown),
        ", ".join(known),
        f"using {_render_default(valid)}"
        if valid
        else f"using the default {_render_default(DISABLED.default)}",
    )
    return valid or DISABLED.default


def _retry_settings(environ: Mapping[str, str]) -> RetrySettings:
    settings = RetrySettings(
        max_retries=RETRY_MAX_ATTEMPTS.read(environ),
        initial_backoff=RETRY_INITIAL_BACKOFF.read(environ),
        max_backoff=RETRY_MAX_BACKOFF.read(environ),
        jitter=RETRY_JITTER.read(environ),
        budget_ratio=RETRY_BUDGET_RATIO.read(environ),
    )
    if settings.initial_backoff > settings.max_backoff:
        _logger.warning(
            "%s=%s exceeds %s=%s: expected the initial backoff to be at most the maximum; "
            "using the defaults %s and %s",
            RETRY_INITIAL_BACKOFF.name,
            settings.initial_backoff,
            RETRY_MAX_BACKOFF.name,
            settings.max_backoff,
            RETRY_INITIAL_BACKOFF.default,
            RETRY_MAX_BACKOFF.default,
        )
        settings = RetrySettings(
            max_retries=settings.max_retries,
            initial_backoff=RETRY_INITIAL_BACKOFF.default,
            max_backoff=RETRY_MAX_BACKOFF.default,
            jitter=settings.jitter,
            budget_ratio=settings.budget_ratio,
        )
    return settings


@dataclass(frozen=True, slots=True)
class LogSettings:
    """How the program's log records are formatted and written (``OTEL_RESILIENCE_LOG_*``)."""

    format: LogFormat = "none"
    level: str | None = None
    outputs: tuple[str, ...] = ("console",)
    file: str | None = None
    file_max_bytes: int | None = None
    file_backup_count: int = 5
    non_blocking: bool = True
    queue_size: int = 10_000
    redact: bool = True
    lean_records: bool = False
    fast_records: bool = True

    @property
    def changes_logging(self) -> bool:
        """Whether these settings ask for anything at all: an output, or a level."""
        return self.format != "none" or self.level is not None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> LogSettings:
        outputs = LOG_OUTPUTS.read(environ)
        file = LOG_FILE.read(environ)
        if "file" in outputs and not file:
            _logger.warning(
                "%s includes file but %s is not set: expected a file path; the file output "
                "is left out",
                LOG_OUTPUTS.name,
                LOG_FILE.name,
            )
            outputs = tuple(name for name in outputs if name != "file") or ("console",)
        return cls(
            format=LOG_FORMAT.read(environ),
            level=LOG_LEVEL.read(environ),
            outputs=outputs,
            file=file,
            file_max_bytes=LOG_FILE_MAX_BYTES.read(environ),
            file_backup_count=LOG_FILE_BACKUP_COUNT.read(environ),
            non_blocking=LOG_NON_BLOCKING.read(environ),
            queue_size=LOG_QUEUE_SIZE.read(environ),
            redact=LOG_REDACT.read(environ),
            lean_records=LOG_LEAN_RECORDS.read(environ),
            fast_records=LOG_FAST_RECORDS.read(environ),
        )


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """Whether and where the health and status endpoint is served (``..._HEALTH_*``)."""

    enabled: bool = False
    host: str = "localhost"
    port: int | None = None
    check_timeout: float = 2.0
    critical_breakers: tuple[str, ...] = ()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> HealthSettings:
        return cls(
            enabled=HEALTH_ENABLED.read(environ),
            host=HEALTH_HOST.read(environ),
            port=HEALTH_PORT.read(environ),
            check_timeout=HEALTH_CHECK_TIMEOUT.read(environ),
            critical_breakers=HEALTH_CRITICAL_BREAKERS.read(environ),
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the distribution reads from the environment, read once at start-up."""

    shutdown_timeout: float
    export: ExportSettings
    sdk_disabled: bool
    breaker_policy: BreakerPolicy
    max_breakers: int
    retry: RetrySettings
    resilience_disabled: frozenset[str]
    breaker_overrides: Mapping[str, BreakerPolicy]
    breaker_excluded: tuple[str, ...]
    db_retry_read_only: bool = False
    redis_retry_read_only: bool = True
    logs: LogSettings = LogSettings()
    health: HealthSettings = HealthSettings()
    metrics_cardinality_limit: int = 2000
    sdk: SdkSettings = SdkSettings()

    def resilience_enabled(self, instrumentation: str) -> bool:
        """Whether ``instrumentation`` (e.g. ``"requests"``) gets breakers and retries."""
        disabled = self.resilience_disabled
        return "*" not in disabled and instrumentation.lower() not in disabled

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse ``environ`` (default: ``os.environ``); never raises for a bad value."""
        source = os.environ if environ is None else environ
        policy = _breaker_policy(source)
        return cls(
            shutdown_timeout=SHUTDOWN_TIMEOUT.read(source),
            export=ExportSettings.from_environment(source),
            sdk_disabled=source.get("OTEL_SDK_DISABLED", "").strip().lower() == "true",
            breaker_policy=policy,
            breaker_overrides=_breaker_overrides(source, policy),
            breaker_excluded=BREAKER_EXCLUDED.read(source),
            max_breakers=BREAKER_MAX_BREAKERS.read(source),
            retry=_retry_settings(source),
            resilience_disabled=_resilience_disabled(source),
            db_retry_read_only=DB_RETRY_READ_ONLY.read(source),
            redis_retry_read_only=REDIS_RETRY_READ_ONLY.read(source),
            logs=LogSettings.from_environment(source),
            health=HealthSettings.from_environment(source),
            metrics_cardinality_limit=METRICS_CARDINALITY_LIMIT.read(source),
            sdk=SdkSettings.from_environment(source),
        )


@cache
def current_settings() -> Settings:
    """The process's settings, read from ``os.environ`` once, so each warning is given once.

    Read at the entry points only: the configurator (which validates and installs them),
    the distro (which passes them to our instrumentors as ``instrument(settings=...)``),
    and an instrumentor used in code without them (:func:`settings_from_options`).
    Components below take what they need as arguments.
    """
    return Settings.from_environment()


def settings_from_options(options: Mapping[str, Any]) -> Settings:
    """The settings an instrumentor was given (``instrument(settings=...)``), or, for one
    used in code without them, the environment's, read once per process."""
    given = options.get("settings")
    if given is None:
        return current_settings()
    if not isinstance(given, Settings):
        raise TypeError(f"settings must be an otel_resilience Settings, not {type(given).__name__}")
    return given
