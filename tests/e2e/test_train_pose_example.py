"""examples/train_pose.py runs and prints the three models' geodesic errors; the equivariant 6D output is
already the most accurate after a few steps (it only has to learn the template's own orientation)."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "train_pose.py"), "--quick"], cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=600).stdout
    rows = {m[1].strip(): float(m[2]) for m in re.finditer(r"^(.+?)\s+\d+\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+[\d.]+$", out, re.M)}
    assert len(rows) == 3, out
    equivariant = rows["equivariant 6D (specs/pose_6d.eq)"]
    assert equivariant < min(v for k, v in rows.items() if "baseline" in k), out
    assert all(0.0 <= v <= 180.0 for v in rows.values())
