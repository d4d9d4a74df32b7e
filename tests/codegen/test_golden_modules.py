"""The generated module of three shipped specs, byte for byte (tests/golden/generated/*.py).

A change of the code generator shows up here as a diff of the code users read. After an intended change,
regenerate the files and review the diff:

    python tests/codegen/test_golden_modules.py --write
"""
import os
import sys
from pathlib import Path

import pytest

from eqdsl.codegen import generate_source
from eqdsl.compiler import check_file

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "generated"
SPECS = ["nequip", "tetris", "deepsets"]  # message passing over O3, a small O3 model, a matrix group (S8)


def generated(name: str) -> str:
    cwd = os.getcwd()
    os.chdir(ROOT)  # the header names the spec by its path relative to where eqc runs
    try:
        result = check_file(f"specs/{name}.eq")
    finally:
        os.chdir(cwd)
    result.raise_for_errors()
    return generate_source(result)


@pytest.mark.parametrize("name", SPECS)
def test_generated_module_matches_its_golden_file(name):
    golden = GOLDEN / f"{name}.py"
    assert golden.is_file(), f"missing {golden.relative_to(ROOT)}: python {Path(__file__).relative_to(ROOT)} --write"
    assert generated(name) == golden.read_text(encoding="utf-8"), (
        f"the module generated from specs/{name}.eq differs from {golden.relative_to(ROOT)}; if intended, "
        f"regenerate with: python {Path(__file__).relative_to(ROOT)} --write")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: python {Path(__file__).relative_to(ROOT)} --write")
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name in SPECS:
        (GOLDEN / f"{name}.py").write_text(generated(name), encoding="utf-8")
        print(f"wrote {(GOLDEN / f'{name}.py').relative_to(ROOT)}")
