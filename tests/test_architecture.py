"""The package's layers read top to bottom: no module imports a layer above its own, and no
import cycle exists between modules. Both are checked on the source, so an import hidden in
a function (the CLI's way of staying fast) counts as much as one at the top of a file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "core"

# Lowest first. A module may import its own layer and those below it.
LAYERS: list[set[str]] = [
    {"errors", "settings", "formatting", "resources", "input_files"},
    {"catalog"},
    {"workflow"},
    {"telemetry"},
    {"providers", "sandbox"},
    {"exporters"},
    {"engine"},
    {"executors"},
    {"analytics"},
    {"experiments"},
    {"batch"},
    {"demo"},
    {"app"},
    {"cli", "__main__"},
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in CORE.rglob("*.py") if "_bundled" not in p.parts}


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The core modules `name` imports, anywhere in its source (TYPE_CHECKING blocks aside:
    they never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "core")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "core":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    found.discard(name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _layer(n)))
def test_no_module_imports_a_layer_above_its_own(name: str) -> None:
    own = _layer(name)
    assert own in RANK, f"{name}: package {own!r} is in no layer of tests/test_architecture.py"
    # `core` itself re-exports the engine, so inside the package it counts as the top.
    upward = sorted(
        target
        for target in GRAPH[name]
        if target == "core" or RANK.get(_layer(target) or "", len(LAYERS)) > RANK[own]
    )
    assert not upward, f"{name} (layer {own}) imports upward: {', '.join(upward)}"


def test_no_import_cycle_between_modules() -> None:
    # Importing a submodule runs its package's __init__ first, so an import of
    # core.x.y also depends on core.x; cycles through a package's own __init__ do not count.
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(GRAPH.get(module, ())):
            if target.startswith(module + ".") or module.startswith(target + "."):
                continue
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
