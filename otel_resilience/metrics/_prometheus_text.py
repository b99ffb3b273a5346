"""The Prometheus text exposition of registries, rendered straight from the series.

prometheus_client and the OpenTelemetry Prometheus reader build a family object and a
sample tuple per series on every scrape and escape every label again; for ten thousand
series that is most of a scrape's 70 to 190 ms. Here a series' label text is built once,
the first time it is rendered, and kept on the series, so a scrape is one formatted line
per sample.

The output is what the OpenTelemetry Prometheus exporter would write for the same
instruments (its name, unit and label mapping, the ``otel_scope_*`` labels, labels sorted
by name), so dashboards and alert rules don't depend on which path a metric took.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from otel_resilience.metrics._instruments import (
    Counter,
    Gauge,
    Histogram,
    ObservableCounter,
    _ObservableInstrument,
)
from otel_resilience.metrics._names import prometheus_family_name, prometheus_label_name
from otel_resilience.metrics._registry import AnyInstrument, MetricRegistry
from otel_resilience.metrics._series import _Series

__all__ = ["CONTENT_TYPE", "TARGET_INFO_TYPE_LINE", "render_registries", "render_target_info"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


TARGET_INFO_TYPE_LINE = "# TYPE target_info gauge\n"


def _label_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if "\\" in text or '"' in text or "\n" in text:
        text = text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return text


def _label_pairs(attributes: Mapping[str, Any], scope: Mapping[str, str]) -> list[tuple[str, str]]:
    pairs = {prometheus_label_name(key): _label_value(value) for key, value in attributes.items()}
    pairs.update(scope)
    return sorted(pairs.items())


def _labels_text(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{name}="{value}"' for name, value in pairs) + "}"


def _bucket_affixes(pairs: list[tuple[str, str]]) -> tuple[str, str, str]:
    """(prefix, suffix) around a bucket's bound with ``le`` in its sorted place, and the
    label text of ``_count`` and ``_sum``."""
    before = [f'{name}="{value}"' for name, value in pairs if name < "le"]
    after = [f'{name}="{value}"' for name, value in pairs if name > "le"]
    prefix = "{" + "".join(item + "," for item in before) + 'le="'
    suffix = '"' + "".join("," + item for item in after) + "}"
    return prefix, suffix, _labels_text(pairs) if pairs else ""


def _number(value: float) -> str:
    """A sample value as prometheus_client writes it (Go's float formatting)."""
    if type(value) is int and -1_000_000 < value < 1_000_000:
        return f"{value}.0"
    value = float(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _scope_labels(registry: MetricRegistry) -> dict[str, str]:
    return {
        "otel_scope_name": _label_value(registry.scope),
        "otel_scope_schema_url": "",
        "otel_scope_version": _label_value(registry.version),
    }


def _header(family: str, kind: str, description: str) -> str:
    help_text = description.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {family} {help_text}\n# TYPE {family} {kind}\n"


def _series_labels(series: _Series, scope: Mapping[str, str]) -> str:
    labels: str | None = series.prometheus_labels
    if labels is None:
        labels = series.prometheus_labels = _labels_text(_label_pairs(series.attributes, scope))
    return labels


def _render_histogram(instrument: Histogram, scope: Mapping[str, str], out: list[str]) -> None:
    family = prometheus_family_name(instrument.name, instrument.unit)
    out.append(_header(family, "histogram", instrument.description))
    bucket_name = family + "_bucket"
    bounds = [repr(bound) for bound in instrument.buckets] + ["+Inf"]
    for series in instrument.series():
        affixes = series.prometheus_labels
        if affixes is None:
            affixes = series.prometheus_labels = _bucket_affixes(
                _label_pairs(series.attributes, scope)
            )
        prefix, suffix, plain = affixes
        counts, total, _, _ = series.state()
        cumulative = 0
        for bound, count in zip(bounds, counts, strict=True):
            cumulative += count
            out.append(f"{bucket_name}{prefix}{bound}{suffix} {cumulative}.0\n")
        out.append(f"{family}_count{plain} {cumulative}.0\n{family}_sum{plain} {_number(total)}\n")


def _render_observable(
    instrument: _ObservableInstrument, scope: Mapping[str, str], out: list[str]
) -> None:
    counter = isinstance(instrument, ObservableCounter)
    family = prometheus_family_name(instrument.name, instrument.unit, counter=counter)
    sample = family + "_total" if counter else family
    out.append(_header(sample, "counter" if counter else "gauge", instrument.description))
    for value, attributes in instrument.observe():
        out.append(f"{sample}{_labels_text(_label_pairs(attributes, scope))} {_number(value)}\n")


def _render_instrument(instrument: AnyInstrument, scope: Mapping[str, str], out: list[str]) -> None:
    if isinstance(instrument, Histogram):
        _render_histogram(instrument, scope, out)
    elif isinstance(instrument, Counter | Gauge):
        counter = isinstance(instrument, Counter)
        family = prometheus_family_name(instrument.name, instrument.unit, counter=counter)
        sample = family + "_total" if counter else family
        out.append(_header(sample, "counter" if counter else "gauge", instrument.description))
        for series in instrument.series():
            labels = series.prometheus_labels or _series_labels(series, scope)
            out.append(f"{sample}{labels} {_number(series.value)}\n")
    elif isinstance(instrument, _ObservableInstrument):
        _render_observable(instrument, scope, out)


def render_registries(registries: Iterable[MetricRegistry]) -> str:
    """The text exposition (format 0.0.4) of every instrument in ``registries``."""
    out: list[str] = []
    for registry in registries:
        scope = _scope_labels(registry)
        for instrument in registry.instruments():
            _render_instrument(instrument, scope, out)
    return "".join(out)


def render_target_info(resource_attributes: Mapping[str, Any]) -> str:
    """``target_info``: the resource as labels, as the OpenTelemetry Prometheus exporter writes it.

    Prometheus queries join a process's series to its service through it
    (``* on (job, instance) group_left () target_info{service_name=...}``). The exporter
    writes it only in a scrape that has SDK metric data, so a process whose metrics all
    live in registries must write it itself. Labels keep the resource's order, as there.
    """
    labels = {
        prometheus_label_name(key): _label_value(value)
        for key, value in resource_attributes.items()
    }
    text = ",".join(f'{name}="{value}"' for name, value in labels.items())
    return f"# HELP target_info Target metadata\n{TARGET_INFO_TYPE_LINE}target_info{{{text}}} 1.0\n"
