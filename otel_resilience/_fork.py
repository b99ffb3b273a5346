"""Our locks, unlocked again in a forked child.

``fork()`` copies a process with one thread: the one that called it. A lock that another
thread held at that moment stays held in the child, by a thread that does not exist there,
and the child's first call that needs it waits forever. Pre-fork servers (gunicorn, uWSGI,
Celery) fork while the parent's telemetry threads run, so every lock of ours must be usable
again in the child.

Locks cannot be weakly referenced, so their owners are: an object (or a module, for
module-level locks) names the attributes that hold its locks once, when it makes them, and
the child re-initialises each in place (``_at_fork_reinit``, what the standard library does
for its own locks in ``logging`` and ``threading``), so every reference to a lock sees it
unlocked. Nothing runs on a call's path; registering costs one dictionary entry per owner.
What a lock protected is left as the parent last wrote it: owners whose state must not
carry over (counters, queues, threads) reset it in their own fork hooks.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Final

__all__ = ["unlock_after_fork"]

_owners: Final[dict[int, tuple[weakref.ref[Any], tuple[str, ...]]]] = {}
_owners_lock: Final = threading.Lock()


def unlock_after_fork(owner: object, *attributes: str) -> None:
    """Re-initialise ``owner``'s locks named by ``attributes`` in every forked child.

    ``owner`` is held weakly: an owner that is gone needs nothing. Calling it again for the
    same owner replaces the attribute list.
    """
    key = id(owner)

    def forget(_reference: weakref.ref[Any]) -> None:
        with _owners_lock:
            entry = _owners.get(key)
            if entry is not None and entry[0] is _reference:
                del _owners[key]

    with _owners_lock:
        _owners[key] = (weakref.ref(owner, forget), attributes)


def _unlock_in_child() -> None:
    _owners_lock._at_fork_reinit()  # type: ignore[attr-defined]
    for reference, attributes in list(_owners.values()):
        owner = reference()
        if owner is None:
            continue
        for attribute in attributes:
            lock = getattr(owner, attribute, None)
            reinitialise = getattr(lock, "_at_fork_reinit", None)
            if reinitialise is not None:
                reinitialise()


if hasattr(os, "register_at_fork"):  # absent on Windows, which cannot fork
    os.register_at_fork(after_in_child=_unlock_in_child)
