"""A wheel carries every package: pyproject.toml lists them one by one (grammar/, backends/ and
benchmarks/ install inside eqdsl/), so the list is compared with the folders that hold an __init__.py."""
from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def packages_on_disk() -> set[str]:
    found = set()
    for name, folder in SETUPTOOLS["package-dir"].items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base).parts
            if any(part.startswith(".") or part == "__pycache__" for part in rel):
                continue
            found.add(".".join((name,) + rel))
    # a mapped folder nested in another mapping's folder (none today) would be found twice under two names
    return found


def test_pyproject_lists_every_package_folder():
    assert set(SETUPTOOLS["packages"]) == packages_on_disk()


def test_the_grammar_ships_as_package_data():
    assert (ROOT / SETUPTOOLS["package-dir"]["eqdsl.grammar"] / "eq.lark").is_file()
    assert "*.lark" in SETUPTOOLS["package-data"]["eqdsl.grammar"]
