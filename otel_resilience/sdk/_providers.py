"""Build and install the tracer, meter and logger providers from :class:`Settings`.

This is the one place where the SDK is assembled. It is written to be called once per
process by the configurator, never to raise for configuration reasons (each exporter or
endpoint that cannot be set up costs one warning), and to leave the program's own logging
configuration alone: it adds a handler for OTLP logs, it changes no level or format.

The SDK's constructors read their own variables (``OTEL_BSP_*``, ``OTEL_BLRP_*``,
``OTEL_METRIC_EXPORT_*``, OTLP timeouts, span limits) and raise on a value they reject,
which would cost every signal. They get the values :mod:`config` validated instead, and
the variables it rejected are hidden from them while they are built.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import uuid
from collections.abc import Iterator, Set
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_resilience._compat import BatchLogRecordProcessor, SdkLoggerProvider, set_logger_provider
from otel_resilience._version import __version__
from otel_resilience.health._exports import record_export_outcomes
from otel_resilience.metrics._otlp import RegistryMetricReader
from otel_resilience.sdk._exporters import create_exporters
from otel_resilience.sdk._installed import (
    InstalledTelemetry,
    installed_telemetry,
    remember_installed,
)
from otel_resilience.sdk._shutdown import BoundedShutdown
from otel_resilience.sdk._views import duration_views
from otel_resilience.sdk.settings import BatchSettings, Settings

if TYPE_CHECKING:
    from otel_resilience.sdk._endpoint_server import EndpointServer
    from otel_resilience.sdk._prometheus import PrometheusEndpoint

__all__ = ["InstalledTelemetry", "build_resource", "install_providers", "installed_telemetry"]

_logger = logging.getLogger(__name__)

DISTRO_NAME = "otel-resilience"

# Where the health routes go when OTEL_RESILIENCE_HEALTH_PORT is not set and there is no
# Prometheus endpoint to share: the port after Prometheus' 9464.
HEALTH_FALLBACK_PORT = 9465


def build_resource() -> Resource:
    """The process's resource: upstream variables and detectors, plus who we are.

    ``service.instance.id`` is added when the user did not set one, because dashboards and
    alerts aggregate across processes of one service by it.
    """
    resource = Resource.create(
        {"telemetry.distro.name": DISTRO_NAME, "telemetry.distro.version": __version__}
    )
    if "service.instance.id" not in resource.attributes:
        resource = resource.merge(Resource({"service.instance.id": str(uuid.uuid4())}))
    return resource


def _metric_readers(
    settings: Settings, resource: Resource
) -> tuple[list[MetricReader], PrometheusEndpoint | None]:
    # Push exporters get the registries' instruments in the same batches as the SDK's;
    # the Prometheus endpoint renders the registries itself (see _prometheus.py).
    sdk = settings.sdk
    readers: list[MetricReader] = [
        RegistryMetricReader(
            record_export_outcomes("metrics", exporter),
            resource,
            export_interval_millis=sdk.metric_export_interval_millis,
            export_timeout_millis=sdk.metric_export_timeout_millis,
        )
        for exporter in create_exporters(
            "metrics", settings.export, timeout=sdk.otlp_timeouts["metrics"]
        )
    ]
    endpoint = None
    if "prometheus" in settings.export.exporters["metrics"]:
        # Imported when chosen, as the exporters are: it brings an HTTP server.
        from otel_resilience.sdk._prometheus import start_prometheus_endpoint

        endpoint = start_prometheus_endpoint(
            settings.export.prometheus_host,
            settings.export.prometheus_port,
            resource_attributes=resource.attributes,
        )
        if endpoint is not None:
            readers.append(endpoint.reader)
    return readers, endpoint


def _health_endpoint(
    settings: Settings, prometheus: PrometheusEndpoint | None
) -> EndpointServer | None:
    """The server of ``/healthz``, ``/readyz`` and ``/status``, when they are enabled.

    By default they share the Prometheus endpoint's server, so that one port is exposed,
    scraped and probed; with ``OTEL_RESILIENCE_HEALTH_PORT`` set, or without a Prometheus
    endpoint, they get a server of their own (a taken port costs one warning).
    """
    health = settings.health
    if not health.enabled:
        return None
    from otel_resilience.health._routes import install_health_routes
    from otel_resilience.sdk._endpoint_server import start_endpoint_server

    if health.port is None and prometheus is not None:
        server: EndpointServer | None = prometheus.server
    else:
        port = HEALTH_FALLBACK_PORT if health.port is None else health.port
        server = start_endpoint_server(health.host, port)
    if server is not None:
        install_health_routes(server, health)
    return server


@contextlib.contextmanager
def _hidden_from_the_sdk(names: Set[str]) -> Iterator[None]:
    """Take ``names`` out of ``os.environ`` meanwhile, so the SDK uses its defaults for them.

    Only variables whose values were rejected (and reported) are hidden, so in the usual
    case nothing is touched; they are back before the program's own code runs.
    """
    hidden = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(hidden)


_Processor = TypeVar("_Processor", BatchSpanProcessor, BatchLogRecordProcessor)


def _batched(processor: type[_Processor], exporter: Any, batch: BatchSettings) -> _Processor:
    """A batch processor of spans or log records, with the values :mod:`config` validated."""
    return processor(
        exporter,
        max_queue_size=batch.max_queue_size,
        schedule_delay_millis=batch.schedule_delay_millis,
        max_export_batch_size=batch.max_export_batch_size,
        export_timeout_millis=batch.export_timeout_millis,
    )


def install_providers(settings: Settings) -> InstalledTelemetry:
    """Create the providers, register them globally and arrange a bounded flush at exit."""
    installed = installed_telemetry()
    if installed is not None:
        return installed

    resource = build_resource()
    shutdown = BoundedShutdown(settings.shutdown_timeout)

    sdk = settings.sdk
    with _hidden_from_the_sdk(sdk.rejected_variables):
        tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        for span_exporter in create_exporters(
            "traces", settings.export, timeout=sdk.otlp_timeouts["traces"]
        ):
            tracer_provider.add_span_processor(
                _batched(
                    BatchSpanProcessor,
                    record_export_outcomes("traces", span_exporter),
                    sdk.span_batch,
                )
            )

        readers, prometheus = _metric_readers(settings, resource)
        meter_provider = MeterProvider(
            metric_readers=readers,
            resource=resource,
            views=duration_views(),
            shutdown_on_exit=False,
        )

        logger_provider = SdkLoggerProvider(resource=resource, shutdown_on_exit=False)
        log_exporters: list[Any] = [
            record_export_outcomes("logs", log_exporter)
            for log_exporter in create_exporters(
                "logs", settings.export, timeout=sdk.otlp_timeouts["logs"]
            )
        ]
        for log_exporter in log_exporters:
            logger_provider.add_log_record_processor(
                _batched(BatchLogRecordProcessor, log_exporter, sdk.log_batch)
            )

    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    set_logger_provider(logger_provider)
    if log_exporters:
        from otel_resilience.logs._bridge import attach_log_bridge

        attach_log_bridge(logger_provider, redact=settings.logs.redact)

    shutdown.add("traces", tracer_provider.shutdown)
    shutdown.add("metrics", meter_provider.shutdown)
    shutdown.add("logs", logger_provider.shutdown)
    atexit.register(shutdown.run)
    health = _health_endpoint(settings, prometheus)

    installed = InstalledTelemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        resource=resource,
        exporters={signal: names for signal, names in settings.export.exporters.items()},
        prometheus_url=prometheus.url if prometheus is not None else None,
        shutdown=shutdown,
        health_url=health.url if health is not None else None,
    )
    remember_installed(installed)
    _logger.debug("otel-resilience installed %s", installed)
    return installed
