"""otel-resilience: an OpenTelemetry distribution for resilient, observable outgoing calls.

Run a program unchanged under ``opentelemetry-instrument`` to get it all, configured by
environment variables (see the README's configuration table), or use the pieces below as a
library.
"""

from otel_resilience._providers import InstalledTelemetry, installed_telemetry
from otel_resilience._version import __version__

__all__ = ["InstalledTelemetry", "__version__", "installed_telemetry"]
