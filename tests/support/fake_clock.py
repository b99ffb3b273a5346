"""The one fake clock of the suite: time that moves only when a test moves it.

Breakers, registries, retry budgets and health watches take a ``clock=`` callable; ``Retry``
also takes ``sleep=`` and ``async_sleep=``. Handing them one ``FakeClock`` lets a test open a
breaker, move past its recovery timeout with ``advance`` and see the trial at once, instead
of sleeping through the timeout in real time.
"""

from __future__ import annotations

import asyncio

__all__ = ["FakeClock"]


class FakeClock:
    """Seconds from an arbitrary origin; ``sleep`` records the wait and moves the clock.

    The default origin is not zero, so that code which takes 0 for "never" cannot pass by
    accident.
    """

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []
        """Every wait asked of ``sleep`` or ``async_sleep``, in order."""

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back {-seconds} seconds")
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        """A ``time.sleep`` that returns at once, the clock moved by the wait."""
        self.sleeps.append(seconds)
        self.advance(seconds)

    async def async_sleep(self, seconds: float) -> None:
        """An ``asyncio.sleep`` that only yields to the loop, the clock moved by the wait."""
        self.sleep(seconds)
        await asyncio.sleep(0)
