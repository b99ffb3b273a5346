"""The ``opentelemetry_distro`` entry point ``otel_resilience``.

Select it explicitly with ``OTEL_PYTHON_DISTRO=otel_resilience`` when other distros are
installed too. Upstream's loader re-raises an instrumentor's unexpected error, which stops
every instrumentor after it from loading; this distro contains such an error to one
warning so that one broken instrumentation never costs the others or the program.

Coexistence: where one of our instrumentations covers a library that an upstream
``opentelemetry-instrumentation-*`` package also instruments (requests, httpx), the
launcher would load both and every request would get two client spans, or ours would see
upstream's suppression and add no breaker. So the upstream instrumentor of a library we
cover is left out; ours gives the same spans and metrics, and the breakers and retries.

Start-up: each of our instrumentations is loaded when the program first imports its
library (a post-import hook), not when the launcher starts, so a program pays only for the
libraries it uses: importing httpx or psycopg just to instrument them costs tens of
milliseconds each. A library imported already (by ``sitecustomize``, say) is instrumented
at once.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import entry_points
from typing import Any

import wrapt

# The upstream module is marked `# type: ignore` as a whole, so mypy sees no names in it.
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

__all__ = ["ResilienceDistro"]

_logger = logging.getLogger(__name__)

_OUR_PREFIX = "otel_resilience_instrumentation_"


@cache
def _libraries_we_instrument() -> frozenset[str]:
    """Entry-point names of our own instrumentors, looked up once per process."""
    return frozenset(
        entry.name
        for entry in entry_points(group="opentelemetry_instrumentor")
        if entry.value.startswith(_OUR_PREFIX)
    )


def _covered_by_us(entry_point: Any) -> bool:
    """Whether ``entry_point`` is another package's instrumentor for a library we cover."""
    value = str(getattr(entry_point, "value", ""))
    name = str(getattr(entry_point, "name", ""))
    return not value.startswith(_OUR_PREFIX) and name in _libraries_we_instrument()


class ResilienceDistro(BaseDistro):  # type: ignore[misc]
    """Loads instrumentors fail-safe; providers are the configurator's job."""

    def _configure(self, **kwargs: Any) -> None:
        """Nothing to do before the configurator: our defaults live in :mod:`.settings`."""

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        """Instrument one library; an unexpected error costs a warning, not the others."""
        if _covered_by_us(entry_point):
            _logger.debug(
                "Left out %s: otel-resilience instruments %s itself",
                entry_point.value,
                entry_point.name,
            )
            return
        if str(getattr(entry_point, "value", "")).startswith(_OUR_PREFIX):
            # Ours are named after the module they instrument (requests, redis, sqlite3...).
            wrapt.register_post_import_hook(
                lambda _module: self._load_ours(entry_point, kwargs),
                entry_point.name,
            )
            return
        self._load_now(entry_point, kwargs, lazily=False)

    def _load_ours(self, entry_point: Any, kwargs: dict[str, Any]) -> None:
        """Instrument one of ours, handing it the settings the configurator read (once per
        process, validated there): our instrumentors read no settings of their own."""
        from otel_resilience.sdk.settings import current_settings

        self._load_now(entry_point, {**kwargs, "settings": current_settings()}, lazily=True)

    def _load_now(self, entry_point: Any, kwargs: dict[str, Any], *, lazily: bool) -> None:
        try:
            super().load_instrumentor(entry_point, **kwargs)
        except ImportError:
            if not lazily:
                raise  # upstream's loader already handles a missing library cleanly
            # The library has just been imported, so this is an incompatible version.
            _logger.warning(
                "Instrumentation %r could not be imported and was skipped",
                entry_point.name,
                exc_info=True,
            )
        except Exception:
            _logger.warning(
                "Instrumentation %r failed and was skipped; the program runs on without it",
                getattr(entry_point, "name", entry_point),
                exc_info=True,
            )
