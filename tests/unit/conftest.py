"""The unit tier's promise, checked on every run: no network, not even loopback, and no
subprocess.

A unit test that connects, binds or starts a program fails at that call and says which tier
it belongs in, so the tier keeps running where no server is reachable. ``os.fork`` is
allowed: a forked copy of the test process runs no other program and needs no server.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest

_NETWORK_EVENTS = frozenset({"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"})
_PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.exec", "os.system"})
_NETWORK_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_guarding = False


def _refuse_the_outside_world(event: str, args: tuple[object, ...]) -> None:
    if not _guarding:
        return
    if event in _NETWORK_EVENTS:
        family = getattr(args[0], "family", None)
        if family in _NETWORK_FAMILIES:
            raise RuntimeError(
                f"a unit test used the network ({event} {args[1:]!r}): "
                "it belongs in tests/integration"
            )
    elif event in _PROCESS_EVENTS:
        raise RuntimeError(
            f"a unit test started a program ({event} {args[0]!r}): it belongs in tests/launcher"
        )


sys.addaudithook(_refuse_the_outside_world)


@pytest.fixture(autouse=True)
def _no_network_and_no_subprocess() -> Iterator[None]:
    global _guarding  # noqa: PLW0603 - the audit hook cannot be removed, only turned off
    _guarding = True
    try:
        yield
    finally:
        _guarding = False
