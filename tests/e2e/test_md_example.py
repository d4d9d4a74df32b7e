"""examples/md_emt.py runs end to end: periodic EMT copper with energies, forces and stress, training,
held-out errors beside baselines, and NVE with the trained model and with EMT from one start."""
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("ase")
pytest.importorskip("vesin")


def test_quick_run_reports_errors_and_drift():
    spec = importlib.util.spec_from_file_location("md_emt", ROOT / "examples" / "md_emt.py")
    md_emt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(md_emt)
    result = md_emt.main(["--quick"])
    for table in ("test", "baseline"):
        assert set(result[table]) == {"energy", "forces", "stress"}
        assert all(math.isfinite(v) and v >= 0 for v in result[table].values())
    assert result["baseline"]["forces"] > 0.1  # rattled cells: EMT's forces are far from zero
    for key in ("drift_model", "drift_emt", "spread_model", "spread_emt"):
        assert math.isfinite(result[key])
    assert result["spread_emt"] > 0  # EMT itself integrated: its total energy moves a little, not at all is a bug


def test_the_script_runs_from_the_command_line():
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "md_emt.py"), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "meV/atom/ps (model)" in done.stdout and "stress (GPa)" in done.stdout
