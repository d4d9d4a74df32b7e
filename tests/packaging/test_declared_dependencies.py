"""Every third-party package the code imports is declared in pyproject.toml, where a fresh install gets it.

A static scan of the import statements (module level and inside functions):
- eqdsl/ and backends/ (and the benchmarks package) may import at module level only what `pip install eqdsl`
  installs (its dependencies); anything else is imported inside a function, declared in an extra, and listed in
  eqdsl/extras.py under that extra, so a missing one is reported as one line naming what to install;
- tests/ and examples/ import only what `pip install -e ".[test]"` installs.
"""
from __future__ import annotations

import ast
import re
import sys
from functools import lru_cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from eqdsl.extras import OPTIONAL

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
FIRST_PARTY = {"eqdsl", "backends", "grammar", "benchmarks", "standin_cuda", "triton_interpreter", "conftest",
               "comparison_structures"}


def _dist_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


CORE = {_dist_name(r) for r in PROJECT["dependencies"]}
EXTRAS = {extra: {_dist_name(r) for r in reqs} for extra, reqs in PROJECT["optional-dependencies"].items()}


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(top-level module, line, at module level) for every absolute import in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []

    def visit(node, top_level: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((a.name.partition(".")[0], child.lineno, top_level) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module.partition(".")[0], child.lineno, top_level))
            inside = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, top_level and not inside)

    visit(tree, True)
    return found


@lru_cache(maxsize=None)
def _installed() -> dict:
    return packages_distributions()


def distribution(module: str) -> str | None:
    """The distribution that installs an import name (None for the standard library and the project's own)."""
    if module in sys.stdlib_module_names or module in FIRST_PARTY:
        return None
    if module in OPTIONAL:
        return OPTIONAL[module][0]
    installed = _installed().get(module)
    return installed[0].lower().replace("_", "-") if installed else f"<unknown: {module}>"


def undeclared(paths, allowed: set[str], top_level_allowed: set[str]) -> list[str]:
    problems = []
    for path in paths:
        for module, line, top_level in imports(path):
            dist = distribution(module)
            where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}"
            if dist is None:
                continue
            if dist not in allowed:
                problems.append(f"{where}: imports {module} ({dist}), which pyproject.toml does not declare here")
            elif top_level and dist not in top_level_allowed:
                problems.append(f"{where}: imports {module} ({dist}) at module level, but only an extra declares it")
    return problems


def _package_files():
    dirs = [ROOT / "eqdsl", ROOT / "backends"]
    if (ROOT / "benchmarks" / "__init__.py").exists():
        dirs.append(ROOT / "benchmarks")
    return sorted(p for d in dirs for p in d.rglob("*.py"))


def test_the_package_imports_only_declared_packages():
    every_extra = set().union(*EXTRAS.values())
    assert undeclared(_package_files(), CORE | every_extra, CORE) == []


def test_tests_and_examples_import_only_what_the_test_extra_installs():
    files = sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "examples").rglob("*.py"))
    assert undeclared(files, CORE | EXTRAS["test"], CORE | EXTRAS["test"]) == []


def test_every_optional_package_names_an_extra_that_installs_it():
    for module, (dist, extra) in OPTIONAL.items():
        if extra is None:
            assert dist in CORE, f"{module}: eqdsl/extras.py calls {dist} a dependency; pyproject.toml does not"
        else:
            assert dist in EXTRAS.get(extra, ()), f"{module}: eqdsl/extras.py names extra `{extra}`, which lacks {dist}"


def test_every_extra_only_package_the_package_imports_has_a_one_line_error():
    for path in _package_files():
        for module, line, _ in imports(path):
            dist = distribution(module)
            if dist is not None and dist not in CORE:
                assert module in OPTIONAL, f"{path.relative_to(ROOT)}:{line}: {module} has no entry in eqdsl/extras.py"


def test_the_scan_finds_an_undeclared_and_a_module_level_optional_import(tmp_path):
    bad = tmp_path / "mod.py"
    bad.write_text("import numpy\nimport triton\n\ndef f():\n    import yaml_not_a_dependency\n    from ase import Atoms\n")
    problems = undeclared([bad], CORE | set().union(*EXTRAS.values()), CORE)
    assert any("triton" in p and "module level" in p for p in problems)
    assert any("yaml_not_a_dependency" in p for p in problems)
    assert not any("numpy" in p or "ase" in p for p in problems)
