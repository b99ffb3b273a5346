"""Retrying: ``Retry`` (exponential backoff with jitter, ``Retry-After``, a deadline) and the
``RetryBudget`` that keeps retries from multiplying load during an outage.

The public names are re-exported from :mod:`otel_resilience`; the modules here are private.
"""
