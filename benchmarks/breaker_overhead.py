"""What our circuit breaker costs a caller, next to pybreaker and circuitbreaker.

All three libraries are measured in the same run, on the same interpreter, and every figure
is printed next to the peers' with the ratios, then checked against our targets.

What is measured, and the target for each
-----------------------------------------

1. Success-path overhead: ns per call of a decorated no-op minus a bare no-op call.
   Timed with :mod:`timeit` in batches of about 20 ms (5 ms with ``--quick``), many
   repeats, the libraries interleaved in rotating order; the figure is the median over
   repeats of (decorated - bare) measured in the same repeat.
   Target: ours <= 1/4 of pybreaker's AND <= circuitbreaker's. A breaker guards every
   outgoing call, so its closed path must cost next to nothing.
2. Rejected-call cost: ns per call while the breaker is open, including raising and
   catching the library's own rejection exception. Target: ours <= circuitbreaker's
   (the lightest peer); an open breaker is exactly when callers retry hard.
3. Throughput: 8 threads, each calling a function that sleeps 1 ms (simulated I/O)
   through ONE shared breaker, for about 2 s per configuration (in interleaved rounds):
   calls/s for unguarded, ours, pybreaker and circuitbreaker. Target: ours >= 95% of
   unguarded, i.e. the breaker must not serialise callers (pybreaker holds its lock for
   the whole call).
4. Memory per breaker, window included: 2,000 breakers of each library are created and
   the growth of tracemalloc's traced bytes is divided by 2,000 (a pure tracemalloc
   figure, independent of ``sys.getsizeof``; names are built beforehand and the list that
   holds the breakers is preallocated, so neither is counted). Target: ours < 1024 bytes,
   so that a breaker per endpoint is affordable in a process talking to many hosts.
5. Retention while open: with the breaker forced open, 10,000 rejected calls; reported are
   the growth of tracemalloc's traced bytes and of ``len(gc.get_objects())`` after a full
   ``gc.collect()``. Target: ~0 (<= 1024 bytes and <= 10 objects over the 10,000 calls).
   For information, the run is made with the cyclic GC disabled, so the bytes held until
   the next collection and the cyclic garbage per call (objects only ``gc`` can free) are
   reported too.

The cyclic GC stays enabled while timing (unlike :mod:`timeit`'s default), so the cost of
any garbage a call leaves is part of its time, as it is in production. tracemalloc runs
only during sections 4 and 5. Our breaker's exact ``stats`` are checked against the calls
the benchmark made (sections 1, 2, 3 and 5) and any mismatch is reported.

How to run
----------

From the repository root::

    .venv/bin/python benchmarks/breaker_overhead.py           # about 15 s on 2 cores
    .venv/bin/python benchmarks/breaker_overhead.py --quick   # about 3 s, noisier

The exit status is 0 whatever the results; read the PASS/FAIL summary at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import statistics
import sys
import threading
import time
import timeit
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Protocol

import circuitbreaker  # type: ignore[import-untyped]
import pybreaker

from otel_resilience.breaker._breaker import CircuitBreaker, CircuitOpenError

IO_SECONDS = 0.001
FAILURE_THRESHOLD = 5
RECOVERY_TIMEOUT = 60.0
WINDOW_SIZE = 100
RETENTION_BYTES_TOLERANCE = 1024
RETENTION_OBJECTS_TOLERANCE = 10
PEERS = ("pybreaker", "circuitbreaker")
LIBRARIES = ("ours", *PEERS)


@dataclass(frozen=True)
class Settings:
    """How long and how often each section measures."""

    repeats: int
    batch_seconds: float
    throughput_seconds: float
    throughput_rounds: int
    threads: int = 8
    breakers: int = 2_000
    rejections: int = 10_000


FULL = Settings(repeats=41, batch_seconds=0.02, throughput_seconds=2.0, throughput_rounds=4)
QUICK = Settings(repeats=11, batch_seconds=0.005, throughput_seconds=0.5, throughput_rounds=1)


def noop() -> None:
    """The guarded function of sections 1, 2 and 5."""


def io_call() -> None:
    """The guarded function of section 3: 1 ms of simulated I/O."""
    time.sleep(IO_SECONDS)


class _Boom(Exception):
    """A failure used to drive circuitbreaker open."""


def _fail() -> None:
    raise _Boom


# --- one adapter per library -------------------------------------------------------------


class Subject(Protocol):
    """One breaker of one library, behind the operations the benchmark needs."""

    label: str
    error: type[Exception]

    def guard(self, function: Callable[[], None]) -> Callable[[], None]:
        """Decorate ``function``."""

    def force_open(self) -> None:
        """Make every call through the breaker be rejected."""

    def close(self) -> None:
        """Close the breaker again (and zero its counters where it has any)."""


class Ours:
    """otel_resilience's breaker."""

    label = "ours"
    error: type[Exception] = CircuitOpenError

    def __init__(self, name: str) -> None:
        self.breaker = make_ours(name)

    def guard(self, function: Callable[[], None]) -> Callable[[], None]:
        return self.breaker(function)

    def force_open(self) -> None:
        self.breaker.force_open()

    def close(self) -> None:
        self.breaker.reset()


class PyBreaker:
    """pybreaker, decorator form; ``open()`` forces it open."""

    label = "pybreaker"
    error: type[Exception] = pybreaker.CircuitBreakerError

    def __init__(self, name: str) -> None:
        self.breaker = make_pybreaker(name)

    def guard(self, function: Callable[[], None]) -> Callable[[], None]:
        guarded: Callable[[], None] = self.breaker(function)
        return guarded

    def force_open(self) -> None:
        self.breaker.open()

    def close(self) -> None:
        self.breaker.close()


class CircuitBreakerLib:
    """circuitbreaker, decorator form.

    It has no public way to force it open, so it is driven open the way production would
    open it: ``failure_threshold`` consecutive failures through the same breaker. It then
    stays open for ``recovery_timeout`` (60 s), longer than any section takes.
    """

    label = "circuitbreaker"
    error: type[Exception] = circuitbreaker.CircuitBreakerError

    def __init__(self, name: str) -> None:
        self.breaker: Any = make_circuitbreaker(name)
        self._failing: Callable[[], None] = self.breaker(_fail)

    def guard(self, function: Callable[[], None]) -> Callable[[], None]:
        guarded: Callable[[], None] = self.breaker(function)
        return guarded

    def force_open(self) -> None:
        for _ in range(FAILURE_THRESHOLD):
            with contextlib.suppress(_Boom):
                self._failing()
        if not self.breaker.opened:
            raise RuntimeError("circuitbreaker did not open after its failure threshold")

    def close(self) -> None:
        self.breaker.reset()


def make_ours(name: str) -> CircuitBreaker:
    return CircuitBreaker(
        name,
        window_size=WINDOW_SIZE,
        consecutive_failures=FAILURE_THRESHOLD,
        recovery_timeout=RECOVERY_TIMEOUT,
    )


def make_pybreaker(name: str) -> pybreaker.CircuitBreaker:
    return pybreaker.CircuitBreaker(
        fail_max=FAILURE_THRESHOLD, reset_timeout=RECOVERY_TIMEOUT, name=name
    )


def make_circuitbreaker(name: str) -> Any:
    # circuitbreaker is untyped: its breaker is Any to the type checker.
    return circuitbreaker.circuit(
        failure_threshold=FAILURE_THRESHOLD, recovery_timeout=RECOVERY_TIMEOUT, name=name
    )


FACTORIES: dict[str, Callable[[str], object]] = {
    "ours": make_ours,
    "pybreaker": make_pybreaker,
    "circuitbreaker": make_circuitbreaker,
}


def make_subjects(suffix: str) -> dict[str, Subject]:
    """One fresh breaker per library, named ``bench-<library>-<suffix>``."""
    return {
        "ours": Ours(f"bench-ours-{suffix}"),
        "pybreaker": PyBreaker(f"bench-pybreaker-{suffix}"),
        "circuitbreaker": CircuitBreakerLib(f"bench-circuitbreaker-{suffix}"),
    }


def ours_breaker(subjects: dict[str, Subject]) -> CircuitBreaker:
    subject = subjects["ours"]
    assert isinstance(subject, Ours)
    return subject.breaker


# --- 1 and 2: per-call cost with timeit ---------------------------------------------------

_CALL = "f()"
_REJECTED_CALL = "try:\n    f()\nexcept E:\n    pass"


def make_timer(stmt: str, function: Callable[[], None], error: type[Exception]) -> timeit.Timer:
    # GC on while timing: any garbage a call leaves is paid for as in production.
    return timeit.Timer(stmt, setup="gc.enable()", globals={"f": function, "E": error, "gc": gc})


def calibrate(timer: timeit.Timer, batch_seconds: float) -> int:
    """Loops per batch so that one batch takes about ``batch_seconds``."""
    number = 64
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= batch_seconds / 4:
            return max(1, round(number * batch_seconds / elapsed))
        number *= 4


@dataclass
class Timings:
    """ns per call of each timed callable, one sample per repeat."""

    loops: dict[str, int]
    samples: dict[str, list[float]]

    def median(self, key: str) -> float:
        return statistics.median(self.samples[key])

    def median_minus(self, key: str, baseline: str) -> float:
        """Median over repeats of (key - baseline), both measured in the same repeat."""
        pairs = zip(self.samples[key], self.samples[baseline], strict=True)
        return statistics.median(a - b for a, b in pairs)

    def spread(self, key: str) -> float:
        """Interquartile range, ns."""
        quartiles = statistics.quantiles(self.samples[key], n=4)
        return quartiles[2] - quartiles[0]


def time_interleaved(timers: dict[str, timeit.Timer], settings: Settings) -> Timings:
    """Every timer once per repeat, in an order that rotates from repeat to repeat."""
    loops = {key: calibrate(timer, settings.batch_seconds) for key, timer in timers.items()}
    samples: dict[str, list[float]] = {key: [] for key in timers}
    keys = list(timers)
    for repeat in range(settings.repeats):
        shift = repeat % len(keys)
        for key in keys[shift:] + keys[:shift]:
            elapsed = timers[key].timeit(loops[key])
            samples[key].append(elapsed / loops[key] * 1e9)
    return Timings(loops, samples)


def measure_success(settings: Settings, checks: list[str]) -> Timings:
    subjects = make_subjects("success")
    timers = {"bare": make_timer(_CALL, noop, Exception)}
    for label, subject in subjects.items():
        timers[label] = make_timer(_CALL, subject.guard(noop), subject.error)
    calls_before = ours_breaker(subjects).stats.successes
    timings = time_interleaved(timers, settings)
    # calibrate() made calls too; count them from the stats delta against our own tally.
    stats = ours_breaker(subjects).stats
    made = stats.successes - calls_before
    timed = timings.loops["ours"] * settings.repeats
    checks.append(
        f"success path: ours counted {stats.successes:,} successes, "
        f"{stats.calls:,} calls ({'ok' if stats.calls == stats.successes else 'MISMATCH'}; "
        f">= {timed:,} timed: {'ok' if made >= timed else 'MISMATCH'})"
    )
    return timings


def measure_rejected(settings: Settings, checks: list[str]) -> Timings:
    subjects = make_subjects("rejected")
    timers: dict[str, timeit.Timer] = {}
    for label, subject in subjects.items():
        guarded = subject.guard(noop)
        subject.force_open()
        try:
            guarded()
        except subject.error:
            pass
        else:
            raise RuntimeError(f"{label}: a forced-open breaker let a call through")
        timers[label] = make_timer(_REJECTED_CALL, guarded, subject.error)
    ours = ours_breaker(subjects)
    ours.reset()
    ours.force_open()
    timings = time_interleaved(timers, settings)
    stats = ours.stats
    timed = timings.loops["ours"] * settings.repeats
    consistent = stats.calls == stats.rejections and stats.successes == 0
    checks.append(
        f"rejected path: ours counted {stats.rejections:,} rejections of {stats.calls:,} "
        f"calls ({'ok' if consistent else 'MISMATCH'}; >= {timed:,} timed: "
        f"{'ok' if stats.rejections >= timed else 'MISMATCH'})"
    )
    return timings


# --- 3: throughput with threads doing simulated I/O ---------------------------------------


def run_threads(call: Callable[[], None], threads: int, seconds: float) -> tuple[int, float]:
    """Total calls made by ``threads`` threads calling ``call`` for ``seconds``."""
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    stop = threading.Event()

    def worker(index: int) -> None:
        start.wait()
        made = 0
        while not stop.is_set():
            call()
            made += 1
        counts[index] = made

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in workers:
        thread.join()
    return sum(counts), time.perf_counter() - began


def measure_throughput(settings: Settings, checks: list[str]) -> dict[str, float]:
    """calls/s per configuration; rounds interleave the configurations against drift."""
    subjects = make_subjects("throughput")
    calls: dict[str, Callable[[], None]] = {"unguarded": io_call}
    for label, subject in subjects.items():
        calls[label] = subject.guard(io_call)
    made = dict.fromkeys(calls, 0)
    elapsed = dict.fromkeys(calls, 0.0)
    keys = list(calls)
    seconds = settings.throughput_seconds / settings.throughput_rounds
    for round_ in range(settings.throughput_rounds):
        shift = round_ % len(keys)
        for key in keys[shift:] + keys[:shift]:
            count, took = run_threads(calls[key], settings.threads, seconds)
            made[key] += count
            elapsed[key] += took
    stats = ours_breaker(subjects).stats
    exact = stats.successes == made["ours"] == stats.calls
    checks.append(
        f"throughput: {settings.threads} threads made {made['ours']:,} calls through ours, "
        f"which counted {stats.successes:,} successes ({'ok' if exact else 'MISMATCH'})"
    )
    return {key: made[key] / elapsed[key] for key in keys}


# --- 4: memory per breaker ------------------------------------------------------------------


def bytes_per_breaker(factory: Callable[[str], object], count: int, label: str) -> float:
    names = [f"bench-memory-{label}-{i}" for i in range(count)]
    keep: list[object] = [None] * count
    # Warm up: first use creates module-level state (our metric instruments, for one).
    warm = [factory(f"bench-memory-{label}-warm-{i}") for i in range(8)]
    del warm
    gc.collect()
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for index, name in enumerate(names):
            keep[index] = factory(name)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del keep
    gc.collect()
    return (after - before) / count


def measure_memory(settings: Settings) -> dict[str, float]:
    return {
        label: bytes_per_breaker(FACTORIES[label], settings.breakers, label) for label in LIBRARIES
    }


# --- 5: retention while open ----------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """What ``calls`` rejected calls left behind."""

    calls: int
    retained_bytes: int
    retained_objects: int
    held_until_gc_bytes: int
    cyclic_garbage: int


def retention(subject: Subject, calls: int) -> Retention:
    guarded = subject.guard(noop)
    subject.close()
    subject.force_open()
    error = subject.error

    def reject(count: int) -> None:
        for _ in range(count):
            with contextlib.suppress(error):
                guarded()

    reject(100)  # warm up (specialisation, lazy caches)
    gc.collect()
    tracemalloc.start()
    try:
        gc.collect()
        objects_before = len(gc.get_objects())
        bytes_before = tracemalloc.get_traced_memory()[0]
        gc.disable()
        try:
            reject(calls)
            held = tracemalloc.get_traced_memory()[0] - bytes_before
            cyclic = gc.collect()
        finally:
            gc.enable()
        gc.collect()
        bytes_after = tracemalloc.get_traced_memory()[0]
        objects_after = len(gc.get_objects())
    finally:
        tracemalloc.stop()
    return Retention(
        calls=calls,
        retained_bytes=bytes_after - bytes_before,
        retained_objects=objects_after - objects_before,
        held_until_gc_bytes=held,
        cyclic_garbage=cyclic,
    )


def measure_retention(settings: Settings, checks: list[str]) -> dict[str, Retention]:
    subjects = make_subjects("retention")
    results = {
        label: retention(subject, settings.rejections) for label, subject in subjects.items()
    }
    stats = ours_breaker(subjects).stats
    expected = settings.rejections + 100
    exact = stats.rejections == expected == stats.calls
    checks.append(
        f"retention: ours counted {stats.rejections:,} rejections for {expected:,} "
        f"rejected calls ({'ok' if exact else 'MISMATCH'})"
    )
    return results


# --- reporting ------------------------------------------------------------------------------


def ratio(ours: float, peer: float) -> str:
    """``ours / peer``; n/a when either is at or below zero (retention noise)."""
    if peer <= 0 or ours < 0:
        return "n/a"
    return f"{ours / peer:.2f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def comparison_row(label: str, figures: dict[str, float], fmt: str) -> list[str]:
    cells = [label, *(format(figures[lib], fmt) for lib in LIBRARIES)]
    return cells + [ratio(figures["ours"], figures[peer]) for peer in PEERS]


@dataclass
class Results:
    """Everything the run measured."""

    success: Timings
    rejected: Timings
    throughput: dict[str, float]
    memory: dict[str, float]
    retained: dict[str, Retention]
    checks: list[str] = field(default_factory=list)

    def overhead(self) -> dict[str, float]:
        return {lib: self.success.median_minus(lib, "bare") for lib in LIBRARIES}

    def rejected_ns(self) -> dict[str, float]:
        return {lib: self.rejected.median(lib) for lib in LIBRARIES}


def print_details(results: Results, settings: Settings) -> None:
    success, rejected = results.success, results.rejected
    print(f"\n1. success path: ns per call, median of {settings.repeats} repeats (IQR)")
    rows = []
    for key in ("bare", *LIBRARIES):
        overhead = "" if key == "bare" else f"{success.median_minus(key, 'bare'):,.0f}"
        rows.append(
            [
                key,
                f"{success.median(key):,.0f}",
                f"{success.spread(key):,.0f}",
                overhead,
                f"{success.loops[key]:,}",
            ]
        )
    print(table(["callable", "ns/call", "IQR", "overhead", "loops/batch"], rows))

    print(f"\n2. rejected call (raise + catch): ns per call, median of {settings.repeats}")
    rows = [
        [
            lib,
            f"{rejected.median(lib):,.0f}",
            f"{rejected.spread(lib):,.0f}",
            f"{rejected.loops[lib]:,}",
        ]
        for lib in LIBRARIES
    ]
    print(table(["library", "ns/call", "IQR", "loops/batch"], rows))

    throughput = results.throughput
    print(
        f"\n3. throughput: {settings.threads} threads x {IO_SECONDS * 1000:g} ms sleep per "
        f"call, one shared breaker, {settings.throughput_seconds:g} s each "
        f"(interleaved rounds: {settings.throughput_rounds})"
    )
    rows = [
        [key, f"{rate:,.0f}", f"{rate / throughput['unguarded']:.1%}"]
        for key, rate in throughput.items()
    ]
    print(table(["configuration", "calls/s", "of unguarded"], rows))

    print(f"\n4. memory: tracemalloc bytes per breaker, {settings.breakers:,} breakers each")
    rows = [[lib, f"{results.memory[lib]:,.0f}"] for lib in LIBRARIES]
    print(table(["library", "bytes/breaker"], rows))

    print(
        f"\n5. retention: {settings.rejections:,} rejected calls while open "
        "(after gc.collect(); GC disabled during the calls)"
    )
    rows = [
        [
            lib,
            f"{kept.retained_bytes:,}",
            f"{kept.retained_objects:,}",
            f"{kept.held_until_gc_bytes:,}",
            f"{kept.cyclic_garbage / kept.calls:.1f}",
        ]
        for lib, kept in results.retained.items()
    ]
    headers = ["library", "retained B", "retained objs", "held until GC B", "cyclic objs/call"]
    print(table(headers, rows))


def print_comparison(results: Results) -> None:
    throughput = {lib: results.throughput[lib] for lib in LIBRARIES}
    share = {lib: 100 * rate / results.throughput["unguarded"] for lib, rate in throughput.items()}
    retained = {lib: float(kept.retained_bytes) for lib, kept in results.retained.items()}
    objects = {lib: float(kept.retained_objects) for lib, kept in results.retained.items()}
    rows = [
        comparison_row("1. success overhead (ns/call)", results.overhead(), ",.0f"),
        comparison_row("2. rejected call (ns/call)", results.rejected_ns(), ",.0f"),
        comparison_row("3. 8-thread throughput (calls/s)", throughput, ",.0f"),
        comparison_row("   ... as % of unguarded", share, ".1f"),
        comparison_row("4. memory per breaker (bytes)", results.memory, ",.0f"),
        comparison_row("5. retained after 10k rejections (B)", retained, ",.0f"),
        comparison_row("   retained gc objects", objects, ",.0f"),
    ]
    headers = ["metric", *LIBRARIES, "ours/pybreaker", "ours/circuitbreaker"]
    print("\nComparison (ratio < 1 is better for ours, except throughput)")
    print(table(headers, rows))


def print_summary(results: Results) -> None:
    overhead = results.overhead()
    rejected = results.rejected_ns()
    share = results.throughput["ours"] / results.throughput["unguarded"]
    kept = results.retained["ours"]
    targets = [
        (
            "success overhead <= 1/4 of pybreaker's",
            overhead["ours"] <= overhead["pybreaker"] / 4,
            f"{overhead['ours']:,.0f} ns vs {overhead['pybreaker'] / 4:,.0f} ns",
        ),
        (
            "success overhead <= circuitbreaker's",
            overhead["ours"] <= overhead["circuitbreaker"],
            f"{overhead['ours']:,.0f} ns vs {overhead['circuitbreaker']:,.0f} ns",
        ),
        (
            "rejected call <= circuitbreaker's",
            rejected["ours"] <= rejected["circuitbreaker"],
            f"{rejected['ours']:,.0f} ns vs {rejected['circuitbreaker']:,.0f} ns",
        ),
        (
            "8-thread throughput >= 95% of unguarded",
            share >= 0.95,
            f"{share:.1%}",
        ),
        (
            "memory per breaker < 1024 bytes",
            results.memory["ours"] < 1024,
            f"{results.memory['ours']:,.0f} bytes",
        ),
        (
            "retention while open ~0",
            abs(kept.retained_bytes) <= RETENTION_BYTES_TOLERANCE
            and abs(kept.retained_objects) <= RETENTION_OBJECTS_TOLERANCE,
            f"{kept.retained_bytes:,} bytes, {kept.retained_objects:,} objects "
            f"(tolerance {RETENTION_BYTES_TOLERANCE} B, {RETENTION_OBJECTS_TOLERANCE} objects)",
        ),
    ]
    print("\nTargets")
    width = max(len(name) for name, _, _ in targets)
    for name, passed, detail in targets:
        print(f"  {'PASS' if passed else 'FAIL'}  {name.ljust(width)}  {detail}")
    print(
        f"  info  ours leaves {kept.cyclic_garbage / kept.calls:.1f} cyclic-garbage objects "
        f"per rejected call ({kept.held_until_gc_bytes:,} B held until GC for "
        f"{kept.calls:,} calls)"
    )
    passed_count = sum(passed for _, passed, _ in targets)
    print(f"  {passed_count}/{len(targets)} targets met")
    print("\nConsistency of ours' exact stats")
    for check in results.checks:
        print(f"  {check}")


def version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed (from source)"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shorter, noisier run")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL

    print("Circuit breaker overhead: otel-resilience vs pybreaker vs circuitbreaker")
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"otel-resilience {version('otel-resilience')}, pybreaker {version('pybreaker')}, "
        f"circuitbreaker {version('circuitbreaker')}; mode: {'quick' if args.quick else 'full'}"
    )
    sys.stdout.flush()
    started = time.perf_counter()
    checks: list[str] = []
    results = Results(
        success=measure_success(settings, checks),
        rejected=measure_rejected(settings, checks),
        throughput=measure_throughput(settings, checks),
        memory=measure_memory(settings),
        retained=measure_retention(settings, checks),
        checks=checks,
    )
    print_details(results, settings)
    print_comparison(results)
    print_summary(results)
    print(f"\nTotal time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
