"""One time series per label set: the only code that runs on an update.

An update takes the series' own lock for a handful of bytecodes, so counts are exact under
threads without the SDK's per-call attribute handling, aggregation lookup and exemplar
sampling. Everything an exporter needs besides the numbers (the attribute dictionary, the
Prometheus label text) is built once per series and kept on it.

After ``fork()`` the child resets every series to zero with a fresh lock (the parent's lock
may have been held by a thread that does not exist in the child); the parent is untouched.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import threading
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

__all__ = [
    "Attributes",
    "CounterSeries",
    "GaugeSeries",
    "HistogramSeries",
    "Timing",
]

_logger = logging.getLogger("otel_resilience.metrics")

Attributes = Mapping[str, Any]
_Result = TypeVar("_Result")


class _Series:
    __slots__ = ("__weakref__", "_lock", "attributes", "prometheus_labels", "start_time_unix_nano")

    def __init__(self, attributes: Attributes) -> None:
        self.attributes: Mapping[str, Any] = attributes
        self._lock = threading.Lock()
        self.start_time_unix_nano = time.time_ns()
        # The series' label text, built by the Prometheus renderer the first time it renders
        # this series (a string, or a tuple of fragments for a histogram's bucket lines).
        self.prometheus_labels: Any = None

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self.start_time_unix_nano = time.time_ns()


class CounterSeries(_Series):
    """A monotonic sum for one label set; ``add``/``inc`` never raise into the program."""

    __slots__ = ("_value", "name")

    def __init__(self, name: str, attributes: Attributes) -> None:
        super().__init__(attributes)
        self.name = name
        self._value: float = 0

    def add(self, amount: float = 1) -> None:
        """Add ``amount`` (default 1); a negative amount is dropped with a warning, as in OTel."""
        if amount < 0:
            _logger.warning(
                "counter %s: add(%r) dropped: a counter only goes up; use a gauge",
                self.name,
                amount,
            )
            return
        with self._lock:
            self._value += amount

    inc = add

    @property
    def value(self) -> float:
        """The sum so far."""
        return self._value

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._value = 0


class GaugeSeries(_Series):
    """A value that goes up and down for one label set."""

    __slots__ = ("_value",)

    def __init__(self, attributes: Attributes) -> None:
        super().__init__(attributes)
        self._value: float = 0

    def set(self, value: float) -> None:
        """Replace the value (a single store, atomic under the interpreter lock)."""
        self._value = value

    def add(self, amount: float = 1) -> None:
        """Add ``amount``, which may be negative."""
        with self._lock:
            self._value += amount

    inc = add

    def dec(self, amount: float = 1) -> None:
        """Subtract ``amount``."""
        with self._lock:
            self._value -= amount

    @property
    def value(self) -> float:
        """The current value."""
        return self._value

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._value = 0


class HistogramSeries(_Series):
    """Explicit-bucket counts, sum, min and max for one label set.

    Buckets are inclusive of their upper bound (``le`` in Prometheus, the OTLP explicit
    bucket rule): ``bucket_counts[i]`` counts values in ``(bounds[i-1], bounds[i]]`` and the
    last one values above every bound.
    """

    __slots__ = ("_bounds", "_counts", "_max", "_min", "_sum")

    def __init__(self, bounds: tuple[float, ...], attributes: Attributes) -> None:
        super().__init__(attributes)
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum: float = 0.0
        self._min = math.inf
        self._max = -math.inf

    def record(self, value: float) -> None:
        """Count ``value`` in its bucket."""
        index = bisect_left(self._bounds, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value
            # Comparisons rather than min()/max(): two calls fewer on every record.
            if value < self._min:  # noqa: PLR1730
                self._min = value
            if value > self._max:  # noqa: PLR1730
                self._max = value

    observe = record

    def time(self) -> Timing:
        """A context manager recording the seconds its block takes."""
        return Timing(self)

    def __call__(self, function: Callable[..., _Result]) -> Callable[..., _Result]:
        """Decorate a function (sync or async) to record the seconds each call takes."""
        return timed(function, lambda: self)

    def state(self) -> tuple[list[int], float, float, float]:
        """A consistent copy of (bucket counts, sum, min, max)."""
        with self._lock:
            return list(self._counts), self._sum, self._min, self._max

    @property
    def bounds(self) -> tuple[float, ...]:
        """The buckets' upper bounds, in increasing order."""
        return self._bounds

    @property
    def count(self) -> int:
        """How many values were recorded."""
        return sum(self._counts)

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._counts = [0] * (len(self._bounds) + 1)
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf


class Timing:
    """Records, into one histogram series, the seconds between enter and exit.

    Failed blocks are timed too: a duration histogram that forgets the slow failures hides
    exactly the calls an operator looks for.
    """

    __slots__ = ("_series", "_start")

    def __init__(self, series: HistogramSeries) -> None:
        self._series = series
        self._start = 0.0

    def __enter__(self) -> Timing:
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._series.record(time.perf_counter() - self._start)

    async def __aenter__(self) -> Timing:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)


def timed(
    function: Callable[..., _Result], series_for_call: Callable[[], HistogramSeries]
) -> Callable[..., _Result]:
    """Wrap ``function`` so each call, awaited to completion when async, is timed."""
    if inspect.iscoroutinefunction(function):
        coroutine_function: Callable[..., Awaitable[Any]] = function

        @functools.wraps(function)
        async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await coroutine_function(*args, **kwargs)
            finally:
                series_for_call().record(time.perf_counter() - start)

        return timed_coroutine  # type: ignore[return-value]

    @functools.wraps(function)
    def timed_call(*args: Any, **kwargs: Any) -> _Result:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            series_for_call().record(time.perf_counter() - start)

    return timed_call
