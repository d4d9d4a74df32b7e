"""examples/train_o5.py runs: the compiled O(5) model's predictions are unchanged on rotated and
reflected test inputs, and it learns (test MSE below the predict-the-mean baseline)."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "train_o5.py"), "--quick"], cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=600).stdout
    mean_mse = float(re.search(r"predicting the mean: ([\d.]+)", out)[1])
    row = re.search(r"eqdsl O\(5\) spec\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out)
    assert row, out
    mse, moved = float(row[3]), float(row[4])
    assert mse < mean_mse
    assert abs(mse - moved) <= 1e-3 * mse + 1e-4  # invariant: same error on O(5)-moved inputs
    assert "MLP baseline" in out
