"""The ``opentelemetry_configurator`` entry point ``otel_resilience``.

``opentelemetry-instrument`` calls it once at start-up, after the distro and before the
instrumentors. Select it explicitly with ``OTEL_PYTHON_CONFIGURATOR=otel_resilience`` when
other configurators are installed too. At INFO it logs one line saying what runs (the
short form of ``python -m otel_resilience doctor``).
"""

from __future__ import annotations

import logging
from typing import Any

from otel_resilience._compat import BaseConfigurator
from otel_resilience.sdk._providers import install_providers
from otel_resilience.sdk.settings import current_settings

__all__ = ["ResilienceConfigurator"]

_logger = logging.getLogger(__name__)


class ResilienceConfigurator(BaseConfigurator):
    """Builds the providers, resource and exporters from environment variables alone."""

    def _configure(self, **kwargs: Any) -> None:
        try:
            settings = current_settings()
            if settings.sdk_disabled:
                _logger.debug("OTEL_SDK_DISABLED=true: otel-resilience installs no providers")
                return
            installed = install_providers(settings)
        except Exception:  # fail-safe: the host program must run even if we cannot
            _logger.warning(
                "otel-resilience could not configure OpenTelemetry; the program runs without it",
                exc_info=True,
            )
            return
        try:
            if settings.logs.changes_logging:  # else the log formatters are not even imported
                from otel_resilience.logs._setup import configure_from_settings

                service = installed.resource.attributes.get("service.name")
                configure_from_settings(settings.logs, str(service) if service else None)
        except Exception:  # fail-safe: logging as the program set it up stays
            _logger.warning(
                "otel-resilience could not set up its log output; the program's logging is "
                "unchanged",
                exc_info=True,
            )
        _log_summary()


def _log_summary() -> None:
    """One INFO line on what runs, gathered only when it will be logged (about 20 ms)."""
    if not _logger.isEnabledFor(logging.INFO):
        return
    try:
        from otel_resilience.sdk._doctor import gather, summary_line

        _logger.info("%s", summary_line(gather()))
    except Exception:  # fail-safe: a summary is never worth the program
        _logger.debug("otel-resilience could not summarise its set-up", exc_info=True)
