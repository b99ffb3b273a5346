"""Every environment variable the distribution reads, parsed and validated in one place.

The distribution runs inside programs it does not own, so a mistyped value must never stop
one: each variable is read through :class:`Variable`, which turns an invalid value into one
warning that names the variable, the value and what was expected, and then uses the
default. Keeping all of them here gives the README's configuration table a single source
(:func:`markdown_table`), and a test keeps the two in agreement.

Two families are read:

* ``OTEL_RESILIENCE_*``: ours, listed in :data:`RESILIENCE_VARIABLES`.
* Upstream ``OTEL_*`` variables that keep their upstream meaning (exporter selection,
  OTLP protocol, Prometheus host and port); they are validated the same way so that a
  typo there is reported just as clearly.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, Literal, TypeVar

__all__ = [
    "RESILIENCE_VARIABLES",
    "ExportSettings",
    "Settings",
    "Signal",
    "Variable",
    "markdown_table",
]

_logger = logging.getLogger(__name__)

T = TypeVar("T")

Signal = Literal["traces", "metrics", "logs"]
SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")

OtlpProtocol = Literal["grpc", "http/protobuf"]


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
        raw = environ.get(self.name)
        if raw is None or not raw.strip():
            return self.default
        try:
            return self.parse(raw.strip())
        except ValueError:
            _logger.warning(
                "%s=%r is invalid: expected %s; using the default %s",
                self.name,
                raw,
                self.expected,
                _render_default(self.default),
            )
            return self.default


def _render_default(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value) or "(none)"
    return str(value)


def _parse_seconds(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError(raw)
    return value


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
    type_name="seconds (float)",
    expected="a number of seconds >= 0",
    meaning=(
        "The most a program's exit may wait for the last telemetry to be flushed, even when "
        "the collector is down or hangs; what is not sent by then is dropped with one warning. "
        "0 skips the final flush."
    ),
    invalid_example="soon",
)

RESILIENCE_VARIABLES: tuple[Variable[Any], ...] = (SHUTDOWN_TIMEOUT,)
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


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the distribution reads from the environment, read once at start-up."""

    shutdown_timeout: float
    export: ExportSettings
    sdk_disabled: bool

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse ``environ`` (default: ``os.environ``); never raises for a bad value."""
        source = os.environ if environ is None else environ
        return cls(
            shutdown_timeout=SHUTDOWN_TIMEOUT.read(source),
            export=ExportSettings.from_environment(source),
            sdk_disabled=source.get("OTEL_SDK_DISABLED", "").strip().lower() == "true",
        )
