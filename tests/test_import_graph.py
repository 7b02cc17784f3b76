"""The package's import structure: no cycles, and a library that never loads the harness.

The graph is read from the source (ast), every import counted wherever it stands: at the top, inside
a function or under ``if TYPE_CHECKING``. A function-local import therefore cannot hide a cycle.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import allocffi

PACKAGE_DIR = Path(allocffi.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The package's own modules that ``module`` imports."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in known else source)
    return {name for name in found if name in known and name != module}


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
    # Compiled modules (allocffi._safe, ...) are leaves: `from allocffi import _safe` imports them.
    compiled = {_module_name(p.with_name(p.name.split(".")[0] + ".py")) for p in PACKAGE_DIR.rglob("*.so")}
    known = set(files) | compiled | {_module_name(p.with_suffix(".py")) for p in PACKAGE_DIR.rglob("*.pyi")}
    return {
        name: _imported(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py", known)
        for name, path in files.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_graph_is_read_from_the_source() -> None:
    graph = import_graph()
    assert "allocffi.harness.cli" in graph and "allocffi.interface" in graph
    assert "allocffi.harness.core.errors" in graph["allocffi.harness.cli"]
    assert "allocffi.interface" in graph["allocffi.allocators"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_library_imports_no_harness_module() -> None:
    graph = import_graph()
    # allocffi.__main__ is `python -m allocffi`: the harness's command line, by design.
    library = [n for n in graph if not n.startswith("allocffi.harness") and n != "allocffi.__main__"]
    for name in library:
        harness = sorted(m for m in graph[name] if m.startswith("allocffi.harness"))
        assert not harness, f"{name} imports {harness}"


@pytest.mark.subprocess
def test_using_the_library_loads_no_harness_code() -> None:
    code = (
        "import sys, allocffi\n"
        "a = allocffi.open('slab'); b = a.alloc(64); a.free(b); a.close()\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('allocffi.harness'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_every_command_interleaves_its_competitors_the_same_way() -> None:
    """One rotation (core/interleave.py) orders the competitors of every repeat of every command."""
    from allocffi.harness.core.interleave import rotated

    assert [rotated("ABC", r) for r in range(4)] == [list("ABC"), list("BCA"), list("CAB"), list("ABC")]
    assert rotated([], 3) == []
    sources = Path(__file__).resolve().parent.parent / "allocffi" / "harness"
    rotation = re.compile(r"(\w+)\[(\w+):\],?\s*(\+\s*|\*)\1\[:\2\]")  # xs[k:] + xs[:k], *xs[:k]
    hand_rolled = [
        str(path.relative_to(sources))
        for path in sources.rglob("*.py")
        if path.name != "interleave.py" and rotation.search(path.read_text())
    ]
    assert hand_rolled == [], f"a rotation of its own instead of core.interleave.rotated: {hand_rolled}"
