"""Structured logging with trace correlation, on the standard ``logging`` module.

Zero-code, under ``opentelemetry-instrument``: ``OTEL_RESILIENCE_LOG_FORMAT=json`` (or
``human``) and the other ``OTEL_RESILIENCE_LOG_*`` variables (see the README). As a
library::

    from otel_resilience import logs

    logs.configure(format="json", level="INFO", outputs=["console", "memory"])
    log = logs.get_logger(__name__)          # a standard logging.Logger
    with logs.bind(request_id="r-42", user_id="u-7"):
        log.info("order placed", extra={"order_id": 1234})

Every record, from the program or from a third-party library, carries the current trace and
span ids and the bound context, in the documented JSON fields (``JSON_FIELDS``) or an
aligned human line; fields named like secrets, and credentials quoted in messages, values
and exceptions, are redacted.
"""

from otel_resilience.logs._async_handler import NonBlockingHandler
from otel_resilience.logs._context import Binding, bind, bound
from otel_resilience.logs._human_format import HumanFormatter
from otel_resilience.logs._json_format import JSON_FIELDS, JsonFormatter
from otel_resilience.logs._levels import TRACE, install_trace_level
from otel_resilience.logs._memory import LogEntry, RingBufferHandler
from otel_resilience.logs._redaction import Redactor
from otel_resilience.logs._setup import (
    LoggingSetup,
    configure,
    current_setup,
    get_logger,
    memory_log,
)
from otel_resilience.logs._sinks import FileSink, StreamSink

__all__ = [
    "JSON_FIELDS",
    "TRACE",
    "Binding",
    "FileSink",
    "HumanFormatter",
    "JsonFormatter",
    "LogEntry",
    "LoggingSetup",
    "NonBlockingHandler",
    "Redactor",
    "RingBufferHandler",
    "StreamSink",
    "bind",
    "bound",
    "configure",
    "current_setup",
    "get_logger",
    "install_trace_level",
    "memory_log",
]
