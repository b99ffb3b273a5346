"""What the configurator installed in this process, for whoever asks after it.

A leaf: the providers module writes it once, and readers (the health report's identity,
programs and tools through ``otel_resilience.installed_telemetry``) read it without
importing the provider machinery, so the health package and the SDK assembly do not import
each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from otel_resilience._compat import SdkLoggerProvider
    from otel_resilience.sdk._shutdown import BoundedShutdown

__all__ = ["InstalledTelemetry", "installed_telemetry", "remember_installed"]


@dataclass(frozen=True, slots=True)
class InstalledTelemetry:
    """What the configurator installed, for programs and tools that want to point at it."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: SdkLoggerProvider
    resource: Resource
    exporters: dict[str, tuple[str, ...]]
    prometheus_url: str | None
    shutdown: BoundedShutdown
    health_url: str | None = None


_installed: InstalledTelemetry | None = None


def installed_telemetry() -> InstalledTelemetry | None:
    """The providers the configurator installed in this process, or ``None``."""
    return _installed


def remember_installed(installed: InstalledTelemetry) -> None:
    """Record the one installation of this process (the providers module calls it once)."""
    global _installed  # noqa: PLW0603 - one installation per process is the point
    _installed = installed
