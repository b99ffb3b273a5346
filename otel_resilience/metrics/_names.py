"""Instrument names checked at creation, and their Prometheus spelling.

A name is checked once, when the instrument is created, against the OpenTelemetry
instrument-name syntax, so that a typo fails at start-up with a clear message rather than
producing a series no dashboard finds. The Prometheus spelling follows the OpenTelemetry
Prometheus exporter exactly (it is the exporter's own mapping that is called), so a
metric reads the same whether it reaches Prometheus through our endpoint or through an
SDK reader and a collector. That mapping is imported on the first Prometheus rendering,
not with this module: importing the exporter's package brings in prometheus_client and the
SDK's metric readers, tens of milliseconds of every program's start-up, which a program
whose metrics go elsewhere never needs.
"""

from __future__ import annotations

import functools
import re
from types import ModuleType

__all__ = ["prometheus_family_name", "prometheus_label_name", "validate_name", "validate_unit"]

_INSTRUMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_./-]{0,254}")


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid OpenTelemetry instrument name, else raise."""
    if not isinstance(name, str) or _INSTRUMENT_NAME.fullmatch(name) is None:
        raise ValueError(
            f"invalid metric name {name!r}: expected a letter followed by up to 254 letters, "
            "digits, '_', '.', '-' or '/', such as 'app.orders.placed'"
        )
    return name


def validate_unit(unit: object) -> str:
    """Return ``unit`` if it is a valid OpenTelemetry unit (ASCII, at most 63 characters)."""
    if not isinstance(unit, str) or len(unit) > 63 or not unit.isascii():
        raise ValueError(
            f"invalid metric unit {unit!r}: expected at most 63 ASCII characters, such as "
            "'s', 'By' or '{request}'"
        )
    return unit


@functools.cache
def _exporter_mapping() -> ModuleType:
    from opentelemetry.exporter.prometheus import _mapping

    return _mapping


def prometheus_family_name(name: str, unit: str, *, counter: bool = False) -> str:
    """The metric family name the OpenTelemetry Prometheus exporter gives this instrument.

    Without the ``_total`` a counter's samples add, like prometheus_client's families.
    """
    mapping = _exporter_mapping()
    family: str = mapping.sanitize_full_name(name)
    if counter and family.endswith("_total"):
        family = family[: -len("_total")]
    suffix: str = mapping.map_unit(unit)
    if suffix and not family.endswith("_" + suffix):
        family = f"{family}_{suffix}"
    return family


def prometheus_label_name(key: str) -> str:
    """An attribute key as a Prometheus label name."""
    label: str = _exporter_mapping().sanitize_attribute(key)
    return label
