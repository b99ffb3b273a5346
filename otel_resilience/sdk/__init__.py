"""The SDK assembly: what ``opentelemetry-instrument`` loads and what it builds.

``distro`` and ``configurator`` are the entry points the launcher finds; ``settings`` reads
and validates every ``OTEL_RESILIENCE_*`` variable once; the private modules build the
providers, exporters, views, the Prometheus and health endpoint server, and the shutdown.
Nothing here runs on a call's path.
"""
