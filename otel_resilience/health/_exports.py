"""Whether telemetry is leaving the process: the exporters' recent results, per signal.

The SDK's batch processors and metric readers swallow export failures (they log and move
on), so nothing else can tell that the collector has been unreachable for ten minutes. The
configurator wraps each push exporter in an :class:`ExportOutcomeRecorder`, which passes
every call through unchanged and notes the result of each ``export``: one lock and a few
assignments per batch, not per span.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_resilience._compat import LogRecordExporter, LogRecordExportResult, ReadableLogRecord
from otel_resilience._fork import unlock_after_fork
from otel_resilience.health._status import CheckResult
from otel_resilience.sdk.settings import Signal

__all__ = [
    "ExportOutcomes",
    "RecordingLogExporter",
    "RecordingMetricExporter",
    "RecordingSpanExporter",
    "SignalExports",
    "export_outcomes",
    "record_export_outcomes",
]

_logger = logging.getLogger(__name__)

_Result = TypeVar("_Result")


@dataclass(frozen=True, slots=True)
class SignalExports:
    """What is known of one signal's exports; times are ``time.monotonic()`` values."""

    signal: str
    last_success: float | None
    last_failure: float | None
    consecutive_failures: int
    last_error: str | None


class ExportOutcomes:
    """The latest export results of every signal, fed by the recording exporters."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        unlock_after_fork(self, "_lock")
        self._signals: dict[str, SignalExports] = {}

    def record(self, signal: str, succeeded: bool, error: str | None = None) -> None:
        """Note one export's result."""
        now = self._clock()
        with self._lock:
            previous = self._signals.get(signal) or SignalExports(signal, None, None, 0, None)
            if succeeded:
                current = SignalExports(signal, now, previous.last_failure, 0, previous.last_error)
            else:
                current = SignalExports(
                    signal,
                    previous.last_success,
                    now,
                    previous.consecutive_failures + 1,
                    error,
                )
            self._signals[signal] = current

    def snapshot(self) -> list[SignalExports]:
        """Every signal that exported at least once, by name."""
        with self._lock:
            return sorted(self._signals.values(), key=lambda exports: exports.signal)

    def check(self) -> CheckResult:
        """``degraded`` while a signal's latest export failed: telemetry is being lost.

        Not ``down``: a program that cannot export still serves its users, and taking it
        out of rotation because the collector is away would turn an observability outage
        into a real one.
        """
        now = self._clock()
        signals = self.snapshot()
        if not signals:
            return CheckResult.ok("no export attempted yet")
        failing = [exports for exports in signals if exports.consecutive_failures]
        if not failing:
            return CheckResult.ok(
                "latest exports succeeded: " + ", ".join(exports.signal for exports in signals)
            )
        return CheckResult.degraded("; ".join(_describe_failure(e, now) for e in failing))


def _describe_failure(exports: SignalExports, now: float) -> str:
    success = (
        "never succeeded"
        if exports.last_success is None
        else f"last success {now - exports.last_success:.0f}s ago"
    )
    error = f" ({exports.last_error})" if exports.last_error else ""
    return (
        f"{exports.signal}: the last {exports.consecutive_failures} export(s) failed{error}, "
        f"{success}"
    )


_default = ExportOutcomes()


def export_outcomes() -> ExportOutcomes:
    """The process's export results, those the ``exporters`` health check reads."""
    return _default


def _outcome(result: object, exporter: object) -> tuple[bool, str | None]:
    # SpanExportResult, MetricExportResult and LogRecordExportResult all name success SUCCESS.
    name = getattr(result, "name", None)
    if name == "SUCCESS":
        return True, None
    return False, f"{type(exporter).__name__} returned {name if name else repr(result)}"


class _Recording:
    """What the three recorders share: the wrapped exporter and where results go."""

    _signal: Signal
    _exporter: Any

    def __init__(self, exporter: Any, outcomes: ExportOutcomes | None) -> None:
        self._exporter = exporter
        self._outcomes = outcomes if outcomes is not None else _default

    @property
    def wrapped(self) -> Any:
        """The exporter that does the work."""
        return self._exporter

    def _observe(self, export: Callable[[], _Result]) -> _Result:
        try:
            result = export()
        except BaseException as error:
            raised = f"{type(self._exporter).__name__} raised {type(error).__name__}"
            self._outcomes.record(self._signal, False, raised)
            raise
        succeeded, error_text = _outcome(result, self._exporter)
        self._outcomes.record(self._signal, succeeded, error_text)
        return result

    def __getattr__(self, name: str) -> Any:
        # Anything else a processor or a program reads is the exporter's. Looked up in
        # __dict__: while copying or unpickling, ``_exporter`` is not set yet.
        exporter = self.__dict__.get("_exporter")
        if exporter is None:
            raise AttributeError(name)
        return getattr(exporter, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._exporter!r}>"


class RecordingSpanExporter(_Recording, SpanExporter):
    """A span exporter that records each export's result, then returns it unchanged."""

    _signal = "traces"
    _exporter: SpanExporter

    def __init__(self, exporter: SpanExporter, outcomes: ExportOutcomes | None = None) -> None:
        _Recording.__init__(self, exporter, outcomes)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._observe(lambda: self._exporter.export(spans))

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._exporter.force_flush(timeout_millis))


class RecordingMetricExporter(_Recording, MetricExporter):
    """A metric exporter that records each export's result, then returns it unchanged.

    It prefers the temporality and aggregation its exporter prefers: the metric reader
    reads them from the exporter it is given.
    """

    _signal = "metrics"
    _exporter: MetricExporter

    def __init__(self, exporter: MetricExporter, outcomes: ExportOutcomes | None = None) -> None:
        _Recording.__init__(self, exporter, outcomes)
        MetricExporter.__init__(self)
        self._preferred_temporality = exporter._preferred_temporality
        self._preferred_aggregation = exporter._preferred_aggregation

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return self._observe(
            lambda: self._exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        )

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return bool(self._exporter.force_flush(timeout_millis=timeout_millis))

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._exporter.shutdown(timeout_millis=timeout_millis, **kwargs)


class RecordingLogExporter(_Recording, LogRecordExporter):
    """A log record exporter that records each export's result, then returns it unchanged."""

    _signal = "logs"
    _exporter: LogRecordExporter

    def __init__(self, exporter: LogRecordExporter, outcomes: ExportOutcomes | None = None) -> None:
        _Recording.__init__(self, exporter, outcomes)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return self._observe(lambda: self._exporter.export(batch))

    def shutdown(self) -> None:
        exporter: Any = self._exporter  # LogRecordExporter.shutdown is not annotated
        exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._exporter.force_flush(timeout_millis))


_RECORDERS: dict[Signal, type[_Recording]] = {
    "traces": RecordingSpanExporter,
    "metrics": RecordingMetricExporter,
    "logs": RecordingLogExporter,
}


def record_export_outcomes(
    signal: Signal, exporter: Any, outcomes: ExportOutcomes | None = None
) -> Any:
    """``exporter`` wrapped so that the ``exporters`` health check sees its results.

    For the configurator, which holds exporters of any kind: the wrapper is a real
    ``SpanExporter``, ``MetricExporter`` or ``LogRecordExporter`` and stands wherever
    ``exporter`` stood. Should wrapping fail (an exporter unlike the SDK's), ``exporter``
    itself is returned: health reporting never costs a signal its export.
    """
    try:
        return _RECORDERS[signal](exporter, outcomes)
    except Exception:
        _logger.debug("The %s exporter %r is not observed", signal, exporter, exc_info=True)
        return exporter
