"""Sliding windows of call outcomes, in constant memory.

A breaker asks a window three numbers: how many calls it holds, how many failed and how
many were slow. Both kinds keep those as running totals, so recording a call and reading
the totals cost the same small constant whatever the window size.
"""

from __future__ import annotations

from array import array

__all__ = ["CountWindow", "TimeWindow"]

_FAILED = 1
_SLOW = 2
_OCCUPIED = 4


class CountWindow:
    """The last ``size`` calls, as one byte each in a ring."""

    __slots__ = ("_failures", "_filled", "_position", "_ring", "_size", "_slow")

    def __init__(self, size: int) -> None:
        self._ring = bytearray(size)
        self._size = size
        self._position = 0
        self._filled = 0
        self._failures = 0
        self._slow = 0

    def record(self, failed: bool, slow: bool, now: float) -> None:
        """Add one call, evicting the oldest when the ring is full."""
        position = self._position
        old = self._ring[position]
        if old:
            if old & _FAILED:
                self._failures -= 1
            if old & _SLOW:
                self._slow -= 1
        else:
            self._filled += 1
        code = _OCCUPIED
        if failed:
            code |= _FAILED
            self._failures += 1
        if slow:
            code |= _SLOW
            self._slow += 1
        self._ring[position] = code
        position += 1
        self._position = 0 if position == self._size else position

    def totals(self, now: float) -> tuple[int, int, int]:
        """``(calls, failures, slow)`` in the window."""
        return self._filled, self._failures, self._slow

    def clear(self) -> None:
        """Forget every call (after a state change, a fresh window judges the new state)."""
        self._ring = bytearray(self._size)
        self._position = self._filled = self._failures = self._slow = 0


class TimeWindow:
    """The calls of the last ``seconds`` seconds, in one bucket per second."""

    __slots__ = ("_calls", "_epochs", "_failures", "_seconds", "_slow", "_totals")

    def __init__(self, seconds: int) -> None:
        self._seconds = seconds
        self._epochs = array("q", [-1]) * seconds
        self._calls = array("I", [0]) * seconds
        self._failures = array("I", [0]) * seconds
        self._slow = array("I", [0]) * seconds
        self._totals = [0, 0, 0]

    def _drop(self, index: int) -> None:
        totals = self._totals
        totals[0] -= self._calls[index]
        totals[1] -= self._failures[index]
        totals[2] -= self._slow[index]
        self._epochs[index] = -1
        self._calls[index] = self._failures[index] = self._slow[index] = 0

    def _bucket(self, second: int) -> int:
        index = second % self._seconds
        if self._epochs[index] != second:
            self._drop(index)
            self._epochs[index] = second
        return index

    def _expire(self, second: int) -> None:
        oldest_kept = second - self._seconds + 1
        for index in range(self._seconds):
            if -1 < self._epochs[index] < oldest_kept:
                self._drop(index)

    def record(self, failed: bool, slow: bool, now: float) -> None:
        """Add one call to the bucket of the current second."""
        index = self._bucket(int(now))
        self._calls[index] += 1
        self._totals[0] += 1
        if failed:
            self._failures[index] += 1
            self._totals[1] += 1
        if slow:
            self._slow[index] += 1
            self._totals[2] += 1

    def totals(self, now: float) -> tuple[int, int, int]:
        """``(calls, failures, slow)`` over the last ``seconds`` seconds."""
        self._expire(int(now))
        calls, failures, slow = self._totals
        return calls, failures, slow

    def clear(self) -> None:
        """Forget every call."""
        for index in range(self._seconds):
            self._epochs[index] = -1
            self._calls[index] = self._failures[index] = self._slow[index] = 0
        self._totals = [0, 0, 0]
