"""The OTLP/HTTP log exporter the configurator installs: upstream's, with our encoder.

Everything but the encoding is upstream's own: endpoint, headers, TLS, compression and
timeout from the same ``OTEL_EXPORTER_OTLP_*`` variables, the same transport with its
retries and back-off, the same request-size limit and the same exporter metrics. Only the
batch is written by :func:`~otel_resilience.logs._otlp_encoding.encode_log_records`
(the same bytes, in about a fifth of the time). Upstream's ``export`` calls its encoder by
module name, so the method is restated around ours, in
:func:`otel_resilience._compat.export_logs_over_http`.
"""

from __future__ import annotations

from collections.abc import Sequence

from otel_resilience._compat import (
    LogRecordExportResult,
    ReadableLogRecord,
    UpstreamOtlpHttpLogExporter,
    export_logs_over_http,
)
from otel_resilience.logs._otlp_encoding import encode_log_records

__all__ = ["OTLPLogExporter"]


class OTLPLogExporter(UpstreamOtlpHttpLogExporter):
    """Upstream's OTLP/HTTP log exporter, encoding each batch with our encoder."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return export_logs_over_http(self, batch, encode_log_records)
