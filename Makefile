# The two entry points the README starts with. Both set everything up from nothing.
.PHONY: demo test test-unit lint setup setup-demo

# The demo installs only what it runs (the distribution, requests and httpx); the tests add
# their toolchain (pytest, linters, the peers the benchmarks compare against).
setup-demo:
	scripts/bootstrap demo

setup:
	scripts/bootstrap test

# Quick breakers, so that the demo's short outages show opening, probing and closing; SQLite
# breakers on (off by default: SQLite has no network); logs with trace ids in a file, so that
# the live view stays readable. More flags: make demo DEMO_ARGS="--linger 300 --dsn '...'"
DEMO_LOG ?= $(or $(TMPDIR),/tmp)/otel-resilience-demo.log
demo: setup-demo
	OTEL_SERVICE_NAME=otel-resilience-demo OTEL_RESILIENCE_BREAKER_CONSECUTIVE_FAILURES=3 OTEL_RESILIENCE_BREAKER_RECOVERY_TIMEOUT=0.5 \
	OTEL_RESILIENCE_BREAKER_MAX_RECOVERY_TIMEOUT=1 OTEL_RESILIENCE_DISABLED=none \
	OTEL_RESILIENCE_LOG_FORMAT=human OTEL_RESILIENCE_LOG_LEVEL=INFO OTEL_RESILIENCE_HEALTH_ENABLED=true \
	OTEL_RESILIENCE_LOG_OUTPUTS=file OTEL_RESILIENCE_LOG_FILE=$(DEMO_LOG) \
		.venv/bin/opentelemetry-instrument .venv/bin/python examples/demo.py $(DEMO_ARGS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test: setup lint
	scripts/services
	.venv/bin/pytest

# The unit tier alone: no server, no subprocess, no network, so no scripts/services.
test-unit: setup
	.venv/bin/pytest tests/unit
