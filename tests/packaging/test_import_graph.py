"""The package's import graph: no cycles, and layers that only point down.

Every import statement counts, the ones inside functions too (a local import that closes a cycle
is still a cycle, only deferred).  Importing a submodule runs its parent package's __init__ as
well; those implicit edges are left out, or every package would be in a cycle with its own
__init__.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# where each installed package lives in the repository (pyproject.toml's package-dir)
FOLDERS = {"eqdsl": "eqdsl", "eqdsl.backends": "backends", "eqdsl.benchmarks": "benchmarks"}

# lower layers first: a module may import from its own layer and the ones before it, never after
LAYERS = ["eqdsl.groups", "eqdsl.reps", "eqdsl.ir", "eqdsl.check", "eqdsl.codegen"]


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if any(p.startswith(".") or p == "__pycache__" for p in parts):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package,) + parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's own modules that `name` imports explicitly."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            # `from pkg import sub` imports the submodule; `from mod import name` the module
            subs = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in known]
            targets = subs if subs and len(subs) == len(node.names) else [module] + subs
        else:
            continue
        out |= {t for t in targets if t in known and t != name}
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def layer(name: str) -> int | None:
    return next((i for i, prefix in enumerate(LAYERS) if name == prefix or name.startswith(prefix + ".")), None)


def test_the_scanner_sees_relative_and_local_imports():
    edges = graph()
    assert "eqdsl.reps.irreps" in edges["eqdsl.ir.irreps_rules"]  # from ..reps.irreps import Irreps
    assert "eqdsl.reps.so3" in edges["eqdsl.reps.family"]  # a local import inside a method
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_layers_only_point_down():
    upward = [f"{a} imports {b}" for a, targets in graph().items() for b in targets
              if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)]
    assert upward == []


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_runtime_imports_no_compiler_stage():
    """Generated modules import backends/; the backends need the groups and the representation numerics,
    never the parser, checker, IR or code generator, nor the benchmarks."""
    allowed = ("eqdsl.backends", "eqdsl.groups", "eqdsl.reps", "eqdsl.extras")
    wrong = [f"{a} imports {b}" for a, targets in graph().items() if _within(a, ("eqdsl.backends",))
             for b in targets if not _within(b, allowed)]
    assert wrong == []


def test_only_eqc_bench_imports_the_benchmarks():
    wrong = [f"{a} imports {b}" for a, targets in graph().items()
             if not _within(a, ("eqdsl.benchmarks", "eqdsl.cli")) for b in targets if _within(b, ("eqdsl.benchmarks",))]
    assert wrong == []
