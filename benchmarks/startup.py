"""Whole-process start-up under ``opentelemetry-instrument``: ours, upstream's distro, the floor.

What is measured
----------------

The wall time and the peak resident memory of one whole process tree, launcher included, of

``-c pass``
    ``opentelemetry-instrument python -c pass``: what every program pays before its first
    line, whatever it uses;
``import requests``
    ``opentelemetry-instrument python -c "import requests"``: a program that uses one of the
    seven instrumented libraries, and so pays for its instrumentation too;

each in three virtual environments, built from the same interpreter and the versions pinned
in ``requirements/constraints.txt``, each with the seven libraries themselves installed
(requests, httpx, psycopg[binary], psycopg2-binary, PyMySQL, redis; sqlite3 is stdlib):

``floor``
    the launcher (opentelemetry-instrumentation) with the SDK, configured by
    ``opentelemetry-distro[otlp]`` and no instrumentation at all: what any distro costs;
``upstream``
    the same plus upstream's instrumentations of the seven libraries
    (opentelemetry-instrumentation-requests, -httpx, -sqlite3, -psycopg, -psycopg2, -pymysql,
    -redis): what a user of upstream's distro pays for the same coverage;
``ours``
    ``otel-resilience`` (which brings our seven adapters) from wheels built from this
    working tree, uncommitted changes included (``pip wheel --no-deps`` of the core and of
    every ``instrumentations/*/``).

``opentelemetry-distro`` is not in the constraints file; it is pinned to the release of the
launcher there (its ``[otlp]`` extra, the documented install, pins the exporters). Every
process gets ``OTEL_TRACES_EXPORTER``, ``OTEL_METRICS_EXPORTER`` and ``OTEL_LOGS_EXPORTER``
set to ``none`` and no other ``OTEL_*`` variable, no ``PYTHON*`` variable (no
``PYTHONPATH``, and bytecode is cached as in production), its environment's ``bin`` first
on ``PATH`` (the launcher finds ``python`` there), and an empty temporary directory as its
working directory (the launcher puts the working directory on ``PYTHONPATH``, so it must
not be this repository). Each environment holds one distro and one configurator, so none
needs ``OTEL_PYTHON_DISTRO``.

A run is ``subprocess.Popen`` timed with ``time.perf_counter`` up to ``os.wait4`` on the
child, whose resource usage gives that child's own peak RSS (``ru_maxrss``; the launcher
``exec``s the program in the same process, so it is the peak of both; the
``RUSAGE_CHILDREN`` of :mod:`resource` would be a running maximum over all children). Two
untimed runs of each cell first (bytecode caches, the page cache), then rounds: every
environment and program once per round, in an order that rotates from round to round, so
that noise on a shared machine falls on all of them alike. Reported are the median and
interquartile range of the wall time and the median peak RSS of 15 runs per cell (9 with
``--quick``), and for information the median CPU time (user + system, from the same
``wait4``): on a shared machine other processes' load stretches wall time far more than
CPU time. Before timing, one probe run per environment prints which of the heavy
modules (the seven libraries, grpc, protobuf, prometheus_client, the exporters) were
already imported when the program's first line ran, and what hooks
``requests.Session.send`` once requests is imported, so that a figure cannot come from an
environment that instruments nothing.

Targets (the start-up issue), in the same run: ours' median <= 0.6 x upstream's for
``-c pass`` and <= 0.7 x for ``import requests``; ours' median peak RSS no more than
upstream's for each program. The floor's figures are printed beside them: what no distro
can go below.

Environments
------------

Each is a venv in ``$XDG_CACHE_HOME/otel-resilience-bench/startup/<name>`` (``~/.cache``
without it; ``--cache-dir`` to choose), reused while a hash of what it should hold (the
requirements, the constraints file, the interpreter, and for ours every ``pyproject.toml``)
matches the one recorded in it. For ours a second hash covers the sources: when only they
changed, the wheels are rebuilt and reinstalled without their dependencies (about 30 s).
``--rebuild`` builds every environment anew. The first run builds all three, which takes a
few minutes on 2 cores (the packages come from the registry); later runs take about a
minute (about 40 s with ``--quick``).

How to run
----------

From the repository root::

    .venv/bin/python benchmarks/startup.py              # about a minute once built
    .venv/bin/python benchmarks/startup.py --quick      # 9 runs per cell
    .venv/bin/python benchmarks/startup.py --profile ours   # where ours spends its start-up

``--profile ENV`` runs the program (``--profile-program``, default ``pass``) once under the
launcher in that environment with ``PYTHONPROFILEIMPORTTIME=1`` (``-X importtime`` for both
the launcher's process and the program's) and prints the program process's top 25 imports by
cumulative time with what imported each, and for each heavy module whether it was imported
and through which chain of imports. Import times inflate under the profiler; read them for
where the time goes. The exit status is 0 whatever the results; read the PASS/FAIL lines at
the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent
CONSTRAINTS = REPOSITORY / "requirements" / "constraints.txt"
RECIPE_VERSION = 1  # bump when the way an environment is built changes
MARKER = "otel-resilience-startup.json"

LIBRARIES = ("requests", "httpx", "psycopg[binary]", "psycopg2-binary", "PyMySQL", "redis")
UPSTREAM_INSTRUMENTATIONS = tuple(
    f"opentelemetry-instrumentation-{library}"
    for library in ("requests", "httpx", "sqlite3", "psycopg", "psycopg2", "pymysql", "redis")
)
# Imported at start-up, each of these costs tens of milliseconds; a program that does not
# use them should not pay for them.
HEAVY_MODULES = (
    "requests",
    "urllib3",
    "httpx",
    "httpcore",
    "psycopg",
    "psycopg2",
    "pymysql",
    "redis",
    "sqlite3",
    "grpc",
    "google.protobuf",
    "prometheus_client",
    "opentelemetry.exporter.otlp.proto.grpc",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.prometheus",
)
EXPORTERS_NONE = {
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
}
TARGETS = {"-c pass": 0.6, "import requests": 0.7}
FULL_RUNS = 15
QUICK_RUNS = 9
WARM_UPS = 2
TOP_IMPORTS = 25


@dataclass(frozen=True)
class Program:
    key: str  # as --profile-program names it
    label: str
    code: str


PROGRAMS = (
    Program("pass", "-c pass", "pass"),
    Program("requests", "import requests", "import requests"),
)


@dataclass(frozen=True)
class Environment:
    """One venv: its name, what pip installs into it, and whether it holds our wheels."""

    name: str
    requirements: tuple[str, ...]
    ours: bool = False


@dataclass
class Cell:
    """The runs of one program in one environment."""

    environment: str
    program: Program
    seconds: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    stderr: str = ""

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_rss_mb(self) -> float:
        return statistics.median(self.peak_rss_mb)

    @property
    def median_cpu_seconds(self) -> float:
        return statistics.median(self.cpu_seconds)


# --- environments ------------------------------------------------------------------------


def pinned_versions() -> dict[str, str]:
    """``name==version`` lines of the constraints file, by normalised name."""
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        name, separator, version = line.partition("==")
        if separator and not line.startswith("#"):
            pins[normalised(name)] = version.strip()
    return pins


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def environments() -> list[Environment]:
    launcher = pinned_versions().get("opentelemetry-instrumentation")
    if launcher is None:
        raise SystemExit(f"{CONSTRAINTS} pins no opentelemetry-instrumentation")
    distro = f"opentelemetry-distro[otlp]=={launcher}"
    return [
        Environment("floor", (distro, *LIBRARIES)),
        Environment("upstream", (distro, *UPSTREAM_INSTRUMENTATIONS, *LIBRARIES)),
        Environment("ours", ("otel-resilience", *LIBRARIES), ours=True),
    ]


def our_projects() -> list[Path]:
    """The core and every adapter, each a directory ``pip wheel`` builds."""
    adapters = sorted(
        path.parent for path in (REPOSITORY / "instrumentations").glob("*/pyproject.toml")
    )
    return [REPOSITORY, *adapters]


def spec_digest(environment: Environment) -> str:
    """What the environment's dependencies depend on; a change means a new venv."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            [
                RECIPE_VERSION,
                environment.requirements,
                sys.version,
                os.path.realpath(sys.executable),
            ]
        ).encode()
    )
    digest.update(CONSTRAINTS.read_bytes())
    if environment.ours:
        for project in our_projects():
            digest.update((project / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def source_digest() -> str:
    """Every file our wheels are built from; a change means new wheels."""
    digest = hashlib.sha256()
    roots = [REPOSITORY / "otel_resilience", REPOSITORY / "README.md"]
    roots += [project / "src" for project in our_projects()[1:]]
    for root in roots:
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPOSITORY)).encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()


def pip(python: Path, *arguments: str) -> None:
    """Run pip in an environment; its output is shown only when it fails."""
    command = [str(python), "-m", "pip", *arguments]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-4000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"pip failed ({result.returncode}): {' '.join(command)}")


def build_wheels(python: Path, wheels: Path) -> list[Path]:
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    pip(python, "wheel", "-q", "--no-deps", "-w", str(wheels), *map(str, our_projects()))
    return sorted(wheels.glob("*.whl"))


def ensure_environment(environment: Environment, root: Path, *, rebuild: bool) -> Path:
    """The environment's venv, built or brought up to date as its marker says."""
    venv = root / environment.name
    python = venv / "bin" / "python"
    marker = venv / MARKER
    wanted = {"spec": spec_digest(environment)}
    if environment.ours:
        wanted["source"] = source_digest()
    recorded: dict[str, str] = {}
    if marker.exists() and not rebuild:
        recorded = json.loads(marker.read_text())
    if recorded == wanted:
        return venv
    started = time.perf_counter()
    wheels = root / "wheels"
    if recorded.get("spec") == wanted["spec"]:
        print(f"  {environment.name}: sources changed, reinstalling our wheels...", flush=True)
        built = build_wheels(python, wheels)
        pip(python, "install", "-q", "--no-deps", "--force-reinstall", *map(str, built))
    else:
        print(
            f"  {environment.name}: building {venv} (the first time takes a few minutes)...",
            flush=True,
        )
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        requirements = list(environment.requirements)
        if environment.ours:
            # Our wheels by path (the adapters found beside the core), not by name from a
            # registry; the libraries and every other dependency as the constraints pin them.
            built = build_wheels(python, wheels)
            requirements = [*map(str, built), *LIBRARIES]
            requirements[:0] = ["--find-links", str(wheels)]
        pip(python, "install", "-q", "-c", str(CONSTRAINTS), *requirements)
    marker.write_text(json.dumps(wanted))
    print(f"  {environment.name}: ready in {time.perf_counter() - started:.0f} s", flush=True)
    return venv


def cache_root(arguments: argparse.Namespace) -> Path:
    if arguments.cache_dir:
        return Path(arguments.cache_dir).resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "otel-resilience-bench" / "startup"


# --- running -----------------------------------------------------------------------------


def child_environment(venv: Path, **extra: str) -> dict[str, str]:
    """The process environment of a run: scrubbed of OTEL_* and PYTHON*, exporters none."""
    scrubbed = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OTEL_", "PYTHON")) and name != "VIRTUAL_ENV"
    }
    scrubbed["PATH"] = os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", os.defpath)])
    scrubbed["VIRTUAL_ENV"] = str(venv)
    return scrubbed | EXPORTERS_NONE | extra


def launched(venv: Path, *python_arguments: str) -> list[str]:
    return [str(venv / "bin" / "opentelemetry-instrument"), "python", *python_arguments]


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float
    exit_code: int
    stdout: str
    stderr: str


def run_once(command: Sequence[str], environment: dict[str, str], cwd: Path) -> Run:
    """One whole process: wall time to its exit, and its own peak RSS from ``wait4``.

    Its output goes to files, not pipes: an import profile fills a pipe's buffer, and
    ``communicate`` would reap the child before ``wait4`` could read its usage.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            command, env=environment, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            seconds=seconds,
            peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            exit_code=child.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def checked(run: Run, what: str) -> Run:
    if run.exit_code != 0:
        raise SystemExit(f"{what} exited with {run.exit_code}:\n{run.stderr[-3000:]}")
    return run


PROBE = f"""\
import sys
heavy = [name for name in {HEAVY_MODULES!r} if name in sys.modules]
distros = [name for name in ("otel_resilience.sdk.distro", "opentelemetry.distro")
           if name in sys.modules]
import json
from importlib import metadata
from opentelemetry import trace
import requests
send = requests.Session.__dict__["send"]
hook = getattr(send, "_self_wrapper", send)  # wrapt's wrapper, or functools.wraps' function
source = getattr(getattr(hook, "__code__", None), "co_filename", "?")
def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
print(json.dumps({{
    "heavy_at_start": heavy,
    "distro_modules": distros,
    "tracer_provider": type(trace.get_tracer_provider()).__name__,
    "send_code": source.rpartition("site-packages/")[2],
    "versions": {{name: version(name) for name in (
        "opentelemetry-sdk", "opentelemetry-instrumentation", "opentelemetry-distro",
        "opentelemetry-instrumentation-requests", "otel-resilience", "requests")}},
}}))
"""


def probe(name: str, venv: Path, cwd: Path) -> dict[str, Any]:
    run = checked(
        run_once(launched(venv, "-c", PROBE), child_environment(venv), cwd), f"{name} probe"
    )
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def print_probe(name: str, found: dict[str, Any]) -> None:
    versions = ", ".join(
        f"{package} {version}" for package, version in found["versions"].items() if version
    )
    heavy = ", ".join(found["heavy_at_start"]) or "none"
    print(f"  {name}: {versions}")
    print(
        f"    distro module {', '.join(found['distro_modules']) or 'none'}; "
        f"{found['tracer_provider']}; requests.Session.send's code in {found['send_code']}"
    )
    print(f"    heavy modules imported before the program's first line: {heavy}")


def rotated(items: Sequence[Cell], shift: int) -> list[Cell]:
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def measure(cells: list[Cell], venvs: dict[str, Path], runs: int, cwd: Path) -> None:
    """Warm-ups, then rounds of every cell in rotating order."""
    for cell in cells:
        venv = venvs[cell.environment]
        for _ in range(WARM_UPS):
            run = run_once(launched(venv, "-c", cell.program.code), child_environment(venv), cwd)
            checked(run, f"{cell.environment} {cell.program.label}")
            cell.stderr = cell.stderr or run.stderr.strip()
    for round_index in range(runs):
        for cell in rotated(cells, round_index):
            venv = venvs[cell.environment]
            command = launched(venv, "-c", cell.program.code)
            run = checked(
                run_once(command, child_environment(venv), cwd),
                f"{cell.environment} {cell.program.label}",
            )
            cell.seconds.append(run.seconds)
            cell.peak_rss_mb.append(run.peak_rss_mb)
            cell.cpu_seconds.append(run.cpu_seconds)


# --- reporting ---------------------------------------------------------------------------


def iqr(samples: Sequence[float]) -> float:
    quartiles = statistics.quantiles(samples, n=4)
    return quartiles[2] - quartiles[0]


def print_table(cells: Sequence[Cell]) -> None:
    print(
        f"\n{'env':<10}{'program':<18}{'median s':>10}{'IQR s':>9}{'peak RSS MB':>13}{'CPU s':>8}"
    )
    for cell in cells:
        print(
            f"{cell.environment:<10}{cell.program.label:<18}{cell.median_seconds:>10.3f}"
            f"{iqr(cell.seconds):>9.3f}{cell.median_rss_mb:>13.1f}"
            f"{cell.median_cpu_seconds:>8.3f}"
        )
    for cell in cells:
        if cell.stderr:
            first = cell.stderr.splitlines()[0]
            print(f"note: {cell.environment} / {cell.program.label} wrote to stderr: {first}")


def print_targets(cells: Sequence[Cell]) -> None:
    by_key = {(cell.environment, cell.program.label): cell for cell in cells}
    print("\nTargets (ours / upstream, same run; the floor is what no distro goes below)")
    verdicts: list[bool] = []
    for program in PROGRAMS:
        ours, upstream, floor = (
            by_key[(name, program.label)] for name in ("ours", "upstream", "floor")
        )
        target = TARGETS[program.label]
        ratio = ours.median_seconds / upstream.median_seconds
        verdicts.append(ratio <= target)
        print(
            f"  {'PASS' if verdicts[-1] else 'FAIL'}  {program.label:<16} time    "
            f"ours {ours.median_seconds:.3f} s / upstream {upstream.median_seconds:.3f} s = "
            f"{ratio:.2f}x (target <= {target}x); floor {floor.median_seconds:.3f} s, above "
            f"it: ours +{ours.median_seconds - floor.median_seconds:.3f} s, upstream "
            f"+{upstream.median_seconds - floor.median_seconds:.3f} s"
        )
    for program in PROGRAMS:
        ours, upstream, floor = (
            by_key[(name, program.label)] for name in ("ours", "upstream", "floor")
        )
        verdicts.append(ours.median_rss_mb <= upstream.median_rss_mb)
        print(
            f"  {'PASS' if verdicts[-1] else 'FAIL'}  {program.label:<16} memory  "
            f"ours {ours.median_rss_mb:.1f} MB vs upstream {upstream.median_rss_mb:.1f} MB "
            f"(target: no more); floor {floor.median_rss_mb:.1f} MB"
        )
    for program in PROGRAMS:
        ours, upstream, floor = (
            by_key[(name, program.label)] for name in ("ours", "upstream", "floor")
        )
        print(
            f"  info  {program.label:<16} CPU     ours {ours.median_cpu_seconds:.3f} s / "
            f"upstream {upstream.median_cpu_seconds:.3f} s = "
            f"{ours.median_cpu_seconds / upstream.median_cpu_seconds:.2f}x; floor "
            f"{floor.median_cpu_seconds:.3f} s"
        )
    print(f"  {sum(verdicts)}/{len(verdicts)} targets met")


def header(runs: int, quick: bool) -> None:
    print("Start-up under opentelemetry-instrument: otel-resilience vs opentelemetry-distro")
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; mode: "
        f"{'quick' if quick else 'full'} ({runs} runs per cell after {WARM_UPS} warm-ups, "
        "rotating order); exporters none",
        flush=True,
    )


def benchmark(arguments: argparse.Namespace) -> None:
    runs = arguments.runs or (QUICK_RUNS if arguments.quick else FULL_RUNS)
    header(runs, arguments.quick)
    started = time.perf_counter()
    root = cache_root(arguments)
    print(f"Environments (in {root}):", flush=True)
    venvs = {
        environment.name: ensure_environment(environment, root, rebuild=arguments.rebuild)
        for environment in environments()
    }
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as directory:
        cwd = Path(directory)
        for name, venv in venvs.items():
            print_probe(name, probe(name, venv, cwd))
        sys.stdout.flush()
        cells = [Cell(name, program) for name in venvs for program in PROGRAMS]
        measure(cells, venvs, runs, cwd)
    print_table(cells)
    print_targets(cells)
    print(f"\nTotal time: {time.perf_counter() - started:.1f} s")


# --- import profile ----------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    self_us: int
    cumulative_us: int
    depth: int
    name: str
    parent: int | None  # index of the import that imported it, in the same process


IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def processes(stderr: str) -> Iterator[list[Import]]:
    """One list of imports per process, in the order ``-X importtime`` printed them.

    A child's line comes before its parent's, so an import's parent is the first later line
    at a lesser depth.
    """
    blocks: list[list[tuple[int, int, int, str]]] = []
    for line in stderr.splitlines():
        if line.startswith("import time: self"):
            blocks.append([])
        elif blocks and (match := IMPORT_LINE.match(line)):
            self_us, cumulative_us, indent, name = match.groups()
            blocks[-1].append((int(self_us), int(cumulative_us), len(indent) // 2, name))
    for block in blocks:
        imports: list[Import] = []
        open_parents: list[int] = []  # indices still waiting for their parent
        parents: dict[int, int] = {}
        for index, (_, _, depth, _) in enumerate(block):
            while open_parents and block[open_parents[-1]][2] > depth:
                parents[open_parents.pop()] = index
            open_parents.append(index)
        for index, (self_us, cumulative_us, depth, name) in enumerate(block):
            imports.append(Import(self_us, cumulative_us, depth, name, parents.get(index)))
        yield imports


def chain(imports: Sequence[Import], index: int) -> str:
    names = []
    parent = imports[index].parent
    while parent is not None:
        names.append(imports[parent].name)
        parent = imports[parent].parent
    return " <- ".join(names) or "(top level)"


def print_profile(
    imports: Sequence[Import], launcher: Sequence[Import], at_start: Sequence[str]
) -> None:
    """The top imports, then every heavy module: imported or not, and through what.

    ``at_start`` (from a probe run) names the heavy modules imported before the program's
    first line, which catches a package that importtime did not time.
    """
    total = sum(item.cumulative_us for item in imports if item.depth == 0)
    launcher_total = sum(item.cumulative_us for item in launcher if item.depth == 0)
    print(
        f"launcher process: {len(launcher)} imports, {launcher_total / 1000:.1f} ms; program "
        f"process: {len(imports)} imports, {total / 1000:.1f} ms (top-level cumulative)"
    )
    print(f"\nProgram process, top {TOP_IMPORTS} imports by cumulative time")
    print(
        "(-X importtime does not time a module loaded through importlib.import_module, as the\n"
        " launcher loads entry points, nor the packages above it: such a module's own time and\n"
        " its imports show under the nearest timed importer, often sitecustomize)"
    )
    print(f"{'cumul ms':>9}{'self ms':>9}  module  (imported by)")
    ranked = sorted(range(len(imports)), key=lambda i: -imports[i].cumulative_us)
    for index in ranked[:TOP_IMPORTS]:
        item = imports[index]
        parent = imports[item.parent].name if item.parent is not None else "-"
        print(
            f"{item.cumulative_us / 1000:>9.1f}{item.self_us / 1000:>9.1f}  {item.name}  ({parent})"
        )
    print("\nHeavy modules in the program process (imported by, nearest first)")
    for module in HEAVY_MODULES:
        found = [i for i, item in enumerate(imports) if item.name == module]
        if found:
            item = imports[found[0]]
            print(f"  {module}: {item.cumulative_us / 1000:.1f} ms, via {chain(imports, found[0])}")
            continue
        inside = [i for i, item in enumerate(imports) if item.name.startswith(f"{module}.")]
        if module in at_start or inside:
            # The package itself came through importlib.import_module (or as the parent of
            # such a module); its first timed submodule shows where.
            where = f"; its {imports[inside[0]].name} via {chain(imports, inside[0])}"
            print(f"  {module}: imported, not timed{where if inside else ''}")
        else:
            print(f"  {module}: not imported")


def run_profile(arguments: argparse.Namespace) -> None:
    chosen = {environment.name: environment for environment in environments()}[arguments.profile]
    program = {program.key: program for program in PROGRAMS}[arguments.profile_program]
    venv = ensure_environment(chosen, cache_root(arguments), rebuild=arguments.rebuild)
    print(
        f"Import profile: {chosen.name}, opentelemetry-instrument python -c "
        f"{program.code!r} with PYTHONPROFILEIMPORTTIME=1 (one run after a warm-up)"
    )
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as directory:
        cwd = Path(directory)
        command = launched(venv, "-c", program.code)
        checked(run_once(command, child_environment(venv), cwd), "warm-up")
        run = checked(
            run_once(command, child_environment(venv, PYTHONPROFILEIMPORTTIME="1"), cwd),
            "profiled run",
        )
        at_start: list[str] = probe(chosen.name, venv, cwd)["heavy_at_start"]
    found = list(processes(run.stderr))
    if len(found) != 2:
        raise SystemExit(f"expected the launcher's and the program's imports, got {len(found)}")
    launcher, imports = found
    print_profile(imports, launcher, at_start)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} runs per cell")
    parser.add_argument("--runs", type=int, help="runs per cell instead of the mode's")
    parser.add_argument("--rebuild", action="store_true", help="build the environments anew")
    parser.add_argument("--cache-dir", help="where the environments live (see the docstring)")
    parser.add_argument(
        "--profile",
        choices=("floor", "upstream", "ours"),
        help="print one run's import profile in that environment instead",
    )
    parser.add_argument(
        "--profile-program",
        choices=[program.key for program in PROGRAMS],
        default="pass",
        help="the program --profile runs: -c pass (default) or import requests",
    )
    arguments = parser.parse_args(argv)
    if arguments.runs is not None and arguments.runs < 2:
        parser.error("--runs must be at least 2 (an interquartile range needs two)")
    if arguments.profile:
        run_profile(arguments)
    else:
        benchmark(arguments)


if __name__ == "__main__":
    main()
