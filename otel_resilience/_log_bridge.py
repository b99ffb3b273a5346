"""Send the program's ``logging`` records to the OTel logger provider, changing nothing else.

Adding a handler to the root logger has two side effects that upstream's auto-configuration
lets through, and that a program notices:

* ``logging.basicConfig()`` does nothing once the root logger has a handler, so a program
  that configures its logging after start-up would silently lose its console output;
* Python's *last resort* handler, which prints warnings to stderr for a program that never
  configured logging, stops firing, so warnings (ours included) vanish into the exporter.

Both are undone here: ``basicConfig`` ignores our handlers when it decides whether logging
is configured, and a stand-in keeps the last-resort behaviour for records that no handler
of the program's would have seen.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler

__all__ = ["attach_log_bridge", "keep_basic_config_working"]

_original_basic_config = logging.basicConfig


class _LastResortStandIn(logging.Handler):
    """Does what ``logging.lastResort`` would have done had our handler not been there."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        last_resort = logging.lastResort
        if last_resort is None or record.levelno < last_resort.level:
            return
        if _program_handles(record.name):
            return
        last_resort.handle(record)


def _is_ours(handler: logging.Handler) -> bool:
    """Our bridge and stand-in, and the output handlers ``otel_resilience.logs`` marks."""
    return isinstance(handler, (_LastResortStandIn, _BridgeHandler)) or bool(
        getattr(handler, "_otel_resilience_handler", False)
    )


def _program_handles(logger_name: str) -> bool:
    """Whether a handler the program installed sees records of ``logger_name``."""
    logger: logging.Logger | None = logging.getLogger(logger_name)
    while logger is not None:
        if any(not _is_ours(handler) for handler in logger.handlers):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


class _BridgeHandler(LoggingHandler):
    """The SDK handler, marked as ours so the helpers above can tell it apart."""


def _basic_config_ignoring_ours(**kwargs: Any) -> None:
    """``logging.basicConfig`` as if our handlers were not on the root logger."""
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if _is_ours(handler)]
    for handler in ours:
        root.removeHandler(handler)
    try:
        _original_basic_config(**kwargs)
    finally:
        for handler in ours:
            root.addHandler(handler)


def keep_basic_config_working() -> None:
    """Make ``logging.basicConfig`` disregard our handlers on the root logger; idempotent."""
    logging.basicConfig = _basic_config_ignoring_ours


def attach_log_bridge(logger_provider: LoggerProvider) -> None:
    """Route root-logger records to ``logger_provider``; idempotent."""
    root = logging.getLogger()
    if any(isinstance(handler, _BridgeHandler) for handler in root.handlers):
        return
    root.addHandler(_BridgeHandler(level=logging.NOTSET, logger_provider=logger_provider))
    root.addHandler(_LastResortStandIn())
    keep_basic_config_working()
