"""Generated modules pick their tensor-product backend explicitly; Triton gives the reference's numbers.

Triton runs here in its interpreter, which must be switched on before triton is first imported,
so the Triton comparisons run in child processes.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import eqdsl
from eqdsl.testing import random_sample

ROOT = Path(__file__).resolve().parents[2]


def test_unknown_backend_is_rejected():
    cls = eqdsl.compile_file(ROOT / "specs" / "tetris.eq").model_class()
    with pytest.raises(ValueError, match="backend must be one of"):
        cls(backend="cuda")


def test_auto_uses_the_reference_on_cpu_tensors():
    cls = eqdsl.compile_file(ROOT / "specs" / "tetris.eq").model_class()
    model = cls()
    layers = [m for m in model.modules() if type(m).__name__ == "TensorProductLayer"]
    assert layers and not any(m.uses_triton(torch.zeros(1)) for m in layers)
    assert all(m.uses_triton(torch.zeros(1)) for m in cls(backend="triton").modules()
               if type(m).__name__ == "TensorProductLayer")


CHILD = textwrap.dedent("""
    import os, sys
    os.environ["TRITON_INTERPRET"] = "1"
    import numpy as np, torch
    import triton  # noqa: F401  (imported after TRITON_INTERPRET is set)
    import eqdsl
    from eqdsl.backends import triton as tb
    from eqdsl.testing import random_sample
    calls = []
    def counted(module, name):
        original = getattr(module, name)
        def counting(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)
        setattr(module, name, counting)
    counted(tb.per_row, "tensor_product")   # per-edge products
    counted(tb.fused, "conv_tensor_product")  # message passing on the fused kernels
    overrides = {"layers": 2} if "layers" in open(sys.argv[1]).read() else {}
    cls = eqdsl.compile_file(sys.argv[1], **overrides).model_class()
    torch.manual_seed(0)
    ref = cls(backend="reference").double()
    tri = cls(backend="triton").double()
    tri.load_state_dict(ref.state_dict())
    sample = random_sample(cls, np.random.default_rng(0))
    a = ref(**sample.inputs, **sample.kwargs)
    b = tri(**sample.inputs, **sample.kwargs)
    assert calls, "the Triton kernels were not called"
    for k in a:
        err = float((a[k] - b[k]).abs().max())
        assert err < 1e-10, (k, err)
    loss_a = sum(v.pow(2).sum() for v in a.values())
    loss_b = sum(v.pow(2).sum() for v in b.values())
    ga = torch.autograd.grad(loss_a, list(ref.parameters()))
    gb = torch.autograd.grad(loss_b, list(tri.parameters()))
    assert max(float((x - y).abs().max()) for x, y in zip(ga, gb)) < 1e-9
    # a wrong input stops at the module's own check, with its name, before any kernel runs
    launched = len(calls)
    name = next(n for n, kind, *_ in cls.INPUTS if kind != "graph")
    wide = torch.cat([sample.inputs[name], sample.inputs[name][:, :1]], 1)
    try:
        tri(**{**sample.inputs, name: wide}, **sample.kwargs)
        raise AssertionError("a wrong input was accepted")
    except ValueError as e:
        assert str(e).startswith(name + ": expected ["), e
    assert len(calls) == launched
    print("ok", launched, sorted(set(calls)))
""")


@pytest.mark.parametrize("spec", ["tetris", "nequip"])
def test_triton_backend_matches_reference_in_a_generated_model(spec):
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "specs" / f"{spec}.eq")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")
    if spec == "nequip":  # its convolutions are written as scatter_sum(tensor_product(h[src], ...), dst)
        assert "conv" in done.stdout


def test_eqc_check_on_the_triton_backend():
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-m", "eqdsl.cli", "check", "specs/tetris.eq", "--backend", "triton",
                           "--trials", "1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "triton backend" in done.stdout and "equivariant" in done.stdout
