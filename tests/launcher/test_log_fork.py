"""Child processes write every record they log, however they were started and however they end.

A child made by forking starts with an empty queue of its own (the parent's queued records
are the parent's to write), and its writer thread must have written that queue before the
child is gone. ``multiprocessing`` children started by ``fork`` or ``forkserver`` end with
``os._exit``, which runs no exit handler; ``spawn`` children and plain ``os.fork`` children
that return or call ``sys.exit`` end through the interpreter's normal exit; a plain
``os.fork`` child may call ``os._exit`` itself. Each is a real process here, logging to a
real file, configured the two ways users do: ``otel_resilience.logs.configure`` in code,
and the ``opentelemetry-instrument`` launcher with ``OTEL_RESILIENCE_LOG_*``.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Literal

import pytest
from instrumented_run import child_environment, run_instrumented

REPO = Path(__file__).resolve().parents[2]
CHILDREN = 3
RECORDS = 200

# Started as a file, not with -c: spawn children and the forkserver import the main module
# (as __mp_main__), so a configure() at its top level runs in them as it would for a user.
APP = textwrap.dedent(
    f"""
    import logging
    import multiprocessing
    import os
    import sys

    CHILDREN = {CHILDREN}
    RECORDS = {RECORDS}

    CONFIGURE = os.environ.get("APP_CONFIGURE")  # unset: the launcher configured logging


    def configure_logging():
        from otel_resilience import logs

        if logs.current_setup() is None:  # else inherited from the parent by forking
            logs.configure(
                format="json", level="INFO", outputs=["file"], file=os.environ["APP_LOG_FILE"]
            )


    if CONFIGURE == "on import":  # also in the forkserver, or in a spawned child
        configure_logging()

    log = logging.getLogger("app")


    def work(child):
        if CONFIGURE == "when run":
            configure_logging()
        for number in range(RECORDS):
            log.info("child %d record %d", child, number)


    def with_multiprocessing(method):
        context = multiprocessing.get_context(method)
        children = [context.Process(target=work, args=(child,)) for child in range(CHILDREN)]
        for child in children:
            child.start()
        for child in children:
            child.join(60)
            assert child.exitcode == 0, (method, child.exitcode)


    def with_os_fork(ending):
        started = []
        for child in range(CHILDREN):
            pid = os.fork()
            if pid == 0:
                work(child)
                if ending == "os._exit":
                    os._exit(0)
                if ending == "sys.exit":
                    sys.exit(0)
                return False  # "return": the child runs the rest of the program and ends
            started.append(pid)
        for pid in started:
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0, (ending, status)
        return True


    if __name__ == "__main__":
        how = sys.argv[1]
        if CONFIGURE == "when run":
            configure_logging()
        log.info("parent before")  # the parent's writer runs when the children are made
        if how in ("fork", "forkserver", "spawn"):
            with_multiprocessing(how)
            parent = True
        else:
            parent = with_os_fork(how)
        if parent:
            log.info("parent after")
    """
)

How = Literal["fork", "forkserver", "spawn", "return", "sys.exit", "os._exit"]


def expected_messages() -> collections.Counter[str]:
    children = (
        f"child {child} record {number}" for child in range(CHILDREN) for number in range(RECORDS)
    )
    return collections.Counter(["parent before", *children, "parent after"])


def logged_messages(path: Path) -> collections.Counter[str]:
    """The program's own records (under the launcher at INFO the distribution adds its own
    start-up summary, which is not the children's business)."""
    records = (json.loads(line) for line in path.read_text().splitlines())
    return collections.Counter(r["message"] for r in records if r["logger"] == "app")


def assert_every_record_once(path: Path) -> None:
    logged, expected = logged_messages(path), expected_messages()
    missing = expected - logged
    extra = logged - expected
    assert not missing and not extra, (
        f"{sum(missing.values())} of {sum(expected.values())} records missing "
        f"(e.g. {sorted(missing)[:3]}), {sum(extra.values())} unexpected or repeated "
        f"(e.g. {sorted(extra)[:3]})"
    )


def write_app(directory: Path) -> Path:
    app = directory / "app.py"
    app.write_text(APP)
    return app


MULTIPROCESSING = [
    pytest.param("fork", id="multiprocessing-fork"),
    pytest.param("forkserver", id="multiprocessing-forkserver"),
    pytest.param("spawn", id="multiprocessing-spawn"),
]
ALL_WAYS = [
    *MULTIPROCESSING,
    pytest.param("return", id="os.fork-return"),
    pytest.param("sys.exit", id="os.fork-sys.exit"),
    pytest.param("os._exit", id="os.fork-os._exit"),
]


def run_app(directory: Path, how: How, configure: str) -> None:
    log_file = directory / "app.log"
    result = subprocess.run(
        [sys.executable, str(write_app(directory)), how],
        env=child_environment(
            {"PYTHONPATH": str(REPO), "APP_CONFIGURE": configure, "APP_LOG_FILE": str(log_file)}
        ),
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert_no_complaint(result.stderr)
    assert_every_record_once(log_file)


def assert_no_complaint(stderr: str) -> None:
    """No traceback, and no drop or stuck-writer warning of ours (``otel-resilience: ...``)."""
    assert "Traceback" not in stderr, stderr
    assert "otel-resilience:" not in stderr, stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ALL_WAYS)
def test_children_of_a_program_configured_on_import_write_every_record(
    tmp_path: Path, how: How
) -> None:
    run_app(tmp_path, how, "on import")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", MULTIPROCESSING)
def test_children_that_configure_logging_when_they_run_write_every_record(
    tmp_path: Path, how: How
) -> None:
    run_app(tmp_path, how, "when run")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ALL_WAYS)
def test_children_under_the_launcher_write_every_record(tmp_path: Path, how: How) -> None:
    log_file = tmp_path / "app.log"
    settings = {
        "OTEL_RESILIENCE_LOG_FORMAT": "json",
        "OTEL_RESILIENCE_LOG_LEVEL": "INFO",
        "OTEL_RESILIENCE_LOG_OUTPUTS": "file",
        "OTEL_RESILIENCE_LOG_FILE": str(log_file),
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    result = run_instrumented(
        write_app(tmp_path), args=[how], env=settings, cwd=tmp_path, timeout=100
    ).check()
    assert_no_complaint(result.stderr)
    assert_every_record_once(log_file)


@pytest.mark.timeout(60)
def test_the_exit_of_a_child_that_logged_nothing_writes_nothing(tmp_path: Path) -> None:
    """Draining at a forked child's ``os._exit`` must not flush the stream it inherited.

    Bytes the parent left in a buffer are copied into the child; ``os._exit`` exists partly
    so that the child does not write them a second time.
    """
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(
            """
            import logging, os, sys
            from otel_resilience import logs

            setup = logs.configure(format="human", outputs=["console"], stream=sys.stdout)
            logging.getLogger("app").warning("parent record")
            for handler in setup.handlers:
                handler.flush()
            print("left in the parent's buffer")  # stdout is a pipe: not flushed yet
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            """
        )
    )
    environment = child_environment({"PYTHONPATH": str(REPO)})
    del environment["PYTHONUNBUFFERED"]
    result = subprocess.run(
        [sys.executable, str(app)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("left in the parent's buffer") == 1, result.stdout
    assert result.stdout.count("parent record") == 1, result.stdout
