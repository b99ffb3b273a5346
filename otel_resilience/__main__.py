"""``python -m otel_resilience``: commands for operating a program that runs the distribution.

``status [URL]`` prints a running process's health and status report (its ``/status``
route) and exits with its verdict. ``doctor`` prints what the launcher would load and
configure in this environment, and why (see :mod:`otel_resilience.sdk._doctor`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn
from urllib.parse import urlsplit

from otel_resilience.health._status_command import run_status_command

DEFAULT_STATUS_URL = "http://localhost:9464/status"
EXIT_USAGE = 64  # not 2, argparse's usual code: 2 means "down" here

_STATUS_EPILOG = """\
exit codes:
  0   the report says ok
  1   the report says degraded (an open breaker, failing exports, dropped logs...)
  2   the report says down (a critical check failed or a critical breaker is open)
  3   no report: the URL is unreachable or did not answer with a status report
  64  the command line is invalid
"""

_DOCTOR_EPILOG = """\
exit codes:
  0   no problem found
  1   problems found (an invalid variable, a distro or configurator not in use...)
  64  the command line is invalid
"""


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 64, so that a typo is never read as a verdict."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m otel_resilience",
        description="Commands for programs that run the otel-resilience distribution.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    status = commands.add_parser(
        "status",
        help="print a running process's health and status report",
        description=(
            "Fetch a process's /status report (served when OTEL_RESILIENCE_HEALTH_ENABLED=true) "
            "and print its service, verdict, uptime, circuit breakers and checks."
        ),
        epilog=_STATUS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument(
        "url",
        nargs="?",
        default=DEFAULT_STATUS_URL,
        help=f"the /status URL (default: {DEFAULT_STATUS_URL})",
    )
    status.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        help="seconds to wait for the answer (default: 5)",
    )
    doctor = commands.add_parser(
        "doctor",
        help="print what the launcher would load and configure here, and why",
        description=(
            "Report, for this environment and without running the program, the distro and "
            "configurator in use, each instrumentation and whether it is active (or why "
            "not), the exporters per signal, every OTEL_RESILIENCE_* setting with its "
            "source, and the problems found."
        ),
        epilog=_DOCTOR_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    doctor.add_argument(
        "--json", action="store_true", help="print one JSON object (schema: see the docs)"
    )
    return parser


def _doctor(as_json: bool) -> int:
    from otel_resilience.sdk._doctor import gather, render_json, render_text

    report = gather()
    print(render_json(report) if as_json else render_text(report))
    return 1 if report.problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    if arguments.command == "doctor":
        return _doctor(arguments.json)
    if urlsplit(arguments.url).scheme not in ("http", "https"):
        parser.error(f"the URL must start with http:// or https://, got {arguments.url!r}")
    if not arguments.timeout > 0:
        parser.error(f"--timeout must be a positive number of seconds, got {arguments.timeout}")
    return run_status_command(arguments.url, arguments.timeout, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
