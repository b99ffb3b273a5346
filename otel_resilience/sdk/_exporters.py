"""Exporters chosen by ``OTEL_<SIGNAL>_EXPORTER``, created lazily and fail-safe.

Exporter modules are imported only when chosen: gRPC alone costs a noticeable share of a
program's start-up, and a program that exports nothing should not pay for it. A name that
is neither built in nor known here is looked up in the upstream entry-point groups
(``opentelemetry_<signal>_exporter``), so third-party exporters keep working.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import Any

from otel_resilience.sdk.settings import ExportSettings, Signal

__all__ = ["create_exporters"]

_logger = logging.getLogger(__name__)

_OTLP_PACKAGES = {
    "grpc": "opentelemetry.exporter.otlp.proto.grpc",
    "http/protobuf": "opentelemetry.exporter.otlp.proto.http",
}
_OTLP_MODULES: dict[Signal, str] = {
    "traces": "trace_exporter:OTLPSpanExporter",
    "metrics": "metric_exporter:OTLPMetricExporter",
}
# Upstream's log exporters with our batch encoder (the same message, a fraction of the time).
_OUR_OTLP_LOG_EXPORTERS = {
    "grpc": "otel_resilience.logs._otlp_grpc_exporter:OTLPLogExporter",
    "http/protobuf": "otel_resilience.logs._otlp_http_exporter:OTLPLogExporter",
}
_CONSOLE_EXPORTERS: dict[Signal, str] = {
    "traces": "opentelemetry.sdk.trace.export:ConsoleSpanExporter",
    "metrics": "opentelemetry.sdk.metrics.export:ConsoleMetricExporter",
    "logs": "otel_resilience._compat:ConsoleLogRecordExporter",
}

# Names that are not push exporters: the configurator builds them as metric readers.
READER_NAMES = frozenset({"prometheus"})


def _load(reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _exporter_class(signal: Signal, name: str, settings: ExportSettings) -> Any:
    if name == "otlp":
        protocol = settings.otlp_protocols[signal]
        if signal == "logs":
            return _load(_OUR_OTLP_LOG_EXPORTERS[protocol])
        return _load(f"{_OTLP_PACKAGES[protocol]}.{_OTLP_MODULES[signal]}")
    if name == "console":
        return _load(_CONSOLE_EXPORTERS[signal])
    for entry in entry_points(group=f"opentelemetry_{signal}_exporter", name=name):
        return entry.load()
    raise LookupError(f"no exporter named {name!r} is installed")


def create_exporters(
    signal: Signal, settings: ExportSettings, *, timeout: float | None = None
) -> list[Any]:
    """Instantiate the push exporters chosen for ``signal``.

    ``timeout`` (seconds, validated from ``OTEL_EXPORTER_OTLP_[<SIGNAL>_]TIMEOUT``) goes to
    the OTLP exporters, which would otherwise parse those variables themselves. One
    exporter that cannot be created (a missing plugin, an upstream variable it rejects)
    costs one warning and is left out; the others and the rest of the set-up go on.
    """
    exporters: list[Any] = []
    for name in settings.exporters[signal]:
        if name in READER_NAMES:
            continue
        options = {"timeout": timeout} if name == "otlp" and timeout is not None else {}
        try:
            exporters.append(_exporter_class(signal, name, settings)(**options))
        except Exception as error:  # fail-safe: any exporter bug must not stop the program
            _logger.warning(
                "The %s exporter %r could not be created (%s: %s); %s go on without it",
                signal,
                name,
                type(error).__name__,
                error,
                signal,
            )
    return exporters
