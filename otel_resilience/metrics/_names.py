"""Instrument names checked at creation, and their Prometheus spelling.

A name is checked once, when the instrument is created, against the OpenTelemetry
instrument-name syntax, so that a typo fails at start-up with a clear message rather than
producing a series no dashboard finds. The Prometheus spelling follows the OpenTelemetry
Prometheus exporter exactly (it is the exporter's own mapping that is called), so a
metric reads the same whether it reaches Prometheus through our endpoint or through an
SDK reader and a collector.
"""

from __future__ import annotations

import re

from opentelemetry.exporter.prometheus._mapping import (
    map_unit,
    sanitize_attribute,
    sanitize_full_name,
)

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


def prometheus_family_name(name: str, unit: str, *, counter: bool = False) -> str:
    """The metric family name the OpenTelemetry Prometheus exporter gives this instrument.

    Without the ``_total`` a counter's samples add, like prometheus_client's families.
    """
    family = sanitize_full_name(name)
    if counter and family.endswith("_total"):
        family = family[: -len("_total")]
    suffix = map_unit(unit)
    if suffix and not family.endswith("_" + suffix):
        family = f"{family}_{suffix}"
    return family


def prometheus_label_name(key: str) -> str:
    """An attribute key as a Prometheus label name."""
    return sanitize_attribute(key)
