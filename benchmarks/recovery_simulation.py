"""Recovery after outages: our circuit breaker against a fixed-timeout (pybreaker-style) one.

What is simulated
    One endpoint under steady load: a call every 100 ms of simulated time, each taking
    0 simulated seconds. The endpoint is healthy for a 120 s warm-up (twice the default
    ``healthy_period``, so the breaker is closed and counts as healthy, and its recovery
    backoff starts from ``recovery_timeout``), then goes down for one outage of 2 s, 5 s,
    15 s, 30 s, 60 s, 2 min, 5 min, 10 min or 30 min, during which every call that reaches it
    raises; then it heals. Each (outage, breaker, seed) runs on a fresh breaker and a fresh
    simulated clock, until the first call after healing succeeds.

    Two breakers guard the endpoint:

    * ours, ``otel_resilience.breaker._breaker.CircuitBreaker`` with its default policy (5
      consecutive failures open it; the open period starts at ``recovery_timeout`` and is
      multiplied by ``recovery_backoff_multiplier`` on each consecutive re-open, capped at
      ``max_recovery_timeout``, with +/- ``recovery_jitter``; ``half_open_max_calls`` trial
      successes close it, one failed trial re-opens it);
    * a reference with pybreaker's semantics (``fail_max=5``, ``reset_timeout=60``,
      ``success_threshold=1``): 5 consecutive failures open it, it stays open a fixed 60 s,
      then ONE trial call goes through: success closes it, failure re-opens it for another
      60 s. pybreaker itself reads the wall clock (``datetime.now``), which cannot be driven
      by a simulated one, so its state machine is re-implemented faithfully in
      :class:`FixedTimeoutBreaker` below on the same simulated clock (including its
      boundary: a trial is admitted once ``now >= opened_at + reset_timeout``).

    Both are measured at the endpoint, per outage length:

    (a) recovery time: seconds from the endpoint healing to the first successful call;
    (b) calls to the dead endpoint: calls that actually reached it while it was down
        (failures, not rejections by the breaker).

    Our breaker's open periods are jittered, so each scenario runs with several seeds (the
    ``random`` module's generator is seeded, and the breaker's private ``_random`` too when
    it has one; the run checks that a repeated seed repeats its result and says so) and the
    median is reported, with ours' min-max spread. The reference has no jitter and is
    deterministic. Ratios are ours' median / reference's.

    Note on the reference: it trips 0.4 s into an outage (the 5th failed call), so its
    trials come 60.4 s, 120.4 s, ... after the outage starts. Every listed outage of 60 s
    or more is a whole number of minutes, so its trial lands 0.4 s after healing: the best
    case for a fixed 60 s period (for an outage of arbitrary length it would wait ~30 s on
    average). The outage lengths are kept as specified; the output repeats this note.

Why
    The recovery policy is a trade-off: probing early after short outages (fast recovery)
    against not hammering an endpoint that stays down. The targets checked here are:

    * short outages (<= 60 s): ours recovers at least 50% faster, i.e. ours' median
      recovery time <= 0.5 x the reference's;
    * long outages (>= 5 min): ours sends no more calls to the dead endpoint than the
      reference (median).

    Nothing sleeps and nothing touches the network; the whole run takes a few seconds.

How to run
    From the repository root::

        .venv/bin/python benchmarks/recovery_simulation.py [--seeds N]

    It prints the table and one PASS/FAIL line per target, and exits with status 1 when a
    target fails (0 otherwise).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from otel_resilience.breaker._breaker import CircuitBreaker, CircuitOpenError

BreakerKind = Literal["ours", "reference"]
Guard = Callable[[Callable[[], None]], None]

CALLS_PER_SECOND: Final = 10  # one call every 100 ms of simulated time
WARM_UP_SECONDS: Final = 120  # healthy traffic before each outage (> healthy_period, 60 s)
OUTAGES_SECONDS: Final[tuple[int, ...]] = (2, 5, 15, 30, 45, 60, 90, 120, 300, 600, 1800)
SHORT_OUTAGE_MAX_SECONDS: Final = 60  # target 1 applies to outages up to this long
LONG_OUTAGE_MIN_SECONDS: Final = 300  # target 2 applies to outages at least this long
RECOVERY_TARGET_RATIO: Final = 0.5
DEFAULT_SEEDS: Final = 11
# Our breaker re-opens after at most max_recovery_timeout (300 s); stop a scenario that has
# not recovered long after that, so a broken breaker fails loudly instead of looping.
GIVE_UP_AFTER_HEALING_SECONDS: Final = 3600


class EndpointDownError(Exception):
    """What the simulated endpoint raises while it is down."""


class ReferenceOpenError(Exception):
    """What the reference breaker raises instead of making a call it rejects."""


class SimulatedClock:
    """A clock that only moves when the simulation moves it; returns seconds."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Endpoint:
    """Down on ``[down_from, down_until)``, healthy otherwise; counts what reaches it."""

    def __init__(self, clock: SimulatedClock, down_from: float, down_until: float) -> None:
        self._clock = clock
        self.down_from = down_from
        self.down_until = down_until
        self.calls_while_down = 0
        self.first_success_after_healing: float | None = None

    def serve(self) -> None:
        """One call: raises while down, records the first success after healing."""
        now = self._clock()
        if self.down_from <= now < self.down_until:
            self.calls_while_down += 1
            raise EndpointDownError(f"endpoint down at t={now:.1f}s")
        if now >= self.down_until and self.first_success_after_healing is None:
            self.first_success_after_healing = now


class FixedTimeoutBreaker:
    """pybreaker's state machine (fail_max, fixed reset_timeout, one trial) on any clock.

    Closed: a success resets the failure counter; the ``fail_max``-th consecutive failure
    opens it. Open: calls are rejected until ``reset_timeout`` seconds after opening; the
    first call after that is the half-open trial. Half-open: the trial's success closes it,
    its failure opens it again for another ``reset_timeout``.
    """

    def __init__(
        self, clock: Callable[[], float], fail_max: int = 5, reset_timeout: float = 60.0
    ) -> None:
        self._clock = clock
        self.fail_max = fail_max
        self.reset_timeout = reset_timeout
        self.state: Literal["closed", "open", "half_open"] = "closed"
        self._failures = 0
        self._opened_at = 0.0

    def call(self, function: Callable[[], None]) -> None:
        """Call ``function`` through the breaker; raises :class:`ReferenceOpenError`."""
        if self.state == "open":
            if self._clock() < self._opened_at + self.reset_timeout:
                raise ReferenceOpenError("circuit open")
            self.state = "half_open"
        try:
            function()
        except Exception:
            self._failures += 1
            if self.state == "half_open" or self._failures >= self.fail_max:
                self.state = "open"
                self._opened_at = self._clock()
            raise
        self._failures = 0
        if self.state == "half_open":
            self.state = "closed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one scenario measured at the endpoint."""

    recovery_seconds: float
    calls_while_down: int


def _our_breaker(name: str, clock: SimulatedClock, seed: int) -> CircuitBreaker:
    """Our breaker with its default policy, its jitter seeded with ``seed``.

    The jitter's generator is an implementation detail: seed the ``random`` module's
    shared generator, and the breaker's own private ``_random`` when it has one.
    :func:`check_reproducible` verifies that this made the runs reproducible.
    """
    random.seed(seed)
    breaker = CircuitBreaker(name, clock=clock)
    generator = getattr(breaker, "_random", None)
    if isinstance(generator, random.Random):
        generator.seed(seed)
    return breaker


def run_scenario(kind: BreakerKind, outage_seconds: int, seed: int) -> Outcome:
    """Warm up, take the endpoint down for ``outage_seconds``, run until a call succeeds."""
    clock = SimulatedClock()
    down_from = float(WARM_UP_SECONDS)
    down_until = float(WARM_UP_SECONDS + outage_seconds)
    endpoint = Endpoint(clock, down_from, down_until)
    guard: Guard
    rejection: type[Exception]
    is_closed: Callable[[], bool]
    if kind == "ours":
        ours = _our_breaker(f"sim-{outage_seconds}s-{seed}", clock, seed)
        guard, rejection = ours.call, CircuitOpenError

        def is_closed() -> bool:
            return ours.state == "closed"

    else:
        reference = FixedTimeoutBreaker(clock)
        guard, rejection = reference.call, ReferenceOpenError

        def is_closed() -> bool:
            return reference.state == "closed"

    serve = endpoint.serve
    last_tick = (WARM_UP_SECONDS + outage_seconds + GIVE_UP_AFTER_HEALING_SECONDS) * (
        CALLS_PER_SECOND
    )
    outage_tick = WARM_UP_SECONDS * CALLS_PER_SECOND
    for tick in range(last_tick + 1):
        # Integer ticks divided once: no drift, and whole seconds are exact.
        clock.now = tick / CALLS_PER_SECOND
        if tick == outage_tick and not is_closed():
            raise RuntimeError(f"{kind}: breaker not closed when the outage starts")
        with contextlib.suppress(rejection, EndpointDownError):
            guard(serve)
        if endpoint.first_success_after_healing is not None:
            return Outcome(
                endpoint.first_success_after_healing - down_until, endpoint.calls_while_down
            )
    raise RuntimeError(
        f"{kind}: no successful call within {GIVE_UP_AFTER_HEALING_SECONDS}s of healing "
        f"after a {outage_seconds}s outage (seed {seed})"
    )


@dataclass(frozen=True, slots=True)
class Row:
    """Medians over seeds for one outage length."""

    outage_seconds: int
    ours_recovery: float
    ours_recovery_min: float
    ours_recovery_max: float
    reference_recovery: float
    ours_calls: float
    ours_calls_min: int
    ours_calls_max: int
    reference_calls: float

    @property
    def recovery_ratio(self) -> float:
        return _ratio(self.ours_recovery, self.reference_recovery)

    @property
    def calls_ratio(self) -> float:
        return _ratio(self.ours_calls, self.reference_calls)

    @property
    def recovery_target_met(self) -> bool:
        return self.ours_recovery <= RECOVERY_TARGET_RATIO * self.reference_recovery

    @property
    def calls_target_met(self) -> bool:
        return self.ours_calls <= self.reference_calls


def _ratio(ours: float, reference: float) -> float:
    if reference == 0:
        return 1.0 if ours == 0 else float("inf")
    return ours / reference


def check_reproducible(seed: int) -> bool:
    """Whether a seed repeats its result (the longest outage draws the most jitter)."""
    outage = max(OUTAGES_SECONDS)
    return run_scenario("ours", outage, seed) == run_scenario("ours", outage, seed)


def simulate(seeds: Sequence[int]) -> list[Row]:
    """One row per outage length, medians over ``seeds``."""
    rows: list[Row] = []
    for outage in OUTAGES_SECONDS:
        ours: list[Outcome] = []
        reference: list[Outcome] = []
        for seed in seeds:
            ours.append(run_scenario("ours", outage, seed))
            reference.append(run_scenario("reference", outage, seed))
        ours_recovery = [o.recovery_seconds for o in ours]
        ours_calls = [o.calls_while_down for o in ours]
        rows.append(
            Row(
                outage_seconds=outage,
                ours_recovery=statistics.median(ours_recovery),
                ours_recovery_min=min(ours_recovery),
                ours_recovery_max=max(ours_recovery),
                reference_recovery=statistics.median(o.recovery_seconds for o in reference),
                ours_calls=statistics.median(ours_calls),
                ours_calls_min=min(ours_calls),
                ours_calls_max=max(ours_calls),
                reference_calls=statistics.median(o.calls_while_down for o in reference),
            )
        )
    return rows


def _duration(seconds: int) -> str:
    if seconds < 60 or seconds % 60:
        return f"{seconds} s"
    return f"{seconds // 60} min"


def _format_ratio(value: float) -> str:
    return "inf" if value == float("inf") else f"{value:.2f}"


def _format_count(value: float) -> str:
    return f"{value:g}"


def report(rows: Sequence[Row], seeds: Sequence[int], reproducible: bool) -> bool:
    """Print the table and the target lines; ``True`` if both targets pass."""
    seeding = (
        "seeded, reproducible"
        if reproducible
        else "NOT reproducible: the breaker's jitter ignores the seed"
    )
    print(
        f"Simulated endpoint: 1 call / {1000 // CALLS_PER_SECOND} ms, {WARM_UP_SECONDS} s "
        f"healthy warm-up before each outage; {len(seeds)} seeds ({seeding}), medians shown."
    )
    print(
        "ours = otel_resilience CircuitBreaker, default policy; "
        "ref = fixed 60 s timeout, 1 trial call (pybreaker semantics)."
    )
    print()
    header = (
        f"{'outage':>7} | {'recovery s: ours':>16} {'(min-max)':>15} {'ref':>7} "
        f"{'ours/ref':>8} | {'calls to dead endpoint: ours':>28} {'(min-max)':>11} "
        f"{'ref':>5} {'ours/ref':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        spread = f"({row.ours_recovery_min:.1f}-{row.ours_recovery_max:.1f})"
        calls_spread = f"({row.ours_calls_min}-{row.ours_calls_max})"
        print(
            f"{_duration(row.outage_seconds):>7} | {row.ours_recovery:>16.1f} {spread:>15} "
            f"{row.reference_recovery:>7.1f} {_format_ratio(row.recovery_ratio):>8} | "
            f"{_format_count(row.ours_calls):>28} {calls_spread:>11} "
            f"{_format_count(row.reference_calls):>5} {_format_ratio(row.calls_ratio):>8}"
        )
    print(
        "note: ref trips 0.4 s into an outage, so on outages of whole minutes its 60 s trial "
        "lands 0.4 s after healing (its best case)."
    )
    print()

    short = [row for row in rows if row.outage_seconds <= SHORT_OUTAGE_MAX_SECONDS]
    long = [row for row in rows if row.outage_seconds >= LONG_OUTAGE_MIN_SECONDS]
    recovery_ok = all(row.recovery_target_met for row in short)
    calls_ok = all(row.calls_target_met for row in long)
    recovery_detail = ", ".join(
        f"{_duration(row.outage_seconds)}: {_format_ratio(row.recovery_ratio)}"
        + ("" if row.recovery_target_met else " FAIL")
        for row in short
    )
    calls_detail = ", ".join(
        f"{_duration(row.outage_seconds)}: {_format_count(row.ours_calls)} vs "
        f"{_format_count(row.reference_calls)}" + ("" if row.calls_target_met else " FAIL")
        for row in long
    )
    print(
        f"{'PASS' if recovery_ok else 'FAIL'}  recovery >= 50% faster on outages "
        f"<= {SHORT_OUTAGE_MAX_SECONDS} s (ours/ref <= {RECOVERY_TARGET_RATIO}): "
        f"{recovery_detail}"
    )
    print(
        f"{'PASS' if calls_ok else 'FAIL'}  no more calls to a dead endpoint on outages "
        f">= {_duration(LONG_OUTAGE_MIN_SECONDS)} (ours <= ref): {calls_detail}"
    )
    return recovery_ok and calls_ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seeds",
        type=int,
        default=DEFAULT_SEEDS,
        help=f"number of jitter seeds per outage (default {DEFAULT_SEEDS})",
    )
    arguments = parser.parse_args(argv)
    if arguments.seeds < 1:
        parser.error("--seeds must be >= 1")
    # Every simulated trip logs a warning; thousands of them would bury the table.
    logging.getLogger("otel_resilience").setLevel(logging.ERROR)
    seeds = list(range(arguments.seeds))
    started = time.perf_counter()
    reproducible = check_reproducible(seeds[0])
    rows = simulate(seeds)
    passed = report(rows, seeds, reproducible)
    print(f"\n(simulation took {time.perf_counter() - started:.1f} s of wall time)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
