"""A faster ``LogRecord`` for ``lean_records``: the same record, made for less.

With the caller-frame look-up and the thread and process names off (Python's documented
``logging`` optimisations, which ``lean_records`` applies), most of what is left of a
record's cost is ``LogRecord.__init__`` itself: about 3 µs here, over half of the standard
library's own cost per record into a ``NullHandler``. Much of that goes on work whose
answer never changes under those settings: ``os.path.basename`` and ``os.path.splitext``
of the same placeholder path on every record, an abstract-base-class check that the one
argument of ``log.info("order %s", n)`` is not a mapping, and the level name's look-up.

:class:`LeanLogRecord` sets exactly the attributes ``LogRecord.__init__`` sets, in the same
order and with the same values, so every handler, formatter and filter sees the record it
would have seen; only the unchanging answers are cached. When any of the settings it relies
on is switched back on (``logging.logThreads`` and its siblings), it defers to
``LogRecord.__init__`` for that record. :func:`install_lean_record_factory` puts it in
place only where ``logging`` still uses its default factory and where a check record
matches the standard one attribute for attribute; anything else (a program's own factory,
a Python whose ``LogRecord`` sets attributes this module does not know) keeps what it has.
"""

from __future__ import annotations

import collections.abc
import logging
import os
import sys
import time
from typing import Any, Final

__all__ = [
    "PLAIN_RECORD_TYPES",
    "LeanLogRecord",
    "install_lean_record_factory",
    "uninstall_lean_record_factory",
]

_TIME_NS: Final = sys.version_info >= (3, 13)
"""Python 3.13 takes a record's time in integer nanoseconds; earlier ones as a float."""

_NEVER_MAPPINGS: Final = frozenset({str, int, float, bool, bytes, tuple, list, type(None)})
"""Argument types that are not a ``collections.abc.Mapping``: no ``isinstance`` needed."""

_HAS_TASK_NAME: Final = "taskName" in logging.LogRecord("", 0, "", 0, "", (), None).__dict__
"""Python 3.12 and later give every record a ``taskName``."""

_files: dict[str, tuple[str, str]] = {}
"""``pathname`` -> (``filename``, ``module``); one entry per source file at most."""


_level_names: Final = logging._levelToName
"""``logging``'s own level-to-name table (``addLevelName`` updates it in place)."""


def _file_and_module(pathname: str) -> tuple[str, str]:
    """``LogRecord``'s ``filename`` and ``module`` of ``pathname``, cached where it can be."""
    try:
        filename = os.path.basename(pathname)
        module = os.path.splitext(filename)[0]
    except (TypeError, ValueError, AttributeError):
        filename, module = pathname, "Unknown module"
    try:
        if len(_files) < 4096:
            _files[pathname] = (filename, module)
    except TypeError:
        pass
    return filename, module


def _some_name_logged() -> bool:
    """Whether a setting that puts thread, process or task names in records is on."""
    return bool(
        logging.logThreads
        or logging.logProcesses
        or logging.logMultiprocessing
        or getattr(logging, "logAsyncioTasks", False)
    )


class LeanLogRecord(logging.LogRecord):
    """A ``LogRecord`` whose constructor caches what ``lean_records`` makes constant."""

    def __init__(
        self,
        name: str,
        level: int,
        pathname: str,
        lineno: int,
        msg: object,
        args: Any,
        exc_info: Any,
        func: str | None = None,
        sinfo: str | None = None,
        **kwargs: Any,
    ) -> None:
        if (
            logging.logThreads
            or logging.logProcesses
            or logging.logMultiprocessing
            or (_HAS_TASK_NAME and logging.logAsyncioTasks)  # type: ignore[attr-defined]
        ):
            super().__init__(
                name, level, pathname, lineno, msg, args, exc_info, func, sinfo, **kwargs
            )
            return
        now = time.time_ns() if _TIME_NS else time.time()
        self.name = name
        self.msg = msg
        # As LogRecord: a sole, non-empty mapping argument is the mapping itself.
        if (
            args
            and len(args) == 1
            and type(args[0]) not in _NEVER_MAPPINGS
            and isinstance(args[0], collections.abc.Mapping)
            and args[0]
        ):
            args = args[0]
        self.args = args
        self.levelname = _level_names.get(level) or logging.getLevelName(level)
        self.levelno = level
        self.pathname = pathname
        try:
            self.filename, self.module = _files[pathname]
        except (KeyError, TypeError):
            self.filename, self.module = _file_and_module(pathname)
        self.exc_info = exc_info
        self.exc_text = None
        self.stack_info = sinfo
        self.lineno = lineno
        self.funcName = func  # type: ignore[assignment]  # stored as given, as LogRecord does
        if _TIME_NS:
            self.created = now / 1e9
            self.msecs = (now % 1_000_000_000) // 1_000_000 + 0.0
            self.relativeCreated = (now - logging._startTime) / 1e6  # type: ignore[attr-defined]
        else:
            self.created = now
            self.msecs = int((now - int(now)) * 1000) + 0.0
            self.relativeCreated = (now - logging._startTime) * 1000  # type: ignore[attr-defined]
        self.thread = None
        self.threadName = None
        self.processName = None
        self.process = None
        if _HAS_TASK_NAME:
            self.taskName = None


PLAIN_RECORD_TYPES: Final = frozenset({logging.LogRecord, LeanLogRecord})
"""Record classes whose ``__init__`` sets the standard attributes, in the standard order."""


def _matches_the_standard_record() -> bool:
    """Whether a lean record is the standard one, attribute for attribute (time aside)."""
    if _some_name_logged():
        return False
    arguments = ("check", logging.WARNING, "(unknown file)", 0, "%s", (1,), None, "f", None)
    standard = logging.LogRecord(*arguments).__dict__
    lean = LeanLogRecord(*arguments).__dict__
    timed = {"created", "msecs", "relativeCreated"}
    return list(standard) == list(lean) and all(
        standard[key] == lean[key] for key in standard if key not in timed
    )


def install_lean_record_factory() -> bool:
    """Make :class:`LeanLogRecord` ``logging``'s record factory, if it may; whether it did."""
    if logging.getLogRecordFactory() is not logging.LogRecord:
        return False  # the program's own factory (or another library's) stays
    if not _matches_the_standard_record():
        return False
    logging.setLogRecordFactory(LeanLogRecord)
    return True


def uninstall_lean_record_factory() -> None:
    """Put ``logging``'s default factory back, unless another has replaced ours since."""
    if logging.getLogRecordFactory() is LeanLogRecord:
        logging.setLogRecordFactory(logging.LogRecord)
