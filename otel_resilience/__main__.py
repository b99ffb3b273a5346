"""``python -m otel_resilience``: commands for operating a program that runs the distribution.

``status [URL]`` prints a running process's health and status report (its ``/status``
route) and exits with its verdict.
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    if urlsplit(arguments.url).scheme not in ("http", "https"):
        parser.error(f"the URL must start with http:// or https://, got {arguments.url!r}")
    if not arguments.timeout > 0:
        parser.error(f"--timeout must be a positive number of seconds, got {arguments.timeout}")
    return run_status_command(arguments.url, arguments.timeout, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
