"""Instrument names checked at creation, and their Prometheus spelling.

A name is checked once, when the instrument is created, against the OpenTelemetry
instrument-name syntax, so that a typo fails at start-up with a clear message rather than
producing a series no dashboard finds. The Prometheus spelling follows the OpenTelemetry
Prometheus exporter exactly (:func:`prometheus_family_name` and
:func:`prometheus_label_name` call the exporter's own mapping, through
:mod:`otel_resilience._compat`), so a metric reads the same whether it reaches Prometheus
through our endpoint or through an SDK reader and a collector. That mapping is imported on
the first Prometheus rendering, not with this module: importing the exporter's package
brings in prometheus_client and the SDK's metric readers, tens of milliseconds of every
program's start-up, which a program whose metrics go elsewhere never needs.
"""

from __future__ import annotations

import re

from otel_resilience._compat import prometheus_family_name, prometheus_label_name

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
