"""The ``TRACE`` level (5): finer than ``DEBUG``, for per-call detail nobody wants by default.

The standard library has no level below ``DEBUG``; ``TRACE = 5`` is the value the wider
ecosystem settled on (loguru's, and many projects' own). The OTel data model has a
``TRACE`` severity range (1-4) for it, but the SDK's ``std_to_otel`` maps every level below
10 to ``UNSPECIFIED``, so a bridge that ships these records over OTLP should map 5 itself.

:func:`install_trace_level` is opt-in and idempotent. It changes two process-wide things, and
each is safe to change from a library:

* ``logging.addLevelName(5, "TRACE")`` only gives the number a name. Level numbers are what
  loggers and handlers compare, so no filter's behaviour changes; it is skipped when 5
  already has a name (a program's own choice is left alone).
* ``Logger.trace`` is added only when absent, so another library's (or the program's own)
  ``trace`` method is never replaced, and a ``Logger`` subclass that defines one keeps it.
  Adding a method changes no existing call: code that did not know about ``trace`` never
  calls it.

The formatters of this package print ``TRACE`` for level 5 whether or not the name was
installed (:func:`level_name`), so installing it is only needed for ``logger.trace(...)``
and for other formatters' ``%(levelname)s``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final

__all__ = ["TRACE", "install_trace_level", "level_name"]

TRACE: Final = 5

# What ``logging.getLevelName`` answers for 5 before anyone names it.
_UNNAMED_TRACE: Final = f"Level {TRACE}"

# Python 3.11 made ``stacklevel`` count only frames outside the logging module, so our own
# frame (this module) must be skipped explicitly; 3.10 starts counting from the caller of
# the method that called ``_log``, which is already the program's frame.
_STACKLEVEL_OFFSET: Final = 1 if sys.version_info >= (3, 11) else 0


def _trace(self: logging.Logger, msg: object, *args: object, **kwargs: Any) -> None:
    """Log ``msg % args`` at level ``TRACE``, exactly as ``Logger.debug`` does at ``DEBUG``."""
    if self.isEnabledFor(TRACE):
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + _STACKLEVEL_OFFSET
        self._log(TRACE, msg, args, **kwargs)


def install_trace_level() -> None:
    """Name level 5 ``TRACE`` and add ``Logger.trace``, each only if not done already."""
    if logging.getLevelName(TRACE) == _UNNAMED_TRACE:
        logging.addLevelName(TRACE, "TRACE")
    if not hasattr(logging.Logger, "trace"):
        # setattr: mypy (rightly) refuses assigning an attribute Logger does not declare.
        setattr(logging.Logger, "trace", _trace)  # noqa: B010


def level_name(record: logging.LogRecord) -> str:
    """The record's level name, ``TRACE`` for level 5 even when the name was not installed."""
    name = record.levelname
    if name == _UNNAMED_TRACE:
        return "TRACE"
    return name
