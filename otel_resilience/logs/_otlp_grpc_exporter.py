"""The OTLP/gRPC log exporter the configurator installs: upstream's, with our encoder.

Everything but the encoding is upstream's own (endpoint, credentials, headers,
compression, timeout, retries, exporter metrics). Upstream asks ``_translate_data`` for
the request message; ours writes the batch with
:func:`~otel_resilience.logs._otlp_encoding.encode_log_records` and hands gRPC the message
parsed from those bytes (the parse runs in protobuf's C code), which together take about a
quarter of upstream's encoding time. ``_translate_data`` is upstream's private hook, the
one a subclass cannot avoid: ``test_compat_parity`` checks that what it returns is what
upstream sends.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otel_resilience._compat import ReadableLogRecord, UpstreamOtlpGrpcLogExporter
from otel_resilience.logs._otlp_encoding import encode_log_records

__all__ = ["OTLPLogExporter"]


class OTLPLogExporter(UpstreamOtlpGrpcLogExporter):
    """Upstream's OTLP/gRPC log exporter, encoding each batch with our encoder."""

    def _translate_data(self, data: Sequence[ReadableLogRecord]) -> ExportLogsServiceRequest:
        return ExportLogsServiceRequest.FromString(encode_log_records(data))
