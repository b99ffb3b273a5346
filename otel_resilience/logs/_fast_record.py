"""A faster ``LogRecord``: the same record, made for less.

``LogRecord.__init__`` costs about 2 to 3 µs here, half of the standard library's own cost
per record into a ``NullHandler``, and much of it goes on answers that rarely change:
``os.path.basename`` and ``os.path.splitext`` of the same few source paths, an
abstract-base-class check that the one argument of ``log.info("order %s", n)`` is not a
mapping, the level's name. :class:`FastLogRecord` sets exactly the attributes
``LogRecord.__init__`` sets, in the same order and with the same values (thread, process
and asyncio task names included, following ``logging.logThreads`` and its siblings as they
are at each record), so every handler, formatter and filter sees the record it would have
seen; only those answers are cached. It takes about 1 µs off every record.

:func:`install_fast_record_factory` puts it in place only where ``logging`` still uses its
default factory (a program's own factory, or another library's, stays), on the Python
versions whose ``LogRecord.__init__`` it mirrors (3.10 to 3.13), and only if a check
record matches the standard one attribute for attribute; anything else keeps
``LogRecord``. :func:`uninstall_fast_record_factory` puts the default back unless another
factory has replaced ours since.
"""

from __future__ import annotations

import collections.abc
import logging
import os
import sys
import threading
import time
from typing import Any, Final

__all__ = [
    "PLAIN_RECORD_TYPES",
    "FastLogRecord",
    "install_fast_record_factory",
    "uninstall_fast_record_factory",
]

_MIRRORED_VERSIONS: Final = frozenset({(3, 10), (3, 11), (3, 12), (3, 13)})
"""The Pythons whose ``LogRecord.__init__`` :class:`FastLogRecord` was written against."""

_TIME_NS: Final = sys.version_info >= (3, 13)
"""Python 3.13 takes a record's time in integer nanoseconds; earlier ones as a float."""

_HAS_TASK_NAME: Final = sys.version_info >= (3, 12)
"""Python 3.12 and later give every record a ``taskName``."""

_NEVER_MAPPINGS: Final = frozenset({str, int, float, bool, bytes, tuple, list, type(None)})
"""Argument types that are not a ``collections.abc.Mapping``: no ``isinstance`` needed."""

_level_names: Final = logging._levelToName
"""``logging``'s own level-to-name table (``addLevelName`` updates it in place)."""

_files: dict[str, tuple[str, str]] = {}
"""``pathname`` -> (``filename``, ``module``); one entry per source file, up to a bound."""

_MAX_FILES: Final = 4096


def _file_and_module(pathname: str) -> tuple[str, str]:
    """``LogRecord``'s ``filename`` and ``module`` of ``pathname``, cached where it can be."""
    try:
        filename = os.path.basename(pathname)
        module = os.path.splitext(filename)[0]
    except (TypeError, ValueError, AttributeError):
        filename, module = pathname, "Unknown module"
    try:
        if len(_files) < _MAX_FILES:
            _files[pathname] = (filename, module)
    except TypeError:  # an unhashable pathname: worked out again each time
        pass
    return filename, module


class FastLogRecord(logging.LogRecord):
    """A ``LogRecord`` whose constructor caches the answers that rarely change."""

    def __init__(  # noqa: PLR0915 - LogRecord.__init__ statement for statement, in one call
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
        # From here on, as LogRecord.__init__ has it on every mirrored version.
        if logging.logThreads:
            self.thread = threading.get_ident()
            self.threadName = threading.current_thread().name
        else:
            self.thread = None
            self.threadName = None
        if not logging.logMultiprocessing:
            self.processName = None
        else:
            self.processName = "MainProcess"
            multiprocessing = sys.modules.get("multiprocessing")
            if multiprocessing is not None:
                try:  # noqa: SIM105 - a try is free on the way through; suppress() is a call
                    self.processName = multiprocessing.current_process().name
                except Exception:  # multiprocessing still being imported, say
                    pass
        if logging.logProcesses and hasattr(os, "getpid"):
            self.process = os.getpid()
        else:
            self.process = None
        if _HAS_TASK_NAME:
            self.taskName = None
            if logging.logAsyncioTasks:  # type: ignore[attr-defined]
                asyncio = sys.modules.get("asyncio")
                if asyncio:
                    try:  # noqa: SIM105 - as above
                        self.taskName = asyncio.current_task().get_name()
                    except Exception:  # no running loop, no current task
                        pass


PLAIN_RECORD_TYPES: Final = frozenset({logging.LogRecord, FastLogRecord})
"""Record classes whose ``__init__`` sets the standard attributes, in the standard order."""


def _matches_the_standard_record() -> bool:
    """Whether a fast record is the standard one, attribute for attribute (time aside)."""
    arguments = ("check", logging.WARNING, "/app/check.py", 7, "%s", (1,), None, "f", None)
    standard = logging.LogRecord(*arguments).__dict__
    fast = FastLogRecord(*arguments).__dict__
    timed = {"created", "msecs", "relativeCreated"}
    return list(standard) == list(fast) and all(
        standard[key] == fast[key] for key in standard if key not in timed
    )


def install_fast_record_factory() -> bool:
    """Make :class:`FastLogRecord` ``logging``'s record factory, if it may; whether it did."""
    if logging.getLogRecordFactory() is not logging.LogRecord:
        return False  # the program's own factory (or another library's) stays
    if sys.version_info[:2] not in _MIRRORED_VERSIONS or not _matches_the_standard_record():
        return False
    logging.setLogRecordFactory(FastLogRecord)
    return True


def uninstall_fast_record_factory() -> None:
    """Put ``logging``'s default factory back, unless another has replaced ours since."""
    if logging.getLogRecordFactory() is FastLogRecord:
        logging.setLogRecordFactory(logging.LogRecord)
