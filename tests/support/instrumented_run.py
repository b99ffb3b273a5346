"""Run Python scripts under the real ``opentelemetry-instrument`` launcher.

The distro, configurator and instrumentations are discovered through entry points and
``sitecustomize`` only when a program is started by the launcher, so in-process tests cannot
cover that path.  These helpers start a child exactly as a user would, with an environment
scrubbed of ``OTEL_*`` variables so a developer's shell settings cannot change test results.

Note: the launcher ``exec``\\ s the interpreter, so the child PID *is* the Python process and
signals sent to it reach the script directly.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

__all__ = [
    "InstrumentedProcess",
    "InstrumentedRun",
    "child_environment",
    "launcher_path",
    "run_instrumented",
    "running_instrumented",
    "start_instrumented",
]

Stream = Literal["stdout", "stderr"]


@dataclass(frozen=True)
class InstrumentedRun:
    """Outcome of one instrumented child process."""

    returncode: int
    stdout: str
    stderr: str
    duration_seconds: float

    def check(self) -> InstrumentedRun:
        """Raise AssertionError showing the child's output unless it exited with 0.

        Returns ``self`` so it chains: ``out = run_instrumented(src).check().stdout``.
        """
        if self.returncode != 0:
            raise AssertionError(
                f"instrumented child exited with {self.returncode} "
                f"after {self.duration_seconds:.2f} s\n" + _format_output(self.stdout, self.stderr)
            )
        return self


def _format_output(stdout: str, stderr: str) -> str:
    return f"--- stdout ---\n{stdout.rstrip()}\n--- stderr ---\n{stderr.rstrip()}"


def launcher_path() -> Path:
    """The ``opentelemetry-instrument`` script of the running interpreter's environment.

    Looked up next to ``sys.executable`` (not on PATH) so tests always use the launcher
    installed with the code under test.
    """
    launcher = Path(sys.executable).parent / "opentelemetry-instrument"
    if not launcher.exists():
        raise FileNotFoundError(
            f"{launcher} not found: is opentelemetry-instrumentation installed in the "
            f"environment of {sys.executable}?"
        )
    return launcher


def child_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` minus every ``OTEL_*`` variable, plus PYTHONUNBUFFERED=1, plus ``env``.

    Unbuffered output makes lines reach the parent as they are printed, so tests can wait
    for a "ready" line and see everything a crashing child wrote.
    """
    child = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    child["PYTHONUNBUFFERED"] = "1"
    if env:
        child.update(env)
    return child


def _prepare_script(script: str | Path, cwd: Path | None) -> tuple[Path, Callable[[], None]]:
    """Return an absolute script path and a cleanup callback.

    Source text (anything containing a newline) goes to a temporary file; a relative path is
    resolved against ``cwd`` when given, since that is where the child would look for it.
    """
    if isinstance(script, str) and "\n" in script:
        fd, name = tempfile.mkstemp(prefix="instrumented-", suffix=".py")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(script)
        path = Path(name)
        return path, lambda: path.unlink(missing_ok=True)
    path = Path(script)
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    if not path.is_file():
        raise FileNotFoundError(f"script {path} does not exist")
    return path, lambda: None


def _command(script: Path, args: Sequence[str]) -> list[str]:
    return [str(launcher_path()), sys.executable, str(script), *args]


def run_instrumented(
    script: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    timeout: float = 60.0,
    cwd: Path | None = None,
    input: str | None = None,
) -> InstrumentedRun:
    """Run ``script`` (a path, or source text if it contains a newline) to completion.

    stdin is empty unless ``input`` is given, so a child that reads stdin cannot hang the
    test.  A child still running after ``timeout`` is killed and AssertionError is raised
    with whatever it had printed.
    """
    path, cleanup = _prepare_script(script, cwd)
    start = time.monotonic()
    try:
        completed = subprocess.run(
            _command(path, args),
            env=child_environment(env),
            cwd=cwd,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise AssertionError(
            f"instrumented child still running after {timeout:g} s; killed\n"
            + _format_output(_text(err.stdout), _text(err.stderr))
        ) from None
    finally:
        cleanup()
    return InstrumentedRun(
        returncode=completed.returncode,
        stdout=completed.stdout,
        stderr=completed.stderr,
        duration_seconds=time.monotonic() - start,
    )


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data


def start_instrumented(
    script: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    cwd: Path | None = None,
    stdin: int | IO[str] | None = subprocess.PIPE,
    stdout: int | IO[str] | None = subprocess.PIPE,
    stderr: int | IO[str] | None = subprocess.PIPE,
) -> subprocess.Popen[str]:
    """Start ``script`` under the launcher and return immediately (text-mode, line-buffered).

    The caller owns the process: it MUST terminate/wait it and drain its pipes.  A child
    that fills an unread pipe (e.g. chatty stderr) blocks forever.  Prefer
    :func:`running_instrumented`, which does both.  A temporary script made from source
    text is deleted when the returned object is garbage-collected (or at exit).
    """
    path, cleanup = _prepare_script(script, cwd)
    try:
        process = subprocess.Popen(
            _command(path, args),
            env=child_environment(env),
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            text=True,
            bufsize=1,
        )
    except BaseException:
        cleanup()
        raise
    weakref.finalize(process, cleanup)
    return process


class InstrumentedProcess:
    """A running instrumented child whose output is collected by background threads.

    Reader threads keep both pipes drained (no deadlock however much the child logs) and
    let :meth:`wait_for_output` wait with a timeout, which a blocking ``readline`` cannot.
    """

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.result: InstrumentedRun | None = None
        self._started = time.monotonic()
        self._lines: dict[Stream, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._drain, args=(name, pipe), daemon=True)
            for name, pipe in (("stdout", process.stdout), ("stderr", process.stderr))
            if pipe is not None
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, name: Stream, pipe: IO[str]) -> None:
        for line in pipe:
            with self._changed:
                self._lines[name].append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        """PID of the Python child (the launcher exec'd into it)."""
        return self.process.pid

    @property
    def stdout(self) -> str:
        """Everything the child printed to stdout so far."""
        with self._changed:
            return "".join(self._lines["stdout"])

    @property
    def stderr(self) -> str:
        """Everything the child printed to stderr so far."""
        with self._changed:
            return "".join(self._lines["stderr"])

    def send_line(self, line: str) -> None:
        """Write one line to the child's stdin, e.g. a command the script waits for."""
        if self.process.stdin is None:
            raise RuntimeError("child was started without a stdin pipe")
        self.process.stdin.write(line if line.endswith("\n") else line + "\n")
        self.process.stdin.flush()

    def wait_for_output(
        self, pattern: str | re.Pattern[str], *, timeout: float = 30.0, stream: Stream = "stdout"
    ) -> re.Match[str]:
        """Wait until a line of ``stream`` matches ``pattern`` (``re.search``) and return it.

        Fails fast, with the output so far, if the child exits without printing it.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                lines = self._lines[stream]
                for line in lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(lines)
                exited = self.process.poll() is not None
                if exited and not any(r.is_alive() for r in self._readers):
                    reason = f"child exited with {self.process.returncode}"
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    reason = f"timed out after {timeout:g} s"
                    break
                self._changed.wait(min(remaining, 0.2))
        raise AssertionError(
            f"no {stream} line matched {regex.pattern!r}: {reason}\n"
            + _format_output("".join(self._lines["stdout"]), "".join(self._lines["stderr"]))
        )

    def stop(
        self,
        *,
        eof_grace: float = 0.5,
        stop_signal: int = signal.SIGTERM,
        kill_after: float = 5.0,
    ) -> InstrumentedRun:
        """Stop the child and return its collected output.  Idempotent.

        First closes stdin (a script blocked on ``sys.stdin.readline()`` exits cleanly and
        runs its atexit hooks, e.g. final metric/span flushes) and waits ``eof_grace``
        seconds; then sends ``stop_signal``; then SIGKILL after ``kill_after`` seconds.
        SIGTERM kills Python *without* atexit hooks; pass ``signal.SIGINT`` to get a
        KeyboardInterrupt (hooks run) instead.
        """
        if self.result is not None:
            return self.result
        process = self.process
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=eof_grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(stop_signal)
            try:
                process.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for reader in self._readers:
            reader.join(timeout=5.0)  # a grandchild could hold the pipe open
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self.result = InstrumentedRun(
            returncode=process.returncode,
            stdout=self.stdout,
            stderr=self.stderr,
            duration_seconds=time.monotonic() - self._started,
        )
        return self.result


@contextlib.contextmanager
def running_instrumented(
    script: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    cwd: Path | None = None,
    eof_grace: float = 0.5,
    stop_signal: int = signal.SIGTERM,
) -> Iterator[InstrumentedProcess]:
    """Run a long-lived instrumented child for the duration of a ``with`` block.

    On exit the child is always stopped (see :meth:`InstrumentedProcess.stop`) and its
    output is available as ``proc.result``::

        with running_instrumented(SERVER_SRC, env=...) as proc:
            port = int(proc.wait_for_output(r"listening on (\\d+)").group(1))
            ...  # talk to the child
        assert proc.result is not None and "Traceback" not in proc.result.stderr
    """
    path, cleanup = _prepare_script(script, cwd)
    try:
        process = start_instrumented(path, env=env, args=args, cwd=cwd)
        handle = InstrumentedProcess(process)
        try:
            yield handle
        finally:
            handle.stop(eof_grace=eof_grace, stop_signal=stop_signal)
    finally:
        cleanup()
