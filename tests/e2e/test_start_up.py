"""What compiling a spec imports: an O3 spec needs neither numpy, scipy, torch nor networkx (start-up time
of `eqc compile`); a matrix-group spec loads numpy and its numerical rules only then."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys
import eqdsl
eqdsl.compile_file(sys.argv[1])
print(" ".join(m for m in ("numpy", "scipy", "torch", "networkx") if m in sys.modules))
"""


def _loaded(spec: str) -> set:
    done = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "specs" / spec)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize("spec", ["nequip.eq", "tetris.eq"])
def test_o3_specs_compile_without_numerical_libraries(spec):
    assert _loaded(spec) == set()


def test_matrix_group_specs_load_numpy():
    assert "numpy" in _loaded("galaxy_d4.eq")
