"""Our instrumentations load when the program imports their library, not at start-up.

Under the real launcher, a program that imports none of the supported libraries must not
have them imported for it (each costs start-up time and memory); a program that imports
one gets it instrumented on that import, and a library imported before the launcher's
hook ran is instrumented at once.
"""

from __future__ import annotations

from http_test_server import ScriptedHttpServer
from instrumented_run import run_instrumented

LIBRARIES = ("requests", "httpx", "psycopg", "psycopg2", "pymysql", "redis")
QUIET = {
    "OTEL_TRACES_EXPORTER": "console",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    # This venv also holds the upstream instrumentations (for the coexistence tests), and
    # opentelemetry-instrumentation-httpx's httpx2 entry point (for the httpx2 library,
    # which we do not cover) imports httpx when the launcher loads it. A user's install of
    # otel-resilience alone has no such entry point (see test_install_from_wheels.py).
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "httpx2",
}


def test_a_program_that_imports_no_library_has_none_imported_for_it() -> None:
    run = run_instrumented(
        f"import sys\nprint(sorted(m for m in {LIBRARIES!r} if m in sys.modules))\n", env=QUIET
    ).check()
    assert run.stdout.strip() == "[]"


def test_a_library_is_instrumented_when_the_program_imports_it(
    http_server: ScriptedHttpServer,
) -> None:
    run = run_instrumented(
        "import sys\n"
        "assert 'requests' not in sys.modules\n"
        "import requests\n"
        "requests.get(sys.argv[1], timeout=5)\n"
        "from otel_resilience import default_registry\n"
        "print('breakers:', len(default_registry()))\n"
        "print('httpx imported:', 'httpx' in sys.modules)\n",
        env=QUIET,
        args=[http_server.url("/ok")],
    ).check()
    assert "httpx imported: False" in run.stdout
    assert '"name": "GET"' in run.stdout  # the console exporter's span of the request
    assert "breakers: 1" in run.stdout  # ours, with its breaker
