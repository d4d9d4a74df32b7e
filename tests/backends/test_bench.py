"""`eqdsl.benchmarks` / `eqc bench`: the suite as data, the comparison with e3nn, the floor and the CLI (CPU, quick)."""
import json
import subprocess
import sys

import pytest
import torch

from eqdsl.benchmarks import suite
from eqdsl.benchmarks.anchors import e3nn_instructions, transpose_blocks
from eqdsl.benchmarks.impl import Impl
from eqdsl.benchmarks.registry import BUILDERS
from eqdsl.benchmarks.runner import jsonable
from eqdsl.benchmarks.verify import verify

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]

# the suite's problem table as published with its anchor numbers, copied by hand: (mode, in1, in2, out / filter, weights)
SUITE_MD = {
    "nequip-toluene": ("uvu", "64x0o+64x0e+64x1o+64x1e+64x2o+64x2e", "0e+1o+2e", "same as in1", "per edge"),
    "mace-medium": ("uvu", "128x0e+128x1o", "0e+1o+2e+3o", "128x0e+128x1o+128x2e", "per edge"),
    "mace-large": ("uvu", "128x0e+128x1o+128x2e", "0e+1o+2e+3o", "128x0e+128x1o+128x2e+128x3o", "per edge"),
    "uvu-L6": ("uvu", "16x(0e+1o+2e+3o+4e+5o+6e)", "0e+1o+2e+3o+4e+5o+6e", "same as in1", "per edge"),
    "diffdock-L2": ("uvw", "10x1o+10x1e+48x0e+48x0o", "0e+1o+2e", "same as in1", "per edge"),
    "fc-shared-L2": ("uvw", "32x0e+32x1o+32x2e", "0e+1o+2e", "same as in1", "shared"),
}
# the suite's "floor" column (ms at about 3.0 TB/s, batch 50,000): the byte counts must reproduce it
SUITE_FLOOR_MS = {"nequip-toluene": 0.64, "mace-medium": 0.33, "mace-large": 0.83, "uvu-L6": 1.05,
                  "diffdock-L2": 0.50, "fc-shared-L2": 0.04}


def _expand(text):
    """`16x(0e+1o)` -> `16x0e+16x1o`, the suite's shorthand."""
    if "x(" not in text:
        return text
    mul, rest = text.split("x(", 1)
    return "+".join(f"{mul}x{ir}" for ir in rest.rstrip(")").split("+"))


def test_suite_matches_the_published_table():
    assert [p.id for p in suite.SUITE] == list(SUITE_MD)
    for p in suite.SUITE:
        mode, in1, in2, out, weights = SUITE_MD[p.id]
        in1 = _expand(in1)
        assert (p.mode, p.in1, p.in2, p.out, p.shared) == (
            mode, in1, in2, in1 if out == "same as in1" else out, weights == "shared")


def test_floor_hand_computed():
    # mace-medium: 8 uvu paths 0e x {0e,1o,2e} and 1o x {0e,1o,1o,2e,3o} -> {1o,0e,2e,1o,2e}, each writing a 128-channel block
    desc = suite.descriptor(suite.PROBLEMS["mace-medium"])
    d1, d2 = 128 * (1 + 3), 1 + 3 + 5 + 7
    dout = 128 * ((1 + 3 + 5) + (3 + 1 + 5 + 3 + 5))
    weights = 8 * 128
    assert (desc.irreps_in1.dim, desc.irreps_in2.dim, desc.irreps_out.dim, desc.weight_numel) == (d1, d2, dout, weights)
    assert suite.floor_bytes(desc, 50_000, False) == 4 * 50_000 * (512 + 16 + 3328 + 1024) == 976_000_000
    assert suite.floor_ms(976_000_000, 3.0e12) == pytest.approx(0.3253, abs=1e-4)
    # fwd+bwd: the backward reads x1, x2, w, grad_out and writes the three gradients
    assert suite.floor_bytes(desc, 10, False, backward=True) == 4 * 10 * ((512 + 16 + 3328 + 1024)
                                                                         + (2 * 512 + 2 * 16 + 3328 + 2 * 1024))
    # shared weights count once, not per row
    fc = suite.descriptor(suite.PROBLEMS["fc-shared-L2"])
    assert suite.floor_bytes(fc, 100, True) == 4 * (100 * (288 + 9 + 288) + fc.weight_numel)


@pytest.mark.parametrize("pid", list(SUITE_FLOOR_MS))
def test_floor_reproduces_suite_column(pid):
    p = suite.PROBLEMS[pid]
    ms = suite.floor_ms(suite.floor_bytes(suite.descriptor(p), 50_000, p.shared), 3.0e12)
    assert ms == pytest.approx(SUITE_FLOOR_MS[pid], abs=0.006)


def _small(mode, shared=False):
    from eqdsl.groups import O3
    from eqdsl.reps import tp
    from eqdsl.reps.irreps import Irreps

    a, b = Irreps.parse("3x0e+2x1o+2x2e", O3), Irreps.parse("0e+1o+2e", O3)
    if mode == "uvu":  # two blocks from different paths land on the same irreps: order matters
        return tp.describe(O3, a, b, "uvu", keep=[m.ir for m in Irreps.parse("0e+1o+2e", O3)])
    return tp.describe(O3, a, b, "uvw", out=Irreps.parse("2x0e+3x1o+1x2e", O3))


def _inputs(desc, rows, shared=False):
    """Random float32 x1, x2 and weights ([rows, W], or [W] when shared) for a descriptor."""
    return (torch.randn(rows, desc.irreps_in1.dim), torch.randn(rows, desc.irreps_in2.dim),
            torch.randn(*(() if shared else (rows,)), desc.weight_numel))


@pytest.mark.parametrize("mode,shared", [("uvu", False), ("uvw", False), ("uvw", True)])
def test_e3nn_instructions_give_the_reference_numbers(mode, shared):
    """e3nn built from the descriptor's paths (its own path weights) equals the eqdsl reference."""
    o3 = pytest.importorskip("e3nn.o3")
    from eqdsl.backends.reference import TensorProduct

    desc = _small(mode, shared)
    torch.manual_seed(1)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn keeps its CG tables in the default dtype
    try:
        e = o3.TensorProduct(str(desc.irreps_in1), str(desc.irreps_in2), str(desc.irreps_out),
                             e3nn_instructions(desc), shared_weights=shared, internal_weights=False)
    finally:
        torch.set_default_dtype(old)
    assert e.weight_numel == desc.weight_numel
    assert [i.path_weight for i in e.instructions] == pytest.approx([p.path_weight for p in desc.paths], rel=1e-12)
    ref = TensorProduct(desc, shared_weights=shared).double()
    x1 = torch.randn(7, desc.irreps_in1.dim, dtype=torch.float64)
    x2 = torch.randn(7, desc.irreps_in2.dim, dtype=torch.float64)
    w = torch.randn(*(() if shared else (7,)), desc.weight_numel, dtype=torch.float64)
    if shared:
        ref.weight.data.copy_(w)
    expected = ref(x1, x2) if shared else ref(x1, x2, w)
    torch.testing.assert_close(e(x1, x2, w), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode,shared", [("uvu", False), ("uvw", True)])
def test_verify_accepts_e3nn_and_catches_errors(mode, shared):
    """The harness's own check: e3nn passes in float32, a wrong weight layout does not."""
    pytest.importorskip("e3nn")
    desc = _small(mode, shared)
    cpu = torch.device("cpu")
    ref_fn = BUILDERS["eqdsl-reference"](desc, shared, cpu).fn
    x1, x2, w = _inputs(desc, 9, shared)
    impl = BUILDERS["e3nn"](desc, shared, cpu)
    r = verify(impl, ref_fn, x1, x2, w, desc.irreps_out)
    assert r["verified"] and r["check"] == "exact" and r["max_rel_err"] < 1e-5
    impl.to_native = lambda a, b, c: (a, b, c.flip(-1))  # weights in the wrong order
    assert not verify(impl, ref_fn, x1, x2, w, desc.irreps_out)["verified"]


@pytest.mark.parametrize("mode,shared", [("uvu", False), ("uvw", False), ("uvw", True)])
def test_cuequivariance_adapter(mode, shared):
    """Where cuEquivariance is installed: its plain-torch path through the adapter (ir_mul, sorted blocks)."""
    pytest.importorskip("cuequivariance_torch")
    desc = _small(mode, shared)
    cpu = torch.device("cpu")
    ref_fn = BUILDERS["eqdsl-reference"](desc, shared, cpu).fn
    x1, x2, w = _inputs(desc, 6, shared)
    r = verify(BUILDERS["cuequivariance"](desc, shared, cpu), ref_fn, x1, x2, w, desc.irreps_out)
    assert r["verified"] and r["check"] == "exact"


def test_verify_fits_per_block_scales_for_third_party_conventions():
    desc = _small("uvu")
    cpu = torch.device("cpu")
    ref_fn = BUILDERS["eqdsl-reference"](desc, False, cpu).fn
    scales = [(-1.0) ** k * (1 + k / 4) for k in range(len(desc.irreps_out))]
    s = torch.cat([torch.full((b.dim,), c) for b, c in zip(desc.irreps_out, scales)])
    x1, x2, w = _inputs(desc, 5)
    impl = Impl(lambda a, b, c: ref_fn(a, b, c) * s, exact=False)  # another normalization per block
    r = verify(impl, ref_fn, x1, x2, w, desc.irreps_out)
    assert r["verified"] and r["check"] == "per-block scale"
    assert r["scales"] == pytest.approx(scales, rel=1e-5)
    impl.exact = True  # eqdsl's own backends get no such allowance
    assert not verify(impl, ref_fn, x1, x2, w, desc.irreps_out)["verified"]


def test_layout_transpose_roundtrip():
    desc = _small("uvu")
    x = torch.randn(4, desc.irreps_in1.dim)
    y = transpose_blocks(x, desc.irreps_in1, True)
    # block 1 is 2x1o: mul_ir [u, m] -> ir_mul [m, u]
    torch.testing.assert_close(y[:, 3:9], x[:, 3:9].reshape(4, 2, 3).transpose(1, 2).reshape(4, 6))
    torch.testing.assert_close(transpose_blocks(y, desc.irreps_in1, False), x)


def test_cli_smoke(tmp_path):
    pytest.importorskip("e3nn")
    out_json, out_md = tmp_path / "out.json", tmp_path / "out.md"
    cmd = [sys.executable, "-m", "eqdsl.cli", "bench", "--device", "cpu", "--batch", "64", "--problems", "fc-shared-L2",
           "--impls", "eqdsl-reference,e3nn", "--repeat", "2", "--warmup", "1",
           "--json", str(out_json), "--markdown", str(out_md)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "CPU run" in proc.stdout and "not the suite's numbers" in proc.stdout
    report = json.loads(out_json.read_text())
    assert report["meta"]["batch"] == 64 and report["meta"]["device_type"] == "cpu"
    assert report["meta"]["versions"].keys() == {"eqdsl-reference", "e3nn"}
    (entry,) = report["problems"]
    assert entry["id"] == "fc-shared-L2"
    results = {r["impl"]: r for r in entry["results"]}
    assert results.keys() == {"eqdsl-reference", "e3nn"}
    for r in results.values():
        assert r["verified"] is True and "error" not in r
        assert r["fwd_ms"] > 0 and r["fwd_bwd_ms"] > 0 and r["first_fwd_ms"] > 0
        assert r["double_verified"] is True and r["fwd_bwd2_ms"] > 0
        assert r["fwd_bwd_peak_mb"] is None  # tracked on CUDA only
    assert entry["floor_ms"] > 0 and entry["floor_bytes"] == suite.floor_bytes(
        suite.descriptor(suite.PROBLEMS["fc-shared-L2"]), 64, True)
    md = out_md.read_text()
    table = [line for line in md.splitlines() if line.startswith("| fc-shared-L2 |")]
    assert len(table) == 3 and all(line.count("|") == 11 for line in table)  # floor + two implementations
    assert "| fc-shared-L2 | eqdsl-reference | yes (exact" in md and "| fc-shared-L2 | e3nn | yes (exact" in md
    assert "torch " + torch.__version__ in md


def test_verify_catches_wrong_second_derivatives():
    """First derivatives right, second derivatives missing (a backward that autograd cannot see through)."""
    desc = _small("uvu")
    cpu = torch.device("cpu")
    ref_fn = BUILDERS["eqdsl-reference"](desc, False, cpu).fn

    class Opaque(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, c):
            ctx.save_for_backward(a, b, c)
            return ref_fn(a, b, c)

        @staticmethod
        def backward(ctx, g):
            with torch.enable_grad():
                leaves = [t.detach().requires_grad_() for t in ctx.saved_tensors]
                grads = torch.autograd.grad(ref_fn(*leaves), leaves, g.detach())
            return tuple(x.detach() for x in grads)

    x1, x2, w = _inputs(desc, 5)
    good = verify(Impl(ref_fn), ref_fn, x1, x2, w, desc.irreps_out, double=True)
    assert good["verified"] and good["double_verified"]
    bad = verify(Impl(Opaque.apply), ref_fn, x1, x2, w, desc.irreps_out, double=True)
    assert bad["verified"] and ("double_error" in bad or not bad["double_verified"])


def test_cli_double_and_tuning_options(tmp_path):
    from eqdsl.cli import main

    out = tmp_path / "r.json"
    assert main(["bench", "--device", "cpu", "--batch", "16", "--problems", "mace-medium", "--impls", "eqdsl-reference",
                 "--repeat", "1", "--warmup", "0", "--no-double", "--tune-candidates", "3", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    (r,) = report["problems"][0]["results"]
    assert "fwd_bwd2_ms" not in r and "double_verified" not in r and r["verified"]
    assert report["meta"]["double_backward"] is False and report["meta"]["check_rows"] == 16  # the whole batch
    assert any("first 3 autotuning candidates" in n for n in report["meta"]["notes"])
    assert main(["bench", "--device", "cpu", "--batch", "40", "--problems", "fc-shared-L2", "--impls", "eqdsl-reference",
                 "--repeat", "1", "--warmup", "0", "--check-rows", "0", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["meta"]["check_rows"] == 40 and report["problems"][0]["results"][0]["verified"]
    with pytest.raises(SystemExit, match="check-rows"):
        main(["bench", "--device", "cpu", "--problems", "fc-shared-L2", "--check-rows", "-2"])
    with pytest.raises(SystemExit, match="tune-candidates"):
        main(["bench", "--device", "cpu", "--batch", "16", "--problems", "mace-medium", "--impls", "eqdsl-reference",
              "--tune-candidates", "-1"])


@pytest.mark.parametrize("k,tune,n", [(0, False, None), (2, "auto", 2), (None, "auto", None)])
def test_triton_builder_limits_the_candidates(k, tune, n):
    pytest.importorskip("triton")
    from eqdsl.backends.triton import autotune
    impl = BUILDERS["eqdsl-triton"](suite.descriptor(suite.PROBLEMS["fc-shared-L2"]), False, torch.device("cpu"),
                                          tune_candidates=k)
    mod = impl.fn
    assert mod.tune == tune
    assert mod.tune_candidates == (autotune.CANDIDATES if n is None else autotune.CANDIDATES[:n])


def test_cli_rejects_unknown_names():
    from eqdsl.cli import main

    with pytest.raises(SystemExit, match="unknown problem"):
        main(["bench", "--device", "cpu", "--problems", "nope"])
    with pytest.raises(SystemExit, match="unknown implementation"):
        main(["bench", "--device", "cpu", "--impls", "e3nn,nope"])


def test_triton_rows_report_their_launch_configuration():
    """eqdsl-triton is built as the autotuning module; its report reaches the results (defaults on the CPU)."""
    impl = BUILDERS["eqdsl-triton"](suite.descriptor(suite.PROBLEMS["fc-shared-L2"]), True, torch.device("cpu"))
    assert impl.report is not None
    report = jsonable(impl.report())
    assert report["source"] in ("default", "explicit", "tuned", "disk", "memory")
    assert report["config"]["block_b"] >= 1


def test_the_suite_is_data_without_torch_or_numpy():
    """Tools that only list or describe the problems (inspect_kernels) import the suite and nothing heavy."""
    probe = ("import sys\nfrom eqdsl.benchmarks import suite\nassert len(suite.SUITE) == 6\n"
             "print(' '.join(m for m in ('torch', 'numpy', 'triton') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
