"""Counter, Gauge, Histogram and Timer: named instruments holding one series per label set.

An update with a label mapping finds its series through a dictionary keyed by the
mapping's items as given, so the common case (the same literal mapping on every call)
costs one ``tuple()`` and one lookup; the canonical, order-independent key is computed
only the first time a spelling is seen. ``labels()``/``bind()`` return the series itself,
for code that updates the same label set many times (prometheus_client's "children").

Label sets per instrument are capped (``OTEL_RESILIENCE_METRICS_CARDINALITY_LIMIT``, 2000
by default, like the SDK's): once the cap is reached, updates for new label sets go to one
overflow series labelled ``otel.metric.overflow=true``, so a label fed with user ids can't
exhaust memory, and nothing is silently lost.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Literal, TypeVar

from otel_resilience.metrics._names import validate_name, validate_unit
from otel_resilience.metrics._series import (
    Attributes,
    CounterSeries,
    GaugeSeries,
    HistogramSeries,
    Timing,
    _Series,
    timed,
)

__all__ = [
    "DEFAULT_BUCKETS",
    "OVERFLOW_ATTRIBUTES",
    "Counter",
    "Gauge",
    "Histogram",
    "Instrument",
    "InstrumentKind",
    "ObservableCounter",
    "ObservableGauge",
    "Observation",
    "Timer",
]

_logger = logging.getLogger("otel_resilience.metrics")

InstrumentKind = Literal["counter", "gauge", "histogram", "observable_counter", "observable_gauge"]

# The SDK's default explicit-bucket boundaries, for histograms not measured in seconds.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0,
    5.0,
    10.0,
    25.0,
    50.0,
    75.0,
    100.0,
    250.0,
    500.0,
    750.0,
    1000.0,
    2500.0,
    5000.0,
    7500.0,
    10000.0,
)
OVERFLOW_ATTRIBUTES: Mapping[str, Any] = {"otel.metric.overflow": True}

_S = TypeVar("_S", bound=_Series)
_Result = TypeVar("_Result")


def _frozen(value: Any) -> Any:
    """An attribute value as a hashable, exportable one (sequences become tuples)."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return str(value)


class Instrument(Generic[_S]):
    """What every instrument with stored series shares: naming, label sets and the cap."""

    kind: ClassVar[InstrumentKind]

    def __init__(
        self,
        name: str,
        *,
        unit: str = "",
        description: str = "",
        label_names: Sequence[str] = (),
        cardinality_limit: Callable[[], int],
    ) -> None:
        self.name = validate_name(name)
        self.unit = validate_unit(unit)
        self.description = str(description)
        self.label_names = tuple(str(label) for label in label_names)
        self._cardinality_limit = cardinality_limit
        self._series: dict[tuple[tuple[str, Any], ...], _S] = {}
        self._lookup: dict[tuple[tuple[str, Any], ...], _S] = {}
        self._lock = threading.Lock()
        self._unlabelled: _S | None = None
        self._overflowed = False

    def _new_series(self, attributes: Attributes) -> _S:
        raise NotImplementedError

    def labels(self, *values: Any, **named: Any) -> _S:
        """The series for one label set, to keep and update many times.

        Positional values follow the ``label_names`` given at creation; names given as
        keywords may be any. Wrong label names are a programming error, reported here,
        where the code binds once, rather than on every update.
        """
        if values:
            if named or len(values) != len(self.label_names):
                raise ValueError(
                    f"{self.name}: expected {len(self.label_names)} label values "
                    f"({', '.join(self.label_names) or 'none declared'}), got {values!r}"
                )
            named = dict(zip(self.label_names, values, strict=True))
        elif self.label_names and set(named) != set(self.label_names):
            raise ValueError(
                f"{self.name}: expected the labels {', '.join(self.label_names)}, "
                f"got {', '.join(sorted(named)) or 'none'}"
            )
        return self._series_for(named)

    def bind(self, attributes: Attributes | None = None, **named: Any) -> _S:
        """The series for ``attributes`` (and/or keyword labels), without label-name checks."""
        merged = {**attributes, **named} if attributes else named
        return self._series_for(merged)

    def _series_for(self, attributes: Attributes | None) -> _S:
        """The series for ``attributes``: the slow path, taken once per label-set spelling."""
        if not attributes:
            series = self._unlabelled
            if series is None:
                series = self._unlabelled = self._get_or_create(())
            if attributes is not None:  # an empty mapping: found by the lookup from now on
                self._lookup[()] = series
            return series
        canonical = tuple(sorted((str(key), _frozen(value)) for key, value in attributes.items()))
        series = self._get_or_create(canonical)
        try:
            spelling = tuple(attributes.items())
            if len(self._lookup) < 4 * self._cardinality_limit():
                self._lookup[spelling] = series
        except TypeError:  # an unhashable value: this spelling always takes the slow path
            pass
        return series

    def _find(self, attributes: Attributes | None) -> _S:
        """The series of an update's attributes: one tuple and one lookup when seen before."""
        if attributes is None:
            return self._unlabelled or self._series_for(None)
        try:
            return self._lookup[tuple(attributes.items())]
        except (KeyError, TypeError):  # a new spelling, or an unhashable value
            return self._series_for(attributes)

    def _get_or_create(self, canonical: tuple[tuple[str, Any], ...]) -> _S:
        series = self._series.get(canonical)
        if series is not None:
            return series
        with self._lock:
            series = self._series.get(canonical)
            if series is not None:
                return series
            if len(self._series) >= self._cardinality_limit() - 1 and canonical:
                return self._overflow_series()
            series = self._new_series(dict(canonical))
            self._series[canonical] = series
            return series

    def _overflow_series(self) -> _S:
        # Called with self._lock held.
        key = tuple(OVERFLOW_ATTRIBUTES.items())
        series = self._series.get(key)
        if series is None:
            series = self._new_series(dict(OVERFLOW_ATTRIBUTES))
            self._series[key] = series
        if not self._overflowed:
            self._overflowed = True
            _logger.warning(
                "metric %s reached its cardinality limit of %d label sets; further label "
                "sets are counted in one series labelled otel.metric.overflow=true "
                "(OTEL_RESILIENCE_METRICS_CARDINALITY_LIMIT raises the limit)",
                self.name,
                self._cardinality_limit(),
            )
        return series

    def series(self) -> list[_S]:
        """Every series, in creation order."""
        with self._lock:
            return list(self._series.values())

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        for series in self._series.values():
            series._after_fork_in_child()


class Counter(Instrument[CounterSeries]):
    """A monotonic sum: requests served, bytes sent, errors seen."""

    kind = "counter"

    def _new_series(self, attributes: Attributes) -> CounterSeries:
        return CounterSeries(self.name, attributes)

    def add(self, amount: float = 1, attributes: Attributes | None = None) -> None:
        """Add ``amount`` to the series of ``attributes`` (OpenTelemetry's spelling)."""
        # _find and the series' add, inlined: two calls fewer on the hottest path.
        if attributes is None:
            series = self._unlabelled or self._series_for(None)
        else:
            try:
                series = self._lookup[tuple(attributes.items())]
            except (KeyError, TypeError):
                series = self._series_for(attributes)
        if amount < 0:
            series.add(amount)  # which drops it, with the warning
            return
        with series._lock:
            series._value += amount

    inc = add


class Gauge(Instrument[GaugeSeries]):
    """A current value: queue depth, connections open, temperature."""

    kind = "gauge"

    def _new_series(self, attributes: Attributes) -> GaugeSeries:
        return GaugeSeries(attributes)

    def set(self, value: float, attributes: Attributes | None = None) -> None:
        """Set the series of ``attributes`` to ``value``."""
        self._find(attributes).set(value)

    def add(self, amount: float = 1, attributes: Attributes | None = None) -> None:
        """Add ``amount`` (possibly negative) to the series of ``attributes``."""
        self._find(attributes).add(amount)

    inc = add

    def dec(self, amount: float = 1, attributes: Attributes | None = None) -> None:
        """Subtract ``amount`` from the series of ``attributes``."""
        self._find(attributes).dec(amount)


class Histogram(Instrument[HistogramSeries]):
    """A distribution with explicit buckets: durations, sizes."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        *,
        unit: str = "",
        description: str = "",
        label_names: Sequence[str] = (),
        buckets: Sequence[float] | None,
        cardinality_limit: Callable[[], int],
    ) -> None:
        super().__init__(
            name,
            unit=unit,
            description=description,
            label_names=label_names,
            cardinality_limit=cardinality_limit,
        )
        self.buckets = _validated_buckets(name, unit, buckets)

    def _new_series(self, attributes: Attributes) -> HistogramSeries:
        return HistogramSeries(self.buckets, attributes)

    def record(self, value: float, attributes: Attributes | None = None) -> None:
        """Count ``value`` in the series of ``attributes``."""
        self._find(attributes).record(value)

    observe = record


class Timer(Histogram):
    """A histogram of seconds, with a context manager and a decorator (sync and async).

    ``with timer.time(): ...``, ``with timer.labels(route="/x").time(): ...``,
    ``@timer`` or ``@timer.labels(route="/x")`` on a function or a coroutine function.
    """

    def time(self, attributes: Attributes | None = None) -> Timing:
        """A context manager recording its block's duration into ``attributes``' series."""
        return Timing(self.bind(attributes))

    def __call__(self, function: Callable[..., _Result]) -> Callable[..., _Result]:
        """Time every call of ``function`` into the unlabelled series."""
        return timed(function, lambda: self._unlabelled or self._series_for(None))


def _validated_buckets(name: str, unit: str, buckets: Sequence[float] | None) -> tuple[float, ...]:
    if buckets is None:
        from otel_resilience.sdk._views import SECONDS_BUCKETS

        return SECONDS_BUCKETS if unit == "s" else DEFAULT_BUCKETS
    bounds = tuple(float(bound) for bound in buckets)
    if any(later <= earlier for earlier, later in itertools.pairwise(bounds)) or not all(
        math.isfinite(bound) for bound in bounds
    ):
        raise ValueError(
            f"{name}: buckets must be finite and strictly increasing, got {list(buckets)!r}"
        )
    return bounds


Observation = tuple[float, Attributes]


class _ObservableInstrument:
    """An instrument whose values a callback reports when metrics are collected.

    For values that already exist elsewhere (a breaker's own counters, a queue's length):
    nothing is paid on the hot path, and the numbers are read when someone looks.
    """

    kind: ClassVar[InstrumentKind]

    def __init__(
        self,
        name: str,
        callback: Callable[[], Iterable[Observation]],
        *,
        unit: str = "",
        description: str = "",
    ) -> None:
        self.name = validate_name(name)
        self.unit = validate_unit(unit)
        self.description = str(description)
        self._callback = callback

    def observe(self) -> list[Observation]:
        """Run the callback; a failing callback costs one warning and reports nothing."""
        try:
            return list(self._callback())
        except Exception as error:  # fail-safe: a user's callback must not stop an export
            _logger.warning(
                "metric %s: its callback raised %s: %s; no values this time",
                self.name,
                type(error).__name__,
                error,
            )
            return []


class ObservableCounter(_ObservableInstrument):
    """Monotonic sums read from a callback at collection time."""

    kind = "observable_counter"


class ObservableGauge(_ObservableInstrument):
    """Current values read from a callback at collection time."""

    kind = "observable_gauge"
