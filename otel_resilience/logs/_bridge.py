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

A third side effect runs the other way: ``logging.config.dictConfig`` (unless
``incremental``) and ``fileConfig`` close every existing handler and empty the root
logger's list, so a program configuring its logging that way would silently stop exporting
logs. Once the bridge is attached, both keep our handlers (the bridge, the stand-in, and
the handlers ``otel_resilience.logs.configure`` marks as ours), and only ours: the program's
configuration applies in full (its handlers, formatters, levels, filters, disabled
loggers), our handlers are neither closed nor removed, and export goes on. That holds
whatever ``disable_existing_loggers`` says: that option disables the *loggers* the
configuration does not name, so their records stop before any handler, ours included, and
never concerned the root logger's handlers; it is also true by default, so reading it as
"drop the bridge" would drop it for nearly every program. The switch for log export is
``OTEL_LOGS_EXPORTER`` (``none`` turns it off). While the configuration is applied, records
logged by other threads are not exported (as they are not written by the program's new
handlers until those are installed); code that builds a ``DictConfigurator`` itself, or
that took ``dictConfig`` from ``logging.config`` before the bridge was attached, bypasses
this.

Records reach the provider through :class:`~otel_resilience.logs._otlp_handler.OtlpLogHandler`
(trace context in the OTLP fields, attributes as in our JSON lines, secrets redacted unless
``OTEL_RESILIENCE_LOG_REDACT=false``), not through the SDK's deprecated ``LoggingHandler``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import logging.config
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

from otel_resilience._compat import ApiLoggerProvider as LoggerProvider
from otel_resilience._fork import unlock_after_fork

__all__ = ["attach_log_bridge", "keep_basic_config_working", "keep_logging_config_working"]

_original_basic_config = logging.basicConfig
# What our dictConfig and fileConfig wrappers call: the functions they replaced.
_wrapped_dict_config: Callable[[Any], None] = logging.config.dictConfig
_wrapped_file_config: Callable[..., None] = logging.config.fileConfig
_install_lock = threading.Lock()
unlock_after_fork(sys.modules[__name__], "_install_lock")

_BRIDGE_MARK = "_otel_resilience_bridge"
"""Attribute set on the bridge handler, which is also marked as ours like the others."""
_OUR_HANDLER_MARK = "_otel_resilience_handler"  # otel_resilience.logs._setup.OUR_HANDLER_MARK


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
    return isinstance(handler, _LastResortStandIn) or bool(
        getattr(handler, _OUR_HANDLER_MARK, False)
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


def _configuring_keeping_ours(configure: Callable[[], None]) -> None:
    """Run ``configure`` (a full ``dictConfig`` or ``fileConfig``) without losing our handlers.

    Our handlers are taken off the list ``logging.config`` shuts down (so they are not
    closed) and put back on the root logger afterwards if the configuration removed them,
    even if it failed halfway. All of it under the ``logging`` module's lock, which the
    configuration takes too, so no other configuration interleaves.
    """
    lock = getattr(logging, "_lock", None)
    with lock if lock is not None else contextlib.nullcontext():
        root = logging.getLogger()
        ours = [handler for handler in root.handlers if _is_ours(handler)]
        spared = _spare_from_shutdown(ours)
        try:
            configure()
        finally:
            for handler in ours:
                if handler not in root.handlers:
                    root.addHandler(handler)
            _restore_for_shutdown(spared)


def _spare_from_shutdown(handlers: list[logging.Handler]) -> list[weakref.ref[logging.Handler]]:
    """Remove ``handlers`` from the list ``logging.config`` closes; what was removed."""
    handler_list: list[weakref.ref[logging.Handler]] | None = getattr(logging, "_handlerList", None)
    if handler_list is None or not handlers:  # another Python's internals: close as before
        return []
    spared = [ref for ref in handler_list if any(ref() is handler for handler in handlers)]
    for ref in spared:
        handler_list.remove(ref)
    return spared


def _restore_for_shutdown(spared: list[weakref.ref[logging.Handler]]) -> None:
    """Put spared handlers back first (as the oldest), so ``logging.shutdown`` closes them last."""
    handler_list: list[weakref.ref[logging.Handler]] | None = getattr(logging, "_handlerList", None)
    if handler_list is not None and spared:
        handler_list[:0] = [ref for ref in spared if ref() is not None and ref not in handler_list]


@functools.wraps(logging.config.dictConfig, assigned=())  # __wrapped__: the signature
def _dict_config_keeping_ours(config: Any) -> None:
    """``logging.config.dictConfig``, keeping our handlers (see the module documentation)."""
    try:
        incremental = bool(config.get("incremental", False))
    except Exception:  # not a mapping: dictConfig will say so
        incremental = False
    if incremental:  # changes levels only; handlers stay as they are
        _wrapped_dict_config(config)
        return
    _configuring_keeping_ours(lambda: _wrapped_dict_config(config))


@functools.wraps(logging.config.fileConfig, assigned=())
def _file_config_keeping_ours(*args: Any, **kwargs: Any) -> None:
    """``logging.config.fileConfig``, keeping our handlers (see the module documentation)."""
    _configuring_keeping_ours(lambda: _wrapped_file_config(*args, **kwargs))


_config_wrappers_installed = False


def keep_logging_config_working() -> None:
    """Make ``dictConfig`` and ``fileConfig`` keep our handlers; does it once per process.

    Ours wraps whatever is there at that moment (another library's wrapper included). It is
    never installed again: whoever replaces it later (a wrapper around ours, or a test
    putting the original back) is not fought, and what ours calls can never lead back to it.
    """
    global _config_wrappers_installed, _wrapped_dict_config, _wrapped_file_config  # noqa: PLW0603
    with _install_lock:
        if _config_wrappers_installed:
            return
        _config_wrappers_installed = True
        _wrapped_dict_config = logging.config.dictConfig
        _wrapped_file_config = logging.config.fileConfig
        logging.config.dictConfig = _dict_config_keeping_ours
        logging.config.fileConfig = _file_config_keeping_ours


def _redact_setting() -> bool:
    """``OTEL_RESILIENCE_LOG_REDACT`` as parsed by :mod:`otel_resilience.sdk.settings`; on by
    default, and on when it cannot be read (a leak costs more than an over-redaction)."""
    try:
        from otel_resilience.sdk.settings import current_settings

        return bool(current_settings().logs.redact)
    except Exception:
        return True


def attach_log_bridge(logger_provider: LoggerProvider, *, redact: bool | None = None) -> None:
    """Route root-logger records to ``logger_provider``; idempotent.

    ``redact`` says whether secret-looking bound and ``extra=`` fields are redacted in the
    exported records, as in the JSON lines; by default, as ``OTEL_RESILIENCE_LOG_REDACT``
    says (on unless set to false).
    """
    # Imported here: importing otel_resilience.logs imports this module.
    from otel_resilience.logs._otlp_handler import OtlpLogHandler
    from otel_resilience.logs._redaction import Redactor

    root = logging.getLogger()
    if any(getattr(handler, _BRIDGE_MARK, False) for handler in root.handlers):
        return
    if redact is None:
        redact = _redact_setting()
    bridge = OtlpLogHandler(
        logger_provider,
        level=logging.NOTSET,
        redactor=None if redact else Redactor(enabled=False),
    )
    setattr(bridge, _BRIDGE_MARK, True)
    setattr(bridge, _OUR_HANDLER_MARK, True)
    root.addHandler(bridge)
    root.addHandler(_LastResortStandIn())
    keep_basic_config_working()
    keep_logging_config_working()
