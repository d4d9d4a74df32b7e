"""examples/train_emt.py trains: its --quick run lowers the loss and beats the zero-force baseline,
in one process and data-parallel under torchrun (2 processes, gloo); on the Triton backend (under
the interpreter) it trains exactly like on the reference."""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("ase")
pytest.importorskip("tqdm")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "train_emt.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("train_emt_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def _metrics(text):
    """The test-set figures the script prints: {energy: (model, baseline), force: (model, baseline)}."""
    out = {}
    for name, unit in (("energy", "meV/atom"), ("force", "meV/A")):
        m = re.search(rf"{name} MAE\s+([\d.]+) {unit}\s+baseline\s+([\d.]+) {unit}", text)
        assert m, f"no `{name} MAE ... baseline ...` line in the output:\n{text}"
        out[name] = (float(m.group(1)), float(m.group(2)))
    return out


@pytest.mark.parametrize("options", [[], ["--spec", str(ROOT / "specs" / "ponita.eq"), "--steps", "60"]],
                         ids=["nequip", "ponita"])
def test_quick_run_trains(capsys, options):
    import torch

    threads = torch.get_num_threads()
    result = _load_script().main(["--quick", "--seed", "0", *options])
    text = capsys.readouterr().out
    assert torch.get_num_threads() == threads  # main() puts the thread count back

    losses = result["losses"]
    assert len(losses) == result["steps"] > 0
    assert all(map(lambda x: x == x and abs(x) != float("inf"), losses))
    assert sum(losses[-5:]) < 0.7 * sum(losses[:5]), losses           # the training loss goes down
    assert result["best_val"]["loss"] < result["first_val"]["loss"]    # and so does the held-out loss

    metrics = _metrics(text)
    assert metrics["force"] == pytest.approx((result["test"]["force_mae"], result["test"]["force_mae_baseline"]),
                                             abs=0.01)
    force, zero_forces = metrics["force"]
    assert force < 0.8 * zero_forces, text
    assert "wall time" in text


def test_quick_run_torchrun_two_processes(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(SCRIPT), "--quick", "--no-progress"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    assert "2 process(es)" in text
    assert text.count("force MAE  ") == 1, text  # only rank 0 prints
    force, zero_forces = _metrics(text)["force"]
    assert force < 0.8 * zero_forces, text
    m = re.search(r"train loss \(running\) ([\d.]+) \(first 5 steps\) -> ([\d.]+)", text)
    assert m and float(m.group(2)) < float(m.group(1)), text


def test_triton_backend_trains_like_the_reference(tmp_path):
    """The same small run on the Triton kernels (Triton's interpreter on the CPU: forward, backward and the
    double backward of the forces) and on the reference: the same losses and test errors up to float32
    rounding.  In subprocesses: TRITON_INTERPRET must be set before the process first imports triton."""
    pytest.importorskip("triton")
    args = ["--layers", "2", "--structures", "5", "--min-atoms", "8", "--max-atoms", "9", "--steps", "2",
            "--batch-size", "1", "--val-fraction", "0.2", "--test-fraction", "0.2", "--no-progress"]
    script = ("import json, sys, importlib.util\n"
              f"spec = importlib.util.spec_from_file_location('train_emt_example', {str(SCRIPT)!r})\n"
              "m = importlib.util.module_from_spec(spec); sys.modules[spec.name] = m; spec.loader.exec_module(m)\n"
              "r = m.main(sys.argv[1:])\n"
              "print('RESULT', json.dumps({'losses': r['losses'], 'test': r['test']}))\n")
    results = {}
    for backend in ("reference", "triton"):
        env = dict(os.environ, OMP_NUM_THREADS="1", EQDSL_CACHE=str(tmp_path / "cache"))
        env.pop("TRITON_INTERPRET", None)
        if backend == "triton":
            env["TRITON_INTERPRET"] = "1"
        proc = subprocess.run([sys.executable, "-c", script, *args, "--backend", backend], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        assert f"tensor products on {backend}" in proc.stdout
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
        results[backend] = json.loads(line[len("RESULT "):])
        kernels = list((tmp_path / "cache" / "triton").glob("tp_*.py"))
        assert bool(kernels) == (backend == "triton")  # the kernels were generated, and only for triton
    ref, tri = results["reference"], results["triton"]
    assert len(ref["losses"]) == len(tri["losses"]) == 2
    assert tri["losses"] == pytest.approx(ref["losses"], rel=1e-4)
    for k in ("energy_mae", "force_mae", "loss"):
        assert tri["test"][k] == pytest.approx(ref["test"][k], rel=1e-3), k
