"""The environment of the Makefile's ``demo`` target, for the tests that run the demo."""

from __future__ import annotations

from pathlib import Path

__all__ = ["make_demo_environment"]


def make_demo_environment(log_file: Path) -> dict[str, str]:
    """The variables of the Makefile's ``demo`` target, with the log file in ``log_file``."""
    return {
        "OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES": "3",
        "OTEL_RESILIENCE_BREAKER_RECOVERY_TIMEOUT": "0.5",
        "OTEL_RESILIENCE_BREAKER_MAX_RECOVERY_TIMEOUT": "1",
        "OTEL_RESILIENCE_DISABLED": "none",
        "OTEL_RESILIENCE_LOG_FORMAT": "human",
        "OTEL_RESILIENCE_LOG_LEVEL": "INFO",
        "OTEL_RESILIENCE_LOG_OUTPUTS": "file",
        "OTEL_RESILIENCE_LOG_FILE": str(log_file),
        "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
        "OTEL_EXPORTER_PROMETHEUS_PORT": "0",
    }
