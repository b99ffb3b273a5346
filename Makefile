# The two entry points the README starts with. Both set everything up from nothing.
.PHONY: demo test lint setup

setup:
	scripts/bootstrap

demo: setup
	.venv/bin/opentelemetry-instrument .venv/bin/python examples/demo.py

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test: setup lint
	scripts/services
	.venv/bin/pytest
