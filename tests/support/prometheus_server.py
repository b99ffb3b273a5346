"""Run the real Prometheus server for end-to-end metric tests.

Unit tests of the exporter only prove that *we* think the exposition is valid; scraping it
with the real Prometheus binary and querying it with PromQL proves that Prometheus agrees
(name sanitising, units, ``_total`` suffixes, histogram buckets, staleness, ...).

Timing notes, measured with Debian's Prometheus 2.42:

* ``/-/ready`` answers within ~0.1 s of start-up, but the first sample only shows up after
  ~5 s: the service-discovery manager batches target updates every 5 s (not configurable
  in this version), so scrape pools start late.  Always poll with :meth:`wait_for_query`,
  never sleep.
* Prometheus ignores ``*_proxy`` environment variables for scrapes unless configured to use
  them, but Python's ``urllib`` does not; the client here bypasses proxies explicitly so a
  developer's proxy settings cannot hijack loopback queries.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = [
    "PrometheusError",
    "PrometheusQueryError",
    "PrometheusServer",
    "free_tcp_port",
    "sample_value",
]

Sample = dict[str, Any]
"""One element of ``data.result`` of an instant query: ``{"metric": {...}, "value": [t, "v"]}``."""

_POLL_INTERVAL = 0.5
_READY_POLL_INTERVAL = 0.05
_HTTP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3

# Loopback only: never let HTTP(S)_PROXY from the developer's shell reroute our requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_tcp_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Binding port 0 lets the kernel pick; the port is released before returning, so another
    process could grab it first.  Callers that can retry on "address in use" should.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sample_value(sample: Mapping[str, Any]) -> float:
    """Return the float value of one instant-vector sample (Prometheus sends it as a string)."""
    return float(sample["value"][1])


class PrometheusError(RuntimeError):
    """Prometheus failed to start, died, or answered an API call with an error."""


class PrometheusQueryError(PrometheusError):
    """The query API rejected a request; carries Prometheus's own ``errorType`` and message."""

    def __init__(self, promql: str, error_type: str, message: str, http_status: int) -> None:
        self.promql = promql
        self.error_type = error_type
        self.message = message
        self.http_status = http_status
        super().__init__(
            f"Prometheus rejected query {promql!r} (HTTP {http_status}, {error_type}): {message}"
        )


class PrometheusServer:
    """A throw-away Prometheus scraping ``targets``, running until :meth:`stop`.

    Everything (config, TSDB, log) lives in a fresh temporary directory that :meth:`stop`
    deletes, so tests never see data from an earlier run.  Use as a context manager::

        with PrometheusServer([f"127.0.0.1:{port}"]) as prom:
            prom.wait_for_query("my_gauge")
    """

    def __init__(
        self,
        targets: Sequence[str],
        metrics_path: str = "/metrics",
        scrape_interval: str = "1s",
        rule_files: Sequence[Path] | None = None,
        *,
        binary: str | os.PathLike[str] = "prometheus",
        startup_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        for target in targets:
            host, sep, port = target.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"target {target!r} is not host:port")
        self.targets = list(targets)
        self.metrics_path = metrics_path
        self.scrape_interval = scrape_interval
        self.rule_files = [Path(p).resolve() for p in rule_files or ()]
        self.binary = os.fspath(binary)
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args)
        self._tmpdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The port Prometheus listens on (only valid after :meth:`start`)."""
        if self._port is None:
            raise PrometheusError("Prometheus is not running")
        return self._port

    @property
    def url(self) -> str:
        """Base URL of the web UI/API, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        """The generated prometheus.yml (useful in failure messages or for ``promtool``)."""
        if self._tmpdir is None:
            raise PrometheusError("Prometheus is not running")
        return self._tmpdir / "prometheus.yml"

    def config(self) -> dict[str, Any]:
        """The configuration that :meth:`start` writes, as a dict.

        Written as JSON, which is valid YAML, so target strings never need YAML quoting.
        """
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
        }
        if self.rule_files:
            config["rule_files"] = [str(p) for p in self.rule_files]
        if self.targets:
            config["scrape_configs"] = [
                {
                    "job_name": "test",
                    "metrics_path": self.metrics_path,
                    "static_configs": [{"targets": self.targets}],
                }
            ]
        return config

    def start(self) -> PrometheusServer:
        """Start Prometheus and block until ``/-/ready`` answers.

        Retries with a new port if another process stole the one we picked.
        """
        if self._process is not None:
            raise PrometheusError("Prometheus is already running")
        if shutil.which(self.binary) is None:
            raise PrometheusError(f"Prometheus binary {self.binary!r} not found on PATH")
        self._tmpdir = Path(tempfile.mkdtemp(prefix="prometheus-test-"))
        try:
            self.config_path.write_text(json.dumps(self.config(), indent=2), encoding="utf-8")
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                self._launch(free_tcp_port())
                if self._wait_ready():
                    return self
                assert self._process is not None
                code = self._process.poll()
                log = self.log_tail()
                self._terminate()
                if "address already in use" in log and attempt < _PORT_ATTEMPTS:
                    continue  # lost the race for the port: pick another one
                state = (
                    f"exited with code {code}"
                    if code is not None
                    else f"was not ready after {self.startup_timeout:g} s"
                )
                raise PrometheusError(
                    f"Prometheus {state} (config {self.config_path}).\n"
                    f"--- prometheus log tail ---\n{log}"
                )
        except BaseException:
            self.stop()
            raise
        raise PrometheusError("unreachable")  # pragma: no cover

    def _launch(self, port: int) -> None:
        assert self._tmpdir is not None
        self._port = port
        self._log = (self._tmpdir / "prometheus.log").open("wb")
        cmd = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self._tmpdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            # Quiet: only problems reach the log we show on failure.
            "--log.level=warn",
            # Nothing to keep: the directory is deleted on stop().
            "--storage.tsdb.retention.time=1h",
            *self.extra_args,
        ]
        self._process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self._tmpdir,
        )

    def _wait_ready(self) -> bool:
        """Poll ``/-/ready``; False if the process exits or the start-up timeout passes."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with _OPENER.open(f"{self.url}/-/ready", timeout=1.0) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass  # not listening yet, or 503 while the TSDB opens
            time.sleep(_READY_POLL_INTERVAL)
        return False

    def _terminate(self, grace: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Terminate Prometheus (SIGKILL after 10 s) and delete its directory.  Idempotent."""
        self._terminate()
        self._port = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of Prometheus's own log (stderr), for failure messages."""
        if self._tmpdir is None:
            return ""
        try:
            text = (self._tmpdir / "prometheus.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _check_alive(self) -> None:
        if self._process is None:
            raise PrometheusError("Prometheus is not running (call start() or use `with`)")
        code = self._process.poll()
        if code is not None:
            raise PrometheusError(
                f"Prometheus exited with code {code}.\n--- prometheus log tail ---\n"
                f"{self.log_tail()}"
            )

    # ------------------------------------------------------------------ HTTP API

    def _api(self, path: str, params: Mapping[str, str], promql: str = "") -> Any:
        """GET an API endpoint and return ``data``, turning API errors into exceptions."""
        self._check_alive()
        url = f"{self.url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with _OPENER.open(url, timeout=_HTTP_TIMEOUT) as response:
                body = json.load(response)
        except urllib.error.HTTPError as err:
            raw = err.read().decode("utf-8", errors="replace")
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = {"errorType": "http", "error": raw.strip() or err.reason}
            raise PrometheusQueryError(
                promql or path,
                str(payload.get("errorType", "unknown")),
                str(payload.get("error", raw)),
                err.code,
            ) from None
        if body.get("status") != "success":
            raise PrometheusQueryError(
                promql or path,
                str(body.get("errorType", "unknown")),
                str(body.get("error", body)),
                200,
            )
        return body["data"]

    def query(self, promql: str, *, at: float | None = None) -> list[Sample]:
        """Run an instant query and return ``data.result``.

        Raises :class:`PrometheusQueryError` with Prometheus's message for invalid PromQL.
        Scalar/string results are wrapped in a one-element list as ``{"value": [...]}``.
        """
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._api("/api/v1/query", params, promql)
        result = data["result"]
        if data.get("resultType") in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        return list(result)

    def targets_health(self) -> list[dict[str, Any]]:
        """Active scrape targets as Prometheus reports them.

        Each entry has at least ``scrapeUrl``, ``health`` ("up"/"down"/"unknown"),
        ``lastError`` and ``labels``: the first thing to look at when a query stays empty.
        """
        data = self._api("/api/v1/targets", {"state": "active"})
        return list(data.get("activeTargets", []))

    def wait_for_query(
        self,
        promql: str,
        *,
        timeout: float = 60.0,
        predicate: Callable[[list[Sample]], bool] | None = None,
        poll_interval: float = _POLL_INTERVAL,
    ) -> list[Sample]:
        """Poll ``promql`` until it returns samples (and ``predicate`` accepts them).

        Needed because data appears seconds after start-up and only once per scrape
        interval.  Invalid PromQL fails at once rather than after ``timeout``.  On timeout
        raises AssertionError with the last result and the scrape targets' health.
        """
        deadline = time.monotonic() + timeout
        last: list[Sample] | None = None
        last_error: str | None = None
        while True:
            try:
                last = self.query(promql)
                last_error = None
            except PrometheusQueryError as err:
                if err.error_type == "bad_data":
                    raise
                last_error = str(err)  # e.g. a timeout inside Prometheus: retry
            if last and (predicate is None or predicate(last)):
                return last
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(poll_interval, remaining))
        raise AssertionError(self._timeout_message(promql, timeout, last, last_error, predicate))

    def _timeout_message(
        self,
        promql: str,
        timeout: float,
        last: list[Sample] | None,
        last_error: str | None,
        predicate: Callable[[list[Sample]], bool] | None,
    ) -> str:
        why = "no samples" if not last else "predicate never held"
        lines = [
            f"Prometheus query {promql!r}: {why} after {timeout:g} s.",
            f"Last result: {json.dumps(last, indent=2)}",
        ]
        if predicate is not None:
            lines.append(f"Predicate: {getattr(predicate, '__qualname__', predicate)!r}")
        if last_error:
            lines.append(f"Last error: {last_error}")
        try:
            targets = self.targets_health()
            lines.append("Targets:")
            lines.extend(
                f"  {t.get('scrapeUrl')}: health={t.get('health')} "
                f"lastError={t.get('lastError')!r} lastScrape={t.get('lastScrape')}"
                for t in targets
            )
            if not targets:
                lines.append("  (none)")
        except (PrometheusError, OSError) as err:
            lines.append(f"Targets: unavailable ({err})")
        log = self.log_tail()
        if log:
            lines.append(f"--- prometheus log tail ---\n{log}")
        return "\n".join(lines)
