"""The OTLP/HTTP log exporter the configurator installs: upstream's, with our encoder.

Everything but the encoding is upstream's own: endpoint, headers, TLS, compression and
timeout from the same ``OTEL_EXPORTER_OTLP_*`` variables, the same transport with its
retries and back-off, the same request-size limit and the same exporter metrics. Only the
batch is written by :func:`~otel_resilience.logs._otlp_encoding.encode_log_records`
(the same bytes, in about a fifth of the time). Upstream's ``export`` calls its encoder by
module name, so the method is restated here around ours; it follows upstream 1.45 and the
package pins the exporter below 1.46.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.http._common import (
    RequestPayloadTooLargeError,
    _is_request_too_large,
)
from opentelemetry.exporter.otlp.proto.http._log_exporter import (
    OTLPLogExporter as _UpstreamOTLPLogExporter,
)
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

from otel_resilience.logs._otlp_encoding import encode_log_records

__all__ = ["OTLPLogExporter"]

# Upstream's logger: its records about exports are what a user already filters or reads.
_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http._log_exporter")


class OTLPLogExporter(_UpstreamOTLPLogExporter):
    """Upstream's OTLP/HTTP log exporter, encoding each batch with our encoder."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self._shutdown:
            _logger.warning("Exporter already shutdown, ignoring batch")
            return LogRecordExportResult.FAILURE

        with self._metrics.export_operation(len(batch)) as result:
            try:
                serialized_data = encode_log_records(batch)
            except Exception as error:  # as upstream: the batch fails, the program goes on
                _logger.error("Failed to encode logs batch: %s", error)
                result.error = error
                return LogRecordExportResult.FAILURE

            if _is_request_too_large(serialized_data, self._max_request_size):
                _logger.warning(
                    "Dropping logs batch: serialized size %d bytes exceeds max_request_size "
                    "%d bytes.",
                    len(serialized_data),
                    self._max_request_size,
                )
                result.error = RequestPayloadTooLargeError(
                    f"Serialized logs request size {len(serialized_data)} bytes exceeds "
                    f"max_request_size {self._max_request_size} bytes."
                )
                return LogRecordExportResult.FAILURE

            export_result = self._client.export(serialized_data)
            if not export_result.success:
                result.error = export_result.error
                result.error_attrs = (
                    {HTTP_RESPONSE_STATUS_CODE: export_result.status_code}
                    if export_result.status_code is not None
                    else None
                )
                return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS
