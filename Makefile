# The two entry points the README starts with. Both set everything up from nothing.
.PHONY: demo test lint setup

setup:
	scripts/bootstrap

# A quick breaker so that the demo's short outage shows opening, probing and closing.
demo: setup
	OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES=3 OTEL_RESILIENCE_BREAKER_RECOVERY_TIMEOUT=0.5 \
		.venv/bin/opentelemetry-instrument .venv/bin/python examples/demo.py

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test: setup lint
	scripts/services
	.venv/bin/pytest
