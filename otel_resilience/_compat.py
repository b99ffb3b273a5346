"""Every use of OpenTelemetry internals, and every restatement of upstream behaviour.

We reach past the public API in a few places, for speed on hot paths and because some
pieces (the logs SDK, the configurator base class, the exporters' hooks) have no public
form yet. Anything of upstream's that is private, whether an underscore name, a name in an
underscore module (``opentelemetry._logs``, ``opentelemetry.sdk._logs``, the exporters'
``_log_exporter`` packages) or a private attribute of an SDK object, is used only here.
So is every function that does what an upstream function does (resolve an endpoint,
name a Prometheus family, format ``traceparent``). Each entry says which public behaviour
it stands for and was checked against the pinned releases: opentelemetry-api, -sdk and
-exporter-otlp-proto-* 1.45.1, opentelemetry-instrumentation and
-exporter-prometheus 0.66b1. ``tests/unit/test_compat_parity.py`` holds one test per
entry, named after it, that checks it against that public behaviour, so an SDK upgrade
changes this file and fails the tests of the entries it broke.

Importing this module imports nothing from upstream: each name is imported on first use
(PEP 562 ``__getattr__``), so that the launcher, a library user and an optional path (the
Prometheus endpoint, an OTLP log exporter) each pay only for what they use. It imports
nothing from ``otel_resilience`` either, so that any module can import it.
"""

from __future__ import annotations

import functools
import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Literal, cast

if TYPE_CHECKING:
    # The names ``__getattr__`` imports on first use, spelled out for type checkers;
    # test_compat_parity checks that this list and _UPSTREAM name the same objects.
    from opentelemetry._logs import Logger as ApiLogger
    from opentelemetry._logs import LoggerProvider as ApiLoggerProvider
    from opentelemetry._logs import LogRecord as ApiLogRecord
    from opentelemetry._logs import (
        NoOpLogger,
        SeverityNumber,
        get_logger_provider,
        set_logger_provider,
    )
    from opentelemetry.attributes import BoundedAttributes as _BoundedAttributes
    from opentelemetry.baggage import _BAGGAGE_KEY as BAGGAGE_KEY
    from opentelemetry.context import (
        _SUPPRESS_HTTP_INSTRUMENTATION_KEY as SUPPRESS_HTTP_INSTRUMENTATION_KEY,
    )
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY as SUPPRESS_INSTRUMENTATION_KEY
    from opentelemetry.context import Context
    from opentelemetry.exporter.otlp.proto.common._internal import (
        _encode_value as encode_any_value,
    )
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
        OTLPLogExporter as UpstreamOtlpGrpcLogExporter,
    )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as UpstreamOtlpHttpLogExporter,
    )
    from opentelemetry.instrumentation.utils import (
        _SUPPRESS_INSTRUMENTATION_KEY_PLAIN as SUPPRESS_INSTRUMENTATION_KEY_PLAIN,
    )
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.sdk._configuration import _BaseConfigurator as BaseConfigurator
    from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk._logs.export import (
        BatchLogRecordProcessor,
        ConsoleLogRecordExporter,
        LogRecordExporter,
        LogRecordExportResult,
    )
    from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricReader, MetricsData
    from opentelemetry.trace.propagation import _SPAN_KEY as SPAN_KEY
    from opentelemetry.util._importlib_metadata import entry_points as launcher_entry_points

__all__ = [
    "BAGGAGE_KEY",
    "SPAN_KEY",
    "SUPPRESS_HTTP_INSTRUMENTATION_KEY",
    "SUPPRESS_INSTRUMENTATION_KEY",
    "SUPPRESS_INSTRUMENTATION_KEY_PLAIN",
    "ApiLogRecord",
    "ApiLogger",
    "ApiLoggerProvider",
    "BaseConfigurator",
    "BatchLogRecordProcessor",
    "ConsoleLogRecordExporter",
    "LogRecordExportResult",
    "LogRecordExporter",
    "NoOpLogger",
    "ReadableLogRecord",
    "SdkLoggerProvider",
    "SeverityNumber",
    "UpstreamOtlpGrpcLogExporter",
    "UpstreamOtlpHttpLogExporter",
    "advised_bucket_boundaries",
    "collect_merged",
    "encode_any_value",
    "export_logs_over_http",
    "get_logger_provider",
    "http_instrumentation_suppressed",
    "instrumentation_suppressed",
    "launcher_entry_points",
    "otlp_endpoint",
    "plain_attributes",
    "prometheus_family_name",
    "prometheus_label_name",
    "propagators_run_by",
    "set_logger_provider",
    "temporality_preferences",
    "traceparent",
]

_UPSTREAM: Final[dict[str, tuple[str, str]]] = {
    # --- context keys: read and written directly where a function call per request counts
    #
    # trace.set_span_in_context(span) stores the span under it, trace.get_current_span()
    # reads it. Checked: api 1.45.1.
    "SPAN_KEY": ("opentelemetry.trace.propagation", "_SPAN_KEY"),
    # baggage.set_baggage() stores the baggage under it, baggage.get_all() reads it.
    # Checked: api 1.45.1.
    "BAGGAGE_KEY": ("opentelemetry.baggage", "_BAGGAGE_KEY"),
    # instrumentation.utils.suppress_instrumentation() sets it (with the plain key below)
    # and is_instrumentation_enabled() reads it; the SDK's batch processors set it around
    # each export. Checked: api 1.45.1, instrumentation 0.66b1.
    "SUPPRESS_INSTRUMENTATION_KEY": ("opentelemetry.context", "_SUPPRESS_INSTRUMENTATION_KEY"),
    # The same suppression under its older, plain-string key: set and read beside the one
    # above by the same two functions. Checked: instrumentation 0.66b1.
    "SUPPRESS_INSTRUMENTATION_KEY_PLAIN": (
        "opentelemetry.instrumentation.utils",
        "_SUPPRESS_INSTRUMENTATION_KEY_PLAIN",
    ),
    # suppress_http_instrumentation() sets it, is_http_instrumentation_enabled() reads it.
    # Checked: api 1.45.1, instrumentation 0.66b1.
    "SUPPRESS_HTTP_INSTRUMENTATION_KEY": (
        "opentelemetry.context",
        "_SUPPRESS_HTTP_INSTRUMENTATION_KEY",
    ),
    # --- the logs API (an underscore package: it may still change) -----------------------
    #
    # The global logger provider: what set_logger_provider() installs, get_logger_provider()
    # returns, and loggers taken from the global proxy before it was set then use.
    # Checked: api 1.45.1.
    "set_logger_provider": ("opentelemetry._logs", "set_logger_provider"),
    "get_logger_provider": ("opentelemetry._logs", "get_logger_provider"),
    # The API types the SDK's provider, logger and records implement: SDK providers are
    # ApiLoggerProviders, their loggers ApiLoggers, which emit ApiLogRecords with a
    # SeverityNumber; a disabled SDK (OTEL_SDK_DISABLED) hands out NoOpLoggers.
    # Checked: api and sdk 1.45.1.
    "ApiLoggerProvider": ("opentelemetry._logs", "LoggerProvider"),
    "ApiLogger": ("opentelemetry._logs", "Logger"),
    "ApiLogRecord": ("opentelemetry._logs", "LogRecord"),
    "SeverityNumber": ("opentelemetry._logs", "SeverityNumber"),
    "NoOpLogger": ("opentelemetry._logs", "NoOpLogger"),
    # --- the logs SDK (opentelemetry.sdk._logs: documented, but underscore-named) ----------
    #
    # A provider whose processors hand exporters batches of ReadableLogRecords, each
    # export answered with a LogRecordExportResult. Checked: sdk 1.45.1.
    "SdkLoggerProvider": ("opentelemetry.sdk._logs", "LoggerProvider"),
    "ReadableLogRecord": ("opentelemetry.sdk._logs", "ReadableLogRecord"),
    "BatchLogRecordProcessor": ("opentelemetry.sdk._logs.export", "BatchLogRecordProcessor"),
    "LogRecordExporter": ("opentelemetry.sdk._logs.export", "LogRecordExporter"),
    "LogRecordExportResult": ("opentelemetry.sdk._logs.export", "LogRecordExportResult"),
    # OTEL_LOGS_EXPORTER=console: each record as JSON on standard output. Checked: sdk 1.45.1.
    "ConsoleLogRecordExporter": ("opentelemetry.sdk._logs.export", "ConsoleLogRecordExporter"),
    # --- OTLP log export ---------------------------------------------------------------------
    #
    # The OTLP log exporters OTEL_LOGS_EXPORTER=otlp stands for, by protocol. Ours subclass
    # them; the gRPC one sends what its _translate_data(batch) returns (the hook ours
    # overrides). Checked: exporter-otlp-proto-grpc and -http 1.45.1.
    "UpstreamOtlpGrpcLogExporter": (
        "opentelemetry.exporter.otlp.proto.grpc._log_exporter",
        "OTLPLogExporter",
    ),
    "UpstreamOtlpHttpLogExporter": (
        "opentelemetry.exporter.otlp.proto.http._log_exporter",
        "OTLPLogExporter",
    ),
    # A value as the OTLP exporters encode an attribute value or a body (an AnyValue
    # message), raising for a type they refuse. Checked: exporter-otlp-proto-common 1.45.1.
    "encode_any_value": ("opentelemetry.exporter.otlp.proto.common._internal", "_encode_value"),
    # (Public; needed by plain_attributes.)
    "_BoundedAttributes": ("opentelemetry.attributes", "BoundedAttributes"),
    # --- the launcher ----------------------------------------------------------------------
    #
    # What opentelemetry-instrument calls through the opentelemetry_configurator entry
    # points: configure(**kwargs), which calls _configure(**kwargs); the SDK's own
    # configurator subclasses it. Checked: sdk 1.45.1, instrumentation 0.66b1.
    "BaseConfigurator": ("opentelemetry.sdk._configuration", "_BaseConfigurator"),
    # The entry-point look-up opentelemetry-instrument itself uses (cached, and normalised
    # across Pythons), so that what we report is what the launcher finds.
    # Checked: api 1.45.1, instrumentation 0.66b1.
    "launcher_entry_points": ("opentelemetry.util._importlib_metadata", "entry_points"),
}
"""Upstream names imported on first use: our name -> (module, upstream name)."""


# --- suppression: is_instrumentation_enabled() and its HTTP variant, read from a context --
#
# Instrumented calls read the context once and test it here, rather than calling upstream's
# functions, which look the current context up again for each key.


def _instrumentation_suppressed(current: Context) -> bool:
    """``not is_instrumentation_enabled()`` in ``current``. Checked: instrumentation 0.66b1."""
    return bool(
        current.get(SUPPRESS_INSTRUMENTATION_KEY) or current.get(SUPPRESS_INSTRUMENTATION_KEY_PLAIN)
    )


def _http_instrumentation_suppressed(current: Context) -> bool:
    """``not is_http_instrumentation_enabled()`` in ``current``. Checked: instrumentation
    0.66b1."""
    return bool(
        current.get(SUPPRESS_INSTRUMENTATION_KEY)
        or current.get(SUPPRESS_INSTRUMENTATION_KEY_PLAIN)
        or current.get(SUPPRESS_HTTP_INSTRUMENTATION_KEY)
    )


# --- propagation --------------------------------------------------------------------------


def propagators_run_by(textmap: TextMapPropagator) -> tuple[TextMapPropagator, ...]:
    """The propagators ``textmap`` runs, in order: a ``CompositePropagator``'s members (the
    global propagator ``OTEL_PROPAGATORS`` builds), else ``textmap`` itself.

    Checked: api 1.45.1 (``CompositePropagator._propagators``).
    """
    from opentelemetry.propagators.composite import CompositePropagator

    if type(textmap) is CompositePropagator:
        return tuple(textmap._propagators)
    return (textmap,)


_TRACE_FLAGS_SUFFIX: Final = tuple(f"-{flags:02x}" for flags in range(256))
"""``traceparent``'s last field, with its dash, for each value of the flags byte."""


def traceparent(trace_id: int, span_id: int, trace_flags: int) -> str:
    """The ``traceparent`` header the W3C trace-context propagator writes for a valid span
    context with these ids and flags.

    Written from the ids' bytes, which costs less than upstream's ``format``; ids out of
    range (negative, or too long) are written as upstream writes them. Checked: api 1.45.1.
    """
    flags = _TRACE_FLAGS_SUFFIX[trace_flags] if 0 <= trace_flags < 256 else f"-{trace_flags:02x}"
    try:
        return f"00-{trace_id.to_bytes(16, 'big').hex()}-{span_id.to_bytes(8, 'big').hex()}{flags}"
    except OverflowError:
        return f"00-{trace_id:032x}-{span_id:016x}-{trace_flags:02x}"


# --- OTLP log export ------------------------------------------------------------------------


def _plain_attributes(attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    """The dict behind the SDK's ``BoundedAttributes`` (a log record's attributes), which
    yields the same items in the same order, several times faster than the mapping's
    ``items()`` through the ``Mapping`` ABC; any other mapping as it is.

    Checked: api 1.45.1 (``BoundedAttributes._dict``).
    """
    if type(attributes) is _BoundedAttributes:
        return attributes._dict
    return attributes


# Upstream's logger: its records about exports are what a user already filters or reads.
_http_log_exporter_logger = logging.getLogger(
    "opentelemetry.exporter.otlp.proto.http._log_exporter"
)


def export_logs_over_http(
    exporter: UpstreamOtlpHttpLogExporter,
    batch: Sequence[ReadableLogRecord],
    encode: Callable[[Sequence[ReadableLogRecord]], bytes],
) -> LogRecordExportResult:
    """Upstream's OTLP/HTTP ``OTLPLogExporter.export``, with ``encode`` writing the request.

    Upstream's method calls its encoder by module name, so it is restated here around the
    one given: the same shut-down check, request-size limit, transport, exporter metrics
    and log records. Checked: exporter-otlp-proto-http 1.45.1.
    """
    from opentelemetry.exporter.otlp.proto.http._common import (
        RequestPayloadTooLargeError,
        _is_request_too_large,
    )
    from opentelemetry.sdk._logs.export import LogRecordExportResult
    from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

    logger = _http_log_exporter_logger
    if exporter._shutdown:
        logger.warning("Exporter already shutdown, ignoring batch")
        return LogRecordExportResult.FAILURE

    with exporter._metrics.export_operation(len(batch)) as result:
        try:
            serialized_data = encode(batch)
        except Exception as error:  # as upstream: the batch fails, the program goes on
            logger.error("Failed to encode logs batch: %s", error)
            result.error = error
            return LogRecordExportResult.FAILURE

        limit = exporter._max_request_size
        if _is_request_too_large(serialized_data, limit):
            logger.warning(
                "Dropping logs batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                len(serialized_data),
                limit,
            )
            result.error = RequestPayloadTooLargeError(
                f"Serialized logs request size {len(serialized_data)} bytes exceeds "
                f"max_request_size {limit} bytes."
            )
            return LogRecordExportResult.FAILURE

        export_result = exporter._client.export(serialized_data)
        if not export_result.success:
            result.error = export_result.error
            result.error_attrs = (
                {HTTP_RESPONSE_STATUS_CODE: export_result.status_code}
                if export_result.status_code is not None
                else None
            )
            return LogRecordExportResult.FAILURE
    return LogRecordExportResult.SUCCESS


# --- metrics --------------------------------------------------------------------------------


@functools.cache
def _prometheus_mapping() -> ModuleType:
    # Imported on the first Prometheus rendering, not with this module: the exporter's
    # package brings in prometheus_client and the SDK's metric readers, tens of
    # milliseconds of start-up that a program whose metrics go elsewhere never needs.
    return importlib.import_module("opentelemetry.exporter.prometheus._mapping")


def prometheus_family_name(name: str, unit: str, *, counter: bool = False) -> str:
    """The metric family name the OpenTelemetry Prometheus exporter gives this instrument.

    Without the ``_total`` a counter's samples add, like prometheus_client's families.
    Checked: exporter-prometheus 0.66b1 (``_mapping``).
    """
    mapping = _prometheus_mapping()
    family: str = mapping.sanitize_full_name(name)
    if counter and family.endswith("_total"):
        family = family[: -len("_total")]
    suffix: str = mapping.map_unit(unit)
    if suffix and not family.endswith("_" + suffix):
        family = f"{family}_{suffix}"
    return family


def prometheus_label_name(key: str) -> str:
    """An attribute key as the Prometheus exporter writes it as a label name.

    Checked: exporter-prometheus 0.66b1 (``_mapping``).
    """
    label: str = _prometheus_mapping().sanitize_attribute(key)
    return label


def temporality_preferences(reader: MetricReader) -> Mapping[type[Any], AggregationTemporality]:
    """The temporality ``reader`` asks of each instrument type, keyed by the SDK's own
    instrument classes (the classes of what a meter creates, subclasses of the public ones).

    Checked: sdk 1.45.1 (``MetricReader._instrument_class_temporality``).
    """
    return reader._instrument_class_temporality


def collect_merged(
    reader: MetricReader,
    merge: Callable[[MetricsData | None], MetricsData | None],
    timeout_millis: float = 10_000,
) -> None:
    """``MetricReader.collect``, with ``merge`` between the SDK's collection and the export.

    ``merge`` gets what the SDK collected (``None`` when none of its instruments has data)
    and returns what the reader exports (``None``: nothing). A reader not yet registered
    with a provider gets upstream's warning and collects nothing, as upstream's ``collect``
    does. Checked: sdk 1.45.1 (``_collect``, ``_metrics``, ``_receive_metrics``).
    """
    from opentelemetry.sdk.metrics.export import MetricReader

    # Upstream annotates the callback loosely: it takes the reader and a timeout, and
    # returns MetricsData or None.
    collect = cast("Callable[..., MetricsData | None] | None", reader._collect)
    if collect is None:
        MetricReader.collect(reader, timeout_millis=timeout_millis)  # upstream's warning
        return
    started = time.perf_counter()
    try:
        collected = collect(reader, timeout_millis=timeout_millis)
    finally:
        reader._metrics.record_collection(time.perf_counter() - started)
    data = merge(collected)
    if data is not None:
        reader._receive_metrics(data, timeout_millis=timeout_millis)


def advised_bucket_boundaries(instrument: object) -> Sequence[float] | None:
    """The bucket boundaries a histogram was created with through
    ``explicit_bucket_boundaries_advisory``, which the SDK uses when no view sets others;
    ``None`` when it advised none (or is not an SDK histogram).

    Checked: sdk 1.45.1 (``_advisory``).
    """
    advisory = getattr(instrument, "_advisory", None)
    boundaries: Sequence[float] | None = getattr(advisory, "explicit_bucket_boundaries", None)
    return boundaries


# --- the launcher's exporters ---------------------------------------------------------------


def otlp_endpoint(
    signal: Literal["traces", "metrics", "logs"], protocol: str, environ: Mapping[str, str]
) -> str:
    """The endpoint an upstream OTLP exporter of ``signal`` resolves from ``environ``.

    HTTP appends the signal's path to the general endpoint; gRPC takes it as it is (its
    exporter then connects to the URL's host and port). Checked: exporter-otlp-proto-grpc
    and -http 1.45.1.
    """
    endpoint = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    if endpoint:
        return endpoint
    if protocol == "grpc":
        return environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317")
    general = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318"
    return f"{general.removesuffix('/')}/v1/{signal}"


# --- first use --------------------------------------------------------------------------------

_MIRRORS_OF_UPSTREAM_NAMES: Final[dict[str, tuple[Callable[..., Any], tuple[str, ...]]]] = {
    "instrumentation_suppressed": (
        _instrumentation_suppressed,
        ("SUPPRESS_INSTRUMENTATION_KEY", "SUPPRESS_INSTRUMENTATION_KEY_PLAIN"),
    ),
    "http_instrumentation_suppressed": (
        _http_instrumentation_suppressed,
        (
            "SUPPRESS_INSTRUMENTATION_KEY",
            "SUPPRESS_INSTRUMENTATION_KEY_PLAIN",
            "SUPPRESS_HTTP_INSTRUMENTATION_KEY",
        ),
    ),
    "plain_attributes": (_plain_attributes, ("_BoundedAttributes",)),
}
"""Functions of this module that read upstream names as globals, for speed: each is handed
out only once the names it reads are imported."""

if TYPE_CHECKING:
    instrumentation_suppressed = _instrumentation_suppressed
    http_instrumentation_suppressed = _http_instrumentation_suppressed
    plain_attributes = _plain_attributes
else:

    def __getattr__(name: str) -> Any:
        """Import an upstream name on first use, then keep it as a global of this module."""
        if name in _UPSTREAM:
            module_name, upstream_name = _UPSTREAM[name]
            value = getattr(importlib.import_module(module_name), upstream_name)
        elif name in _MIRRORS_OF_UPSTREAM_NAMES:
            value, needed = _MIRRORS_OF_UPSTREAM_NAMES[name]
            for upstream in needed:
                __getattr__(upstream)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_UPSTREAM, *_MIRRORS_OF_UPSTREAM_NAMES})
