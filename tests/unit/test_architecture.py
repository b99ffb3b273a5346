"""The layering the folder list promises, checked on the source (issue 19's "done when").

- no import cycle among the core's modules, counting imports made only for type checking
  and inside functions: a cycle there is still two modules that cannot be read apart;
- the adapters under ``instrumentations/`` import only public core modules: their
  interface is ``otel_resilience.instrumentation``, versioned and documented;
- no module outside the breaker reaches into a breaker's or a permit's private members:
  there is one protocol, ``admit`` and ``CallPermit.record``.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path

from otel_resilience.breaker._breaker import CallPermit, CircuitBreaker

REPOSITORY = Path(__file__).resolve().parents[2]
CORE = REPOSITORY / "otel_resilience"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPOSITORY).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> Iterator[tuple[str, int]]:
    """Every core module ``path`` imports, anywhere in it, with the line."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            # "from package import submodule" depends on the submodule
            if all(module in modules for module in submodules):
                for module in submodules:
                    yield module, node.lineno
            else:
                yield base, node.lineno


def _core_graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in CORE.rglob("*.py")}
    modules = set(paths)
    return {
        name: {target for target, _ in _imports(path, modules) if target in modules} - {name}
        for name, path in paths.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_core_has_no_import_cycle() -> None:
    graph = _core_graph()
    assert len(graph) > 50, "the walk found the core's modules"
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def _is_private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split(".")[1:])


def test_adapters_import_only_public_core_modules() -> None:
    adapters = sorted((REPOSITORY / "instrumentations").glob("*/src/*/*.py"))
    assert len(adapters) >= 7
    core_modules = {_module_name(path) for path in CORE.rglob("*.py")}
    private = [
        f"{path.relative_to(REPOSITORY)}:{line}: {module}"
        for path in adapters
        for module, line in _imports(path, core_modules)
        if module.startswith("otel_resilience.") and _is_private(module)
    ]
    assert private == []


def _private_members(cls: type) -> set[str]:
    names = {name for name in vars(cls) if name.startswith("_") and not name.startswith("__")}
    return names | {name for name in getattr(cls, "__slots__", ()) if name.startswith("_")}


def test_only_the_breaker_touches_breaker_and_permit_internals() -> None:
    members = _private_members(CircuitBreaker) | _private_members(CallPermit)
    assert {"_acquire_permission", "_record_outcome", "_fast", "_clock"} <= members
    breaker_module = Path(inspect.getfile(CircuitBreaker))
    sources = [
        *(path for path in CORE.rglob("*.py") if path != breaker_module),
        *(REPOSITORY / "instrumentations").glob("*/src/*/*.py"),
    ]
    reaches = []
    for path in sources:
        nodes = list(ast.walk(ast.parse(path.read_text(), str(path))))
        # A name the module's own classes define (self._lock of a metric series) is theirs.
        own = {
            node.attr
            for node in nodes
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in {"self", "cls"}
        }
        reaches += [
            f"{path.relative_to(REPOSITORY)}:{node.lineno}: .{node.attr}"
            for node in nodes
            if isinstance(node, ast.Attribute) and node.attr in members - own
        ]
    assert reaches == []
