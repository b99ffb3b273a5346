"""``python -m otel_resilience status``: fetch a process's ``/status`` and print it for people.

The exit code carries the verdict, so scripts and container health checks can use the
command without parsing its output: see :data:`EXIT_CODES`.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

__all__ = ["EXIT_CODES", "fetch_status", "render_status", "run_status_command"]

EXIT_OK = 0
EXIT_DEGRADED = 1
EXIT_DOWN = 2
EXIT_UNREACHABLE = 3

EXIT_CODES = {"ok": EXIT_OK, "degraded": EXIT_DEGRADED, "down": EXIT_DOWN}

_MAX_BODY = 16 * 1024 * 1024  # a report with a thousand breakers is well under this


class StatusUnavailable(Exception):
    """The URL could not be reached or did not answer with a status report."""


def fetch_status(url: str, timeout: float) -> dict[str, Any]:
    """The report at ``url``; :class:`StatusUnavailable` says why there is none."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read(_MAX_BODY)
    except urllib.error.HTTPError as error:  # a 503 from /readyz still carries a report
        body = error.read(_MAX_BODY)
        if not body:
            raise StatusUnavailable(f"{url} answered HTTP {error.code}") from error
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise StatusUnavailable(f"cannot reach {url}: {reason}") from error
    try:
        document = json.loads(body)
    except ValueError as error:
        raise StatusUnavailable(f"{url} did not answer with JSON") from error
    if not isinstance(document, dict) or document.get("status") not in EXIT_CODES:
        raise StatusUnavailable(f"{url} did not answer with a status report")
    return document


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{seconds:.1f}s"


def _percent(rate: object) -> str:
    return f"{rate * 100:.1f}%" if isinstance(rate, int | float) else "-"


def _next_trial(breaker: Mapping[str, Any]) -> str:
    state = breaker.get("state")
    if state == "forced_open":
        return "when reset"
    if state == "open":
        return "in " + _duration(breaker.get("seconds_until_next_trial"))
    if state == "half_open":
        return "now"
    return "-"


def _table(header: Sequence[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [list(header), *rows]) for i in range(len(header))]
    lines = []
    for row in [list(header), *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines


def _dicts(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def render_status(document: Mapping[str, Any]) -> str:
    """The report as aligned text: the verdict first, then breakers and checks."""
    service = str(document.get("service", "unknown_service"))
    if document.get("version"):
        service += f" {document['version']}"
    status = str(document.get("status", "?"))
    lines = [
        f"service  {service}",
        f"status   {status.upper()}",
        f"uptime   {_duration(document.get('uptime_seconds'))}",
        "",
    ]
    breakers = _dicts(document.get("breakers"))
    if breakers:
        rows = [
            [
                str(b.get("name", "?")),
                str(b.get("state", "?")),
                _percent(b.get("failure_rate")),
                str(b.get("calls", "-")),
                _next_trial(b),
            ]
            for b in breakers
        ]
        lines += _table(["BREAKER", "STATE", "FAILURE RATE", "CALLS", "NEXT TRIAL"], rows)
    else:
        lines.append("no circuit breakers")
    lines.append("")
    checks = _dicts(document.get("checks"))
    rows = [
        [str(c.get("name", "?")), str(c.get("status", "?")), str(c.get("detail", ""))]
        for c in checks
    ]
    lines += _table(["CHECK", "STATUS", "DETAIL"], rows) if rows else ["no checks"]
    return "\n".join(lines) + "\n"


def run_status_command(
    url: str,
    timeout: float,
    out: TextIO,
    err: TextIO,
    fetch: Callable[[str, float], dict[str, Any]] = fetch_status,
) -> int:
    """Print the report at ``url``; the exit code is its verdict (3: no report)."""
    try:
        document = fetch(url, timeout)
    except StatusUnavailable as error:
        err.write(f"status unknown: {error}\n")
        return EXIT_UNREACHABLE
    out.write(render_status(document))
    return EXIT_CODES[document["status"]]
