"""``python -m otel_resilience doctor``: what the launcher would load and configure, and why.

"Is it working?" is the first question about a distribution that acts through entry points
and environment variables, and every answer to it is decided before the program's first
line runs. The report answers it from a shell, without running the program: it repeats the
launcher's own decisions (``opentelemetry-instrument``'s ``_load_distro``,
``_load_configurators`` and ``_load_instrumentors``, with its dependency check) and our
distro's coexistence rule, over the same environment. It imports no instrumentor, creates
no exporter, installs no provider and touches no network, so it takes well under a second.

What it does not see: an instrumentor that the launcher loads but that then fails inside
its ``instrument()`` (a warning at the program's start-up says so).

``--json`` prints one object, schema 1 (fields may be added, never renamed or removed)::

    {
      "schema": 1,
      "version": "0.1.0",                  # otel-resilience
      "distro": {                          # likewise "configurator"
        "installed": ["otel_resilience"],  # entry-point names, in the launcher's order
        "requested": null,                 # OTEL_PYTHON_DISTRO, null when unset
        "in_use": "otel_resilience",       # what the launcher picks; null: none
        "ours": true
      },
      "sdk_disabled": false,               # OTEL_SDK_DISABLED=true: no providers
      "instrumentations": [{
        "name": "requests",                # the entry point's (library's) name
        "entry_point": "otel_resilience_instrumentation_requests:RequestsInstrumentor",
        "distribution": "otel-resilience-instrumentation-requests",
        "ours": true,
        "status": "active",                # or "inactive"
        "reason": null,                    # inactive: "disabled", "library_absent",
                                           # "library_version", "covered_by_otel_resilience"
        "resilience": true,                # ours: breakers and retries on; upstream: null
        "detail": ""                       # the reason in words
      }],
      "exporters": {"traces": [], "metrics": [{
        "name": "prometheus",              # otlp, prometheus, console or a plugin's name
        "target": "localhost:9464",        # endpoint (credentials redacted) or host:port
        "protocol": null,                  # otlp: "grpc" or "http/protobuf"
        "headers_from": null               # otlp: the variable headers come from; values
      }], "logs": []},                     # are never shown
      "settings": [{"name": "OTEL_RESILIENCE_...", "value": "...", "source": "default"}],
      "problems": ["..."]                  # each a sentence; the exit code is 1 if any
    }

``value`` is the value in use, as the README's configuration table writes it (a percentage
as set, ``50%``). ``source`` is ``environment`` when what the variable says is in use, and
``default`` when it is unset or its value was set aside: invalid, or contradicting another
variable (each such value is also one of the problems).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import Distribution, EntryPoint, distributions
from typing import Literal

from opentelemetry.instrumentation.dependencies import (
    DependencyConflict,
    get_dist_dependency_conflicts,
)

from otel_resilience._compat import launcher_entry_points, otlp_endpoint
from otel_resilience._secrets import redact_text, redact_url
from otel_resilience._version import __version__
from otel_resilience.sdk import settings as config
from otel_resilience.sdk.distro import _OUR_PREFIX, _covered_by_us
from otel_resilience.sdk.settings import SIGNALS, ExportSettings, Settings, Signal

__all__ = ["DoctorReport", "gather", "render_json", "render_text", "summary_line"]

SCHEMA = 1
OUR_NAME = "otel_resilience"  # the name of our distro and configurator entry points

Reason = Literal["disabled", "library_absent", "library_version", "covered_by_otel_resilience"]


@dataclass(frozen=True, slots=True)
class Choice:
    """Which distro (or configurator) the launcher uses among those installed."""

    installed: tuple[str, ...]
    requested: str | None
    in_use: str | None
    ours: bool


@dataclass(frozen=True, slots=True)
class Instrumentation:
    """One ``opentelemetry_instrumentor`` entry point and what the launcher does with it."""

    name: str
    entry_point: str
    distribution: str
    ours: bool
    status: Literal["active", "inactive"]
    reason: Reason | None
    resilience: bool | None
    detail: str


@dataclass(frozen=True, slots=True)
class Exporter:
    """Where one signal goes; never a header value or a credential."""

    name: str
    target: str | None = None
    protocol: str | None = None
    headers_from: str | None = None


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    value: str
    source: Literal["default", "environment"]


@dataclass(frozen=True, slots=True)
class DoctorReport:
    version: str
    distro: Choice
    configurator: Choice
    sdk_disabled: bool
    instrumentations: tuple[Instrumentation, ...]
    exporters: Mapping[Signal, tuple[Exporter, ...]]
    settings: tuple[Setting, ...]
    problems: tuple[str, ...]


# --- gathering ------------------------------------------------------------------------------


def gather(environ: Mapping[str, str] | None = None) -> DoctorReport:
    """The report for a program started under the launcher with ``environ`` (default:
    ``os.environ``)."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    with _captured_warnings(logging.getLogger(config.__name__)) as warnings:
        settings = Settings.from_environment(environ)
        setting_rows = _settings(environ, settings)
    problems.extend(dict.fromkeys(warnings))  # each variable is read more than once
    distro = _distro(environ, problems)
    configurator = _configurator(environ, problems)
    instrumentations = _instrumentations(environ, settings, distro.ours, problems)
    return DoctorReport(
        version=__version__,
        distro=distro,
        configurator=configurator,
        sdk_disabled=settings.sdk_disabled,
        instrumentations=instrumentations,
        exporters=_exporters(settings.export, environ),
        settings=setting_rows,
        problems=tuple(redact_text(problem) for problem in problems),
    )


class _Collect(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _captured_warnings(logger: logging.Logger) -> Iterator[list[str]]:
    """The warnings ``logger`` gives meanwhile, as messages, kept from its usual handlers.

    The settings report invalid values only through warnings, each of which becomes one
    problem here; the report shows them once, in its own place.
    """
    messages: list[str] = []
    handler = _Collect(messages)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _choice(
    kind: str,
    variable: str,
    installed: list[EntryPoint],
    in_use: EntryPoint | None,
    environ: Mapping[str, str],
    problems: list[str],
) -> Choice:
    requested = environ.get(variable)
    names = tuple(entry.name for entry in installed)
    ours = in_use is not None and in_use.value.startswith(f"{OUR_NAME}.")
    if requested is not None and in_use is None and requested not in names:
        problems.append(
            f"{variable}={requested!r} names no installed {kind} (installed: "
            f"{', '.join(names) or 'none'}); the launcher uses none"
        )
    elif requested is None and len(names) > 1 and not ours and OUR_NAME in names:
        problems.append(
            f"{len(names)} {kind}s are installed and the launcher takes the first, "
            f"{in_use.name if in_use else 'none'}; set {variable}={OUR_NAME} to use ours"
        )
    return Choice(names, requested, in_use.name if in_use else None, ours)


def _distro(environ: Mapping[str, str], problems: list[str]) -> Choice:
    """As ``_load_distro``: the requested one, or the first that is a distro."""
    # The upstream module is marked `# type: ignore` as a whole, so mypy sees no names in it.
    from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

    requested = environ.get("OTEL_PYTHON_DISTRO")
    installed = list(launcher_entry_points(group="opentelemetry_distro"))
    in_use = None
    for entry in installed:
        if requested is not None and requested != entry.name:
            continue
        try:
            loaded = entry.load()
        except Exception as error:
            problems.append(
                f"distro {entry.name} cannot be loaded ({type(error).__name__}: {error}); "
                "the launcher stops there and nothing is configured or instrumented"
            )
            break
        if isinstance(loaded, type) and not issubclass(loaded, BaseDistro):
            continue  # the launcher skips what is not a distro
        in_use = entry
        break
    return _choice("distro", "OTEL_PYTHON_DISTRO", installed, in_use, environ, problems)


def _configurator(environ: Mapping[str, str], problems: list[str]) -> Choice:
    """As ``_load_configurators``: the requested one, or the first installed."""
    requested = environ.get("OTEL_PYTHON_CONFIGURATOR")
    installed = list(launcher_entry_points(group="opentelemetry_configurator"))
    in_use = next(
        (entry for entry in installed if requested is None or requested == entry.name), None
    )
    return _choice("configurator", "OTEL_PYTHON_CONFIGURATOR", installed, in_use, environ, problems)


def _instrumentations(
    environ: Mapping[str, str], settings: Settings, our_distro: bool, problems: list[str]
) -> tuple[Instrumentation, ...]:
    """As ``_load_instrumentors``, then our distro's ``load_instrumentor``, in that order."""
    raw = environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")
    excluded = [name.strip() for name in raw.split(",")] if raw is not None else []
    installed = list(launcher_entry_points(group="opentelemetry_instrumentor"))
    found = [_instrumentation(entry, excluded, settings, our_distro) for entry in installed]
    names = {entry.name for entry in installed}
    unknown = [name for name in excluded if name not in ("", "*") and name not in names]
    if unknown:
        problems.append(
            f"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS names {', '.join(unknown)}, which no "
            f"installed instrumentation is called (names are case-sensitive: "
            f"{', '.join(sorted(names))})"
        )
    problems.extend(
        f"{item.name}: {item.detail}" for item in found if item.reason == "library_version"
    )
    ours_active = {item.name for item in found if item.ours and item.status == "active"}
    problems.extend(
        f"{item.name} is instrumented twice, by otel-resilience and by {item.distribution}: "
        f"every call gets two client spans; set OTEL_PYTHON_DISTRO={OUR_NAME}"
        for item in found
        if not item.ours and item.status == "active" and item.name in ours_active
    )
    return tuple(sorted(found, key=lambda item: (item.name, not item.ours, item.entry_point)))


def _instrumentation(
    entry: EntryPoint, excluded: list[str], settings: Settings, our_distro: bool
) -> Instrumentation:
    ours = entry.value.startswith(_OUR_PREFIX)
    distribution = entry.dist or _distribution_of(entry)
    found = Instrumentation(
        name=entry.name,
        entry_point=entry.value,
        distribution=distribution.name if distribution else "",
        ours=ours,
        status="inactive",
        reason=None,
        resilience=None,
        detail="",
    )
    if "*" in excluded or entry.name in excluded:
        return dataclasses.replace(
            found, reason="disabled", detail="disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
        )
    conflict = get_dist_dependency_conflicts(distribution) if distribution else None
    if conflict is not None:
        version_conflict = bool(conflict.found or conflict.found_any)
        return dataclasses.replace(
            found,
            reason="library_version" if version_conflict else "library_absent",
            detail=_conflict_detail(conflict, version_conflict),
        )
    if our_distro and _covered_by_us(entry):
        return dataclasses.replace(
            found,
            reason="covered_by_otel_resilience",
            detail=f"left out, otel-resilience instruments {entry.name} itself",
        )
    if not ours:
        return dataclasses.replace(found, status="active")
    resilience = settings.resilience_enabled(entry.name)
    return dataclasses.replace(
        found,
        status="active",
        resilience=resilience,
        detail="" if resilience else "spans and metrics only (in OTEL_RESILIENCE_DISABLED)",
    )


def _distribution_of(entry: EntryPoint) -> Distribution | None:
    """The launcher's fallback when an entry point does not know its distribution."""
    for distribution in distributions():
        if entry in distribution.entry_points:
            return distribution
    return None


def _conflict_detail(conflict: DependencyConflict, version_conflict: bool) -> str:
    def requirement(text: object) -> str:  # a `Requirement`, though typed as `str`
        return str(text).partition(";")[0].strip()  # without `extra == "instruments"`

    wanted = (
        requirement(conflict.required)
        if conflict.required
        else " or ".join(map(requirement, conflict.required_any or ()))
    )
    if version_conflict:
        found = conflict.found or ", ".join(conflict.found_any)
        return f"installed {found} is outside what it instruments ({wanted})"
    return f"library not installed ({wanted})"


def _exporters(
    export: ExportSettings, environ: Mapping[str, str]
) -> dict[Signal, tuple[Exporter, ...]]:
    return {
        signal: tuple(_exporter(signal, name, export, environ) for name in export.exporters[signal])
        for signal in SIGNALS
    }


def _exporter(
    signal: Signal, name: str, export: ExportSettings, environ: Mapping[str, str]
) -> Exporter:
    if name == "prometheus":
        return Exporter(name, target=f"{export.prometheus_host}:{export.prometheus_port}")
    if name == "console":
        return Exporter(name, target="standard output")
    if name != "otlp":
        return Exporter(name)  # a plugin: it reads its own variables
    protocol = export.otlp_protocols[signal]
    specific = f"OTEL_EXPORTER_OTLP_{signal.upper()}_"
    headers = next(
        (
            variable
            for variable in (f"{specific}HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
            if environ.get(variable)
        ),
        None,
    )
    return Exporter(
        name,
        target=redact_url(otlp_endpoint(signal, protocol, environ)),
        protocol=protocol,
        headers_from=headers,
    )


def _breaker_policy_field(name: str) -> Callable[[Settings], object]:
    return lambda settings: getattr(settings.breaker_policy, name)


# Variables whose value in use can differ from what they read alone: values that contradict
# another variable fall back together, and unknown names or a file output without a file
# are dropped.
_EFFECTIVE: dict[str, Callable[[Settings], object]] = {
    config.DISABLED.name: lambda settings: settings.resilience_disabled,
    config.RETRY_INITIAL_BACKOFF.name: lambda settings: settings.retry.initial_backoff,
    config.RETRY_MAX_BACKOFF.name: lambda settings: settings.retry.max_backoff,
    config.LOG_OUTPUTS.name: lambda settings: settings.logs.outputs,
    **{
        variable.name: _breaker_policy_field(field)
        for variable, field in (
            (config.BREAKER_CONSECUTIVE_FAILURES, "consecutive_failures"),
            (config.BREAKER_FAILURE_RATE, "failure_rate_threshold"),
            (config.BREAKER_SLOW_CALL_RATE, "slow_call_rate_threshold"),
            (config.BREAKER_SLOW_CALL_DURATION, "slow_call_duration"),
            (config.BREAKER_WINDOW_KIND, "window_kind"),
            (config.BREAKER_WINDOW_SIZE, "window_size"),
            (config.BREAKER_MINIMUM_CALLS, "minimum_calls"),
            (config.BREAKER_HALF_OPEN_MAX_CALLS, "half_open_max_calls"),
            (config.BREAKER_RECOVERY_TIMEOUT, "recovery_timeout"),
            (config.BREAKER_MAX_RECOVERY_TIMEOUT, "max_recovery_timeout"),
        )
    },
}


def _settings(environ: Mapping[str, str], settings: Settings) -> tuple[Setting, ...]:
    """Each variable's value in use; ``environment`` when what was set is (part of) it."""
    rows = []
    for variable in config.RESILIENCE_VARIABLES:
        read, rejected = variable.read_checked(environ)
        in_use = _EFFECTIVE.get(variable.name)
        effective = read if in_use is None else in_use(settings)
        from_environment = (
            bool(environ.get(variable.name, "").strip())
            and not rejected
            and (effective == read or effective != variable.default)
        )
        shown = config._render_default(effective)
        if variable.type_name.startswith("percent") and isinstance(effective, float):
            shown = f"{effective * 100:g}%"  # as it is set, not the fraction it is held as
        rows.append(
            Setting(
                variable.name,
                redact_text(shown),
                "environment" if from_environment else "default",
            )
        )
    return tuple(rows)


# --- rendering ------------------------------------------------------------------------------


def render_json(report: DoctorReport) -> str:
    return json.dumps({"schema": SCHEMA, **dataclasses.asdict(report)}, indent=2)


def _choice_text(choice: Choice, variable: str) -> str:
    if choice.in_use is None:
        return f"none (installed: {', '.join(choice.installed) or 'none'})"
    ours = " (ours)" if choice.ours else ""
    if choice.requested is not None:
        how = f"chosen by {variable}"
    elif len(choice.installed) == 1:
        how = "the only one installed"
    else:
        how = f"the first of {', '.join(choice.installed)}; {variable} chooses"
    return f"{choice.in_use}{ours}: {how}"


def _status_text(item: Instrumentation) -> str:
    if item.status == "inactive":
        return f"inactive: {item.detail}"
    if item.resilience is False:
        return f"active, resilience off: {item.detail}"
    return "active"


def _exporter_text(exporter: Exporter) -> str:
    notes = [exporter.protocol] if exporter.protocol else []
    if exporter.headers_from:
        notes.append(f"headers from {exporter.headers_from}, values not shown")
    return " ".join(
        part
        for part in (exporter.name, exporter.target, f"({'; '.join(notes)})" if notes else "")
        if part
    )


def render_text(report: DoctorReport) -> str:
    lines = [
        f"otel-resilience {report.version}",
        "",
        f"distro        {_choice_text(report.distro, 'OTEL_PYTHON_DISTRO')}",
        f"configurator  {_choice_text(report.configurator, 'OTEL_PYTHON_CONFIGURATOR')}",
        "",
        "instrumentations",
    ]
    width = max((len(item.name) for item in report.instrumentations), default=0)
    lines.extend(
        f"  {item.name:<{width}}  {'ours    ' if item.ours else 'upstream'}  {_status_text(item)}"
        for item in report.instrumentations
    )
    lines += ["", "exporters"]
    if report.sdk_disabled:
        lines.append("  none: OTEL_SDK_DISABLED=true turns the configurator off")
    else:
        for signal, exporters in report.exporters.items():
            texts = [_exporter_text(exporter) for exporter in exporters] or ["none"]
            lines.append(f"  {signal:<8} {texts[0]}")
            lines.extend(f"  {'':<8} {text}" for text in texts[1:])
    lines += ["", "settings"]
    width = max(len(setting.name) for setting in report.settings)
    value_width = min(max(len(setting.value) for setting in report.settings), 24)
    lines.extend(
        f"  {setting.name:<{width}}  {setting.value:<{value_width}}  {setting.source}"
        for setting in report.settings
    )
    lines += ["", "problems"]
    lines.extend(f"  - {problem}" for problem in report.problems)
    if not report.problems:
        lines.append("  none")
    return "\n".join(lines)


_SHORT_REASONS: dict[Reason, str] = {
    "covered_by_otel_resilience": "left out for ours",
    "disabled": "disabled",
    "library_absent": "library absent",
    "library_version": "library version unsupported",
}


def summary_line(report: DoctorReport) -> str:
    """The report in one line, for the INFO record at start-up."""

    def named(item: Instrumentation) -> str:
        return item.name if item.ours else f"upstream {item.name}"

    active = [item for item in report.instrumentations if item.status == "active"]
    resilience_off = [item.name for item in active if item.resilience is False]
    inactive: dict[str, list[str]] = {}
    for item in report.instrumentations:
        if item.reason is not None:
            inactive.setdefault(_SHORT_REASONS[item.reason], []).append(named(item))
    exports = ", ".join(
        f"{signal} {' + '.join(map(_exporter_text, exporters)) or 'none'}"
        for signal, exporters in report.exporters.items()
    )
    problems = len(report.problems)
    parts = [
        f"otel-resilience {report.version}: distro {report.distro.in_use or 'none'}, "
        f"configurator {report.configurator.in_use or 'none'}",
        f"active: {', '.join(map(named, active)) or 'none'}"
        + (f" (resilience off: {', '.join(resilience_off)})" if resilience_off else ""),
        *(f"{reason}: {', '.join(names)}" for reason, names in inactive.items()),
        "exports: none (OTEL_SDK_DISABLED)" if report.sdk_disabled else f"exports: {exports}",
        f"{problems} problem{'' if problems == 1 else 's'} (python -m otel_resilience doctor)",
    ]
    return "; ".join(parts)
