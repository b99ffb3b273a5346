"""A time-based sliding window of call outcomes, in one bucket per second.

A breaker asks its window three numbers: how many calls it holds, how many failed and how
many were slow. The count-based window is a byte ring kept inline in the breaker (its fast
path writes one byte without a lock); this one, for ``window_kind="time"``, keeps running
totals over per-second buckets so recording a call and reading the totals cost a small
constant, and it also serves as the retry budget's counter.
"""

from __future__ import annotations

from array import array

__all__ = ["TimeWindow"]


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
