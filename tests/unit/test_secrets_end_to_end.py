"""The secrets the end-to-end test plants can be told apart, so a leak names its place.

The test that runs ``tests/support/secrets_app.py`` under the launcher and looks for them is
tests/launcher/test_secrets_end_to_end.py.
"""

from __future__ import annotations

from secrets_app import (
    needles,
)


def test_the_secrets_are_distinct() -> None:
    """One secret inside another would make a leak of the first look like a leak of both."""
    values = list(needles("secrets-e2e-user").values())
    assert len(set(values)) == len(values)
    assert not [(a, b) for a in values for b in values if a != b and a.lower() in b.lower()]
