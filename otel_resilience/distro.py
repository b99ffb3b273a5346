"""The ``opentelemetry_distro`` entry point ``otel_resilience``.

Select it explicitly with ``OTEL_PYTHON_DISTRO=otel_resilience`` when other distros are
installed too. Upstream's loader re-raises an instrumentor's unexpected error, which stops
every instrumentor after it from loading; this distro contains such an error to one
warning so that one broken instrumentation never costs the others or the program.
"""

from __future__ import annotations

import logging
from typing import Any

# The upstream module is marked `# type: ignore` as a whole, so mypy sees no names in it.
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

__all__ = ["ResilienceDistro"]

_logger = logging.getLogger(__name__)


class ResilienceDistro(BaseDistro):  # type: ignore[misc]
    """Loads instrumentors fail-safe; providers are the configurator's job."""

    def _configure(self, **kwargs: Any) -> None:
        """Nothing to do before the configurator: our defaults live in :mod:`config`."""

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        """Instrument one library; an unexpected error costs a warning, not the others."""
        try:
            super().load_instrumentor(entry_point, **kwargs)
        except (ImportError, ModuleNotFoundError):
            raise  # upstream's loader already handles a missing library cleanly
        except Exception:
            _logger.warning(
                "Instrumentation %r failed and was skipped; the program runs on without it",
                getattr(entry_point, "name", entry_point),
                exc_info=True,
            )
