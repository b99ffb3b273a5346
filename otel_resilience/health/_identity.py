"""Who is reporting: the service's name and version, and how long the process has run."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

__all__ = ["ServiceIdentity", "process_uptime", "service_identity"]


@dataclass(frozen=True, slots=True)
class ServiceIdentity:
    """``service.name`` and ``service.version`` as the telemetry reports them."""

    name: str
    version: str | None


def service_identity() -> ServiceIdentity:
    """From the installed telemetry's resource, else from the environment alone.

    Read from the same resource as the telemetry, so that ``/status`` names the service
    exactly as the dashboards do.
    """
    # Imported here: the configurator imports this package while it builds the providers.
    from otel_resilience.sdk._installed import installed_telemetry

    installed = installed_telemetry()
    attributes = (
        installed.resource.attributes if installed is not None else _environment_attributes()
    )
    name = attributes.get("service.name")
    version = attributes.get("service.version")
    return ServiceIdentity(
        name=str(name) if name is not None else "unknown_service",
        version=str(version) if version is not None else None,
    )


@cache
def _environment_attributes() -> Mapping[str, object]:
    """The resource the SDK would build (``OTEL_SERVICE_NAME``...), built once."""
    from opentelemetry.sdk.resources import Resource

    return dict(Resource.create().attributes)


def _process_start() -> float:
    """The process's start as a ``time.monotonic()`` value.

    On Linux the kernel knows when the process started (``/proc/self/stat``, in clock
    ticks since boot); elsewhere the first call stands in for it, which the configurator
    makes at start-up.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            # Field 22; the command name (field 2) may hold spaces, so count from its end.
            fields = stat.read().rpartition(")")[2].split()
        with open("/proc/uptime", encoding="ascii") as uptime:
            since_boot = float(uptime.read().split()[0])
        started_after_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return time.monotonic() - (since_boot - started_after_boot)
    except (OSError, ValueError, IndexError):
        return time.monotonic()


_started: float | None = None


def _forget_start() -> None:
    global _started  # noqa: PLW0603 - a forked child is a new process with its own start
    _started = None


os.register_at_fork(after_in_child=_forget_start)


def process_uptime() -> float:
    """Seconds since this process started."""
    global _started  # noqa: PLW0603 - measured once per process
    if _started is None:
        _started = _process_start()
    return max(0.0, time.monotonic() - _started)
