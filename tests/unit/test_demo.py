"""The demo's environment is the one the Makefile's ``demo`` target sets.

The tests that run the demo are in tests/launcher/test_demo.py.
"""

from __future__ import annotations

from pathlib import Path

from demo_environment import make_demo_environment

REPOSITORY = Path(__file__).resolve().parents[2]


def test_the_makefile_runs_the_demo_with_these_variables(tmp_path: Path) -> None:
    makefile = (REPOSITORY / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    for name, value in make_demo_environment(tmp_path / "x.log").items():
        if not name.startswith(("OTEL_RESILIENCE_LOG_FILE", "OTEL_EXPORTER_PROMETHEUS")):
            assert f"{name}={value}" in recipe, name
