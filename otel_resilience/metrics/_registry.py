"""Registries: the instruments of one program (the default) or of one component (explicit).

Creating an instrument that exists returns it, as OpenTelemetry's meters do, so two
modules may both say ``counter("app.jobs")``; asking for the same name as a different kind
or unit is a programming error and raises at once with both definitions in the message.

Every registry is reset in a forked child (pre-fork servers such as gunicorn): the child
counts its own work from zero and never reports the parent's counts a second time.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from otel_resilience._fork import unlock_after_fork
from otel_resilience.metrics._instruments import (
    Counter,
    Gauge,
    Histogram,
    Instrument,
    ObservableCounter,
    ObservableGauge,
    Observation,
    Timer,
    _ObservableInstrument,
)

__all__ = [
    "AnyInstrument",
    "MetricRegistry",
    "all_registries",
    "default_registry",
    "resilience_registry",
    "scoped_registry",
]

AnyInstrument = Instrument[Any] | _ObservableInstrument
_I = TypeVar("_I", bound=Instrument[Any] | _ObservableInstrument)

_registries: weakref.WeakSet[MetricRegistry] = weakref.WeakSet()


def _configured_cardinality_limit() -> int:
    from otel_resilience.sdk.settings import current_settings

    return current_settings().metrics_cardinality_limit


class MetricRegistry:
    """A named set of instruments, exported together under one instrumentation scope."""

    def __init__(
        self,
        scope: str = "otel_resilience.metrics",
        *,
        version: str = "",
        cardinality_limit: int | None = None,
    ) -> None:
        if cardinality_limit is not None and cardinality_limit < 2:
            raise ValueError(f"cardinality_limit must be at least 2, got {cardinality_limit!r}")
        self.scope = scope
        self.version = version
        self._cardinality_limit = cardinality_limit
        self._instruments: dict[str, AnyInstrument] = {}
        self._lock = threading.Lock()
        _registries.add(self)

    def cardinality_limit(self) -> int:
        """Label sets kept per instrument before the overflow series takes new ones."""
        if self._cardinality_limit is None:
            self._cardinality_limit = _configured_cardinality_limit()
        return self._cardinality_limit

    def counter(
        self, name: str, *, unit: str = "", description: str = "", labels: Sequence[str] = ()
    ) -> Counter:
        """The counter called ``name``, created on first use."""
        return self._register(
            Counter,
            lambda: Counter(
                name,
                unit=unit,
                description=description,
                label_names=labels,
                cardinality_limit=self.cardinality_limit,
            ),
            name,
            unit,
        )

    def gauge(
        self, name: str, *, unit: str = "", description: str = "", labels: Sequence[str] = ()
    ) -> Gauge:
        """The gauge called ``name``, created on first use."""
        return self._register(
            Gauge,
            lambda: Gauge(
                name,
                unit=unit,
                description=description,
                label_names=labels,
                cardinality_limit=self.cardinality_limit,
            ),
            name,
            unit,
        )

    def histogram(
        self,
        name: str,
        *,
        unit: str = "",
        description: str = "",
        labels: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
    ) -> Histogram:
        """The histogram called ``name``; seconds get the semantic-convention buckets."""
        return self._register(
            Histogram,
            lambda: Histogram(
                name,
                unit=unit,
                description=description,
                label_names=labels,
                buckets=buckets,
                cardinality_limit=self.cardinality_limit,
            ),
            name,
            unit,
        )

    def timer(
        self,
        name: str,
        *,
        description: str = "",
        labels: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
    ) -> Timer:
        """A histogram of seconds called ``name`` that can time blocks and functions."""
        return self._register(
            Timer,
            lambda: Timer(
                name,
                unit="s",
                description=description,
                label_names=labels,
                buckets=buckets,
                cardinality_limit=self.cardinality_limit,
            ),
            name,
            "s",
        )

    def observable_counter(
        self,
        name: str,
        callback: Callable[[], Iterable[Observation]],
        *,
        unit: str = "",
        description: str = "",
    ) -> ObservableCounter:
        """A counter whose ``(value, attributes)`` pairs ``callback`` reports at collection."""
        return self._register(
            ObservableCounter,
            lambda: ObservableCounter(name, callback, unit=unit, description=description),
            name,
            unit,
        )

    def observable_gauge(
        self,
        name: str,
        callback: Callable[[], Iterable[Observation]],
        *,
        unit: str = "",
        description: str = "",
    ) -> ObservableGauge:
        """A gauge whose ``(value, attributes)`` pairs ``callback`` reports at collection."""
        return self._register(
            ObservableGauge,
            lambda: ObservableGauge(name, callback, unit=unit, description=description),
            name,
            unit,
        )

    def _register(self, kind: type[_I], create: Callable[[], _I], name: str, unit: str) -> _I:
        existing = self._instruments.get(name)
        if existing is None:
            with self._lock:
                existing = self._instruments.get(name)
                if existing is None:
                    instrument = create()
                    self._instruments[name] = instrument
                    return instrument
        if type(existing) is not kind or existing.unit != unit:
            raise ValueError(
                f"metric {name!r} already exists in {self.scope!r} as a "
                f"{type(existing).__name__} with unit {existing.unit!r}; it cannot also be a "
                f"{kind.__name__} with unit {unit!r}"
            )
        return existing

    def instruments(self) -> list[AnyInstrument]:
        """Every instrument, in creation order."""
        with self._lock:
            return list(self._instruments.values())

    def get(self, name: str) -> AnyInstrument | None:
        """The instrument called ``name``, if any."""
        return self._instruments.get(name)

    def unregister(self, name: str) -> None:
        """Forget the instrument called ``name`` (its series stop being exported)."""
        with self._lock:
            self._instruments.pop(name, None)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        for instrument in self._instruments.values():
            if isinstance(instrument, Instrument):
                instrument._after_fork_in_child()


_default = MetricRegistry()


def default_registry() -> MetricRegistry:
    """The process-wide registry that the module-level functions and our instruments use."""
    return _default


_scoped: dict[str, MetricRegistry] = {}
"""Our components' registries by scope, held for the process (``_registries`` is weak)."""
_scoped_lock = threading.Lock()
unlock_after_fork(sys.modules[__name__], "_scoped_lock")


def scoped_registry(scope: str) -> MetricRegistry:
    """The registry of one of our components, under ``scope`` and our version; one per
    scope for the process, created on first use."""
    with _scoped_lock:
        registry = _scoped.get(scope)
        if registry is None:
            from otel_resilience._version import __version__

            registry = _scoped[scope] = MetricRegistry(scope, version=__version__)
        return registry


def resilience_registry() -> MetricRegistry:
    """The registry of our own instruments (breakers), under the ``otel_resilience`` scope."""
    return scoped_registry("otel_resilience")


def all_registries() -> list[MetricRegistry]:
    """Every registry alive in this process, the default first."""
    others = [registry for registry in _registries if registry is not _default]
    return [_default, *others]


def _reset_in_child() -> None:
    for registry in list(_registries):
        registry._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
