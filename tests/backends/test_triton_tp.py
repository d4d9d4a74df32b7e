"""Triton tensor product vs the reference: on the CPU through Triton's interpreter, or on CUDA when there is one.

How the interpreter is set up (before triton's first import) is explained in
triton_interpreter.py. Every problem here is tiny (a few rows, multiplicities <= 5).
"""
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from triton_interpreter import (  # noqa: F401  (the fixtures apply by being imported here)
    DEVICE, INTERPRET, ROOT, WRONG_MODE, WRONG_MODE_REASON, I, _cache_root, _interpreter, check_forces_training,
    mixed_descriptor, rel, run_compiler_script,
)

from eqdsl.backends.reference import TensorProduct
from eqdsl.backends.triton import TritonTensorProduct, TritonUnavailable, codegen, emit, kernel_cache
from eqdsl.groups.o3 import O3
from eqdsl.reps import tp
from eqdsl.reps.so3 import wigner_3j

if WRONG_MODE:
    pytest.skip(WRONG_MODE_REASON + " (pytest tests/backends/test_triton_tp.py)", allow_module_level=True)


IN1, IN2 = I("2x0e+2x1o"), I("1x0e+1x1o+1x2e")
DESCS = {
    "uvw": tp.fully_connected(O3, IN1, IN2, I("2x0e+1x1o+2x1e+1x2e")),
    "uvu": tp.channelwise(O3, IN1, IN2),
    "uvuv": tp.full(O3, IN1, IN2),
    # weighted/unweighted uvuv, uvu and uvw mixed, several paths into each output block
    "mixed": mixed_descriptor(),
    # irregular multiplicities: channel tiles of 2 leave remainders, reductions over 5 channels are tiled
    "irregular_uvu": tp.channelwise(O3, I("3x0e+5x1o+2x2e"), I("2x0e+1x1o+1x2e"),
                                    keep=[O3.parse_irrep(s) for s in ("0e", "1o", "2e", "1e")]),
    "irregular_uvw": tp.fully_connected(O3, I("3x0e+5x1o+2x2e"), I("2x0e+1x1o"), I("2x0e+3x1o+1x2e+1x1e")),
    # l up to 6 (and CG tensors up to (6, 4, 6))
    "l6_uvu": tp.channelwise_to(O3, I("2x3o+1x6e"), I("1x0e+1x3o"), I("2x0e+2x6e+1x6e")),
    "l6_uvw": tp.fully_connected(O3, I("1x6e+1x2e"), I("1x4e"), I("1x6e+1x2e")),
}
TOL = {torch.float64: 1e-11, torch.float32: 2e-5}


def make(desc, shared, dtype=torch.float64, block_b=4, block_c=2):
    ref = TensorProduct(desc, shared).to(DEVICE, dtype)
    tri = TritonTensorProduct(desc, shared, block_b=block_b, block_c=block_c).to(DEVICE, dtype)
    tri.load_state_dict(ref.state_dict())
    return ref, tri


def inputs(desc, shared, lead=(7,), dtype=torch.float64, wlead=None):
    kw = dict(dtype=dtype, device=DEVICE, requires_grad=True)
    x1 = torch.randn(*lead, desc.irreps_in1.dim, **kw)
    x2 = torch.randn(*lead, desc.irreps_in2.dim, **kw)
    w = None if shared else torch.randn(*(wlead or lead), desc.weight_numel, **kw)
    return x1, x2, w


def check_against_reference(desc, shared, dtype=torch.float64, lead=(7,), wlead=None, **blocks):
    ref, tri = make(desc, shared, dtype, **blocks)
    x1, x2, w = inputs(desc, shared, lead, dtype, wlead)
    wargs = () if shared else (w,)
    y_ref, y_tri = ref(x1, x2, *wargs), tri(x1, x2, *wargs)
    assert y_tri.shape == y_ref.shape and y_tri.dtype == dtype
    assert torch.isfinite(y_tri).all()
    assert rel(y_tri, y_ref) < TOL[dtype]
    g = torch.randn_like(y_ref)
    wrt_ref = [x1, x2] + ([ref.weight] if shared and ref.weight is not None else [] if shared else [w])
    wrt_tri = [x1, x2] + ([tri.weight] if shared and tri.weight is not None else [] if shared else [w])
    gr = torch.autograd.grad(y_ref, wrt_ref, g)
    gt = torch.autograd.grad(y_tri, wrt_tri, g)
    for name, a, b in zip(("x1", "x2", "weight"), gt, gr):
        assert a.shape == b.shape, name
        assert rel(a, b) < TOL[dtype], (name, rel(a, b))


# -- values and first derivatives ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name,shared", [("uvu", False), ("uvw", False), ("uvw", True), ("uvuv", True),
                                         ("mixed", False), ("mixed", True)])
def test_matches_reference(name, shared, dtype):
    check_against_reference(DESCS[name], shared, dtype)


@pytest.mark.parametrize("name", ["irregular_uvu", "irregular_uvw", "l6_uvu", "l6_uvw"])
def test_irregular_multiplicities_and_high_l(name):
    check_against_reference(DESCS[name], False, lead=(5,))


def test_shared_weights_irregular():
    check_against_reference(DESCS["irregular_uvw"], True, lead=(3,), block_b=2)


@pytest.mark.parametrize("n,block_b", [(1, 4), (5, 2), (9, 4), (3, 8)])
def test_batch_not_multiple_of_block(n, block_b):
    check_against_reference(DESCS["uvu"], False, lead=(n,), block_b=block_b, block_c=4)


def test_broadcast_leading_dims():
    check_against_reference(DESCS["uvu"], False, lead=(2, 3), wlead=(1, 3))
    ref, tri = make(DESCS["uvuv"], True)
    x1 = torch.randn(3, 1, IN1.dim, dtype=torch.float64, device=DEVICE)
    x2 = torch.randn(1, 2, IN2.dim, dtype=torch.float64, device=DEVICE)
    assert rel(tri(x1, x2), ref(x1, x2)) < 1e-12


@pytest.mark.parametrize("name,shared", [("uvu", False), ("uvw", True), ("uvuv", True)])
def test_empty_batch(name, shared):
    desc = DESCS[name]
    ref, tri = make(desc, shared)
    x1, x2, w = inputs(desc, shared, lead=(0,))
    wargs = () if shared else (w,)
    y = tri(x1, x2, *wargs)
    assert y.shape == (0, desc.irreps_out.dim)
    y.sum().backward()
    assert x1.grad.shape == x1.shape and x2.grad.shape == x2.shape
    if shared and tri.weight is not None:
        assert torch.equal(tri.weight.grad, torch.zeros_like(tri.weight))
    if w is not None:
        assert w.grad.shape == w.shape


@pytest.mark.parametrize("name,shared", [("unreached", False), ("mixed", True), ("irregular_uvw", False)])
def test_every_output_element_written(monkeypatch, name, shared):
    """Outputs are allocated with new_empty: poison them with NaN, so any element a kernel does not write
    (including blocks no path reaches, which must come out as zeros) fails the comparison."""
    nan_full = torch.Tensor.new_full
    monkeypatch.setattr(torch.Tensor, "new_empty", lambda self, *size, **kw: nan_full(
        self, size[0] if len(size) == 1 and not isinstance(size[0], int) else size, float("nan"), **kw))
    desc = DESCS.get(name) or tp.build(IN1, IN2, I("2x0e+3x2o+2x1e"),
                                       [(0, 0, 0, "uvu", True), (1, 1, 2, "uvu", True)])
    check_against_reference(desc, shared, lead=(6,))
    if name == "unreached":
        _, tri = make(desc, False)
        y = tri(*inputs(desc, False)[:2], torch.randn(7, desc.weight_numel, dtype=torch.float64, device=DEVICE))
        assert torch.equal(y[:, 2:17], torch.zeros_like(y[:, 2:17]))


@pytest.mark.parametrize("shared", [False, True])
def test_large_descriptors_split_into_several_kernels(monkeypatch, shared):
    """Above MAX_TERMS_PER_KERNEL unrolled products, target blocks go to separate kernels (launched in turn)."""
    monkeypatch.setattr(codegen, "MAX_TERMS_PER_KERNEL", 12)
    desc = DESCS["mixed"]
    mod = kernel_cache.load(codegen.KernelKey(desc, "float64", "shared" if shared else "row", 2))
    assert all(len(mod.KERNELS[f"tp_target_{t}"]) > 1 for t in ("g", "x1", "x2", "w"))
    check_against_reference(desc, shared, lead=(5,))


@pytest.mark.parametrize("name,shared", [("uvw", False), ("uvw", True), ("uvu", False), ("mixed", False)])
def test_blocks_split_by_paths_accumulate_across_kernels(monkeypatch, name, shared):
    """A block whose paths exceed MAX_TERMS_PER_KERNEL is split by paths: the first kernel stores, the later
    ones add to what it stored.  Values, the three gradients and second derivatives against the reference."""
    monkeypatch.setattr(codegen, "MAX_TERMS_PER_KERNEL", 6)
    desc = DESCS[name]
    key = codegen.KernelKey(desc, "float64", "shared" if shared else "row", 2)
    src = codegen.generate(key)
    assert "more paths added to the stored sum" in src and "+= tl.load(T + rows" in src
    # per operation, in launch order: each block is stored by its first kernel, added to by later ones
    pieces = {}
    kernel = None
    for line in src.splitlines():
        m = re.match(r"def (tp_target_\w+?)__(\d+)\(", line)
        if m:
            kernel = (m.group(1), int(m.group(2)))
        m = re.search(r"# ---- ((?:g|x1|x2) block \d+)", line)
        if m and kernel and not kernel[0].endswith("_weighted") and kernel[0] != "tp_target_backward":
            pieces.setdefault((kernel[0], m.group(1)), []).append((kernel[1], "more paths added" in line))
    assert pieces and any(len(p) > 1 for p in pieces.values())
    for p in pieces.values():
        kernels = [k for k, _ in p]
        assert kernels == sorted(set(kernels))            # one piece per kernel, in launch order
        assert [acc for _, acc in p] == [False] + [True] * (len(p) - 1)
    check_against_reference(desc, shared, lead=(5,), block_b=2)
    ref, tri = make(desc, shared, block_b=2)
    x1, x2, w = inputs(desc, shared, lead=(4,))
    for row_tri, row_ref in zip(hessian_probes(tri, x1, x2, w, shared), hessian_probes(ref, x1, x2, w, shared)):
        for a, b in zip(row_tri, row_ref):
            assert rel(a, b) < 1e-11


def test_kernel_size_limit_override(monkeypatch):
    """EQDSL_TRITON_MAX_TERMS replaces the default limit, and is part of the cache key."""
    desc = DESCS["uvw"]
    monkeypatch.delenv("EQDSL_TRITON_MAX_TERMS", raising=False)
    key = codegen.KernelKey(desc, "float64", "row", 2)
    default_digest, n_default = key.digest(), len(kernel_cache.load(key).KERNELS["tp_target_g"])
    monkeypatch.setenv("EQDSL_TRITON_MAX_TERMS", "6")
    assert key.digest() != default_digest and "max_terms 6" in key.canonical()
    assert len(kernel_cache.load(key).KERNELS["tp_target_g"]) > n_default
    assert len(codegen.generate(key).split("more paths added")) > 1
    for bad in ("0", "-3", "many"):
        monkeypatch.setenv("EQDSL_TRITON_MAX_TERMS", bad)
        with pytest.raises(ValueError, match="EQDSL_TRITON_MAX_TERMS"):
            codegen.max_terms()


def test_state_dict_round_trip():
    for shared in (True, False):
        ref = TensorProduct(DESCS["uvw"], shared)
        tri = TritonTensorProduct(DESCS["uvw"], shared)
        assert list(ref.state_dict()) == list(tri.state_dict())
        ref.load_state_dict(tri.state_dict())
        tri.load_state_dict(ref.state_dict())


# -- gradcheck and double backward ---------------------------------------------------------------

@pytest.mark.parametrize("name,shared", [("uvu", False), ("uvw", True), ("mixed", False)])
def test_gradcheck(name, shared):
    desc = DESCS[name]
    _, tri = make(desc, shared, block_b=2)
    x1, x2, w = inputs(desc, shared, lead=(3,))
    if shared:
        f, args = (lambda a, b, ww: torch.func.functional_call(tri, {"weight": ww}, (a, b))), \
            (x1, x2, tri.weight.detach().clone().requires_grad_())
    else:
        f, args = tri, (x1, x2, w)
    assert torch.autograd.gradcheck(f, args, fast_mode=True)


def test_gradgradcheck():
    desc = tp.channelwise(O3, I("2x0e+1x1o"), I("1x1o"))
    _, tri = make(desc, False, block_b=2)
    assert torch.autograd.gradgradcheck(tri, inputs(desc, False, lead=(3,)), fast_mode=True)


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per_row"])
def test_second_derivatives_match_reference(shared):
    """Hessian-vector products through the backward kernels, for every slot.

    The mixed descriptor has unweighted paths, so T is only affine in W: the derivatives of the
    weight gradient must leave those paths out (the weighted-only kernels).
    """
    desc = DESCS["mixed"]
    ref, tri = make(desc, shared)
    x1, x2, w = inputs(desc, shared, lead=(5,))
    for row_tri, row_ref in zip(hessian_probes(tri, x1, x2, w, shared), hessian_probes(ref, x1, x2, w, shared)):
        for a, b in zip(row_tri, row_ref):
            assert rel(a, b) < 1e-11


def hessian_probes(m, x1, x2, w, shared):
    """Per gradient slot of (m(...)^2).sum(): d<probe, gradient>/d(x1, x2, weights), fixed cosine probes."""
    ws = [m.weight] if shared else [w]
    y = m(x1, x2) if shared else m(x1, x2, w)
    g = torch.autograd.grad((y ** 2).sum(), [x1, x2] + ws, create_graph=True)
    probes = [torch.cos(torch.arange(gi.numel(), dtype=gi.dtype, device=DEVICE)).reshape(gi.shape) for gi in g]
    return [torch.autograd.grad((gi * pr).sum(), [x1, x2] + ws, retain_graph=True) for gi, pr in zip(g, probes)]


def test_forces_training_double_backward():
    """Training on forces: F = -dE/dpos, then d|F|^2/d(params) runs derivatives of the backward kernels."""
    desc = tp.channelwise(O3, I("2x0e+1x1o"), I("0e+1o+2e"))
    ref, tri = make(desc, False, block_b=8)
    check_forces_training(ref, tri, lambda m, h, src, sh, w, dst, n: m(h[src], sh, w))


# -- errors: nothing falls back silently ----------------------------------------------------------

def test_cpu_without_interpreter_raises(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    desc = DESCS["uvu"]
    tri = TritonTensorProduct(desc, False)
    x1, x2, w = (torch.randn(3, d) for d in (desc.irreps_in1.dim, desc.irreps_in2.dim, desc.weight_numel))
    with pytest.raises(TritonUnavailable, match="TRITON_INTERPRET"):
        tri(x1, x2, w)


@pytest.mark.skipif(not INTERPRET, reason="checks the interpreter-mode guard")
def test_interpreter_switched_off_after_import_raises(monkeypatch):
    """Compiled kernels cannot be built in a process whose triton was imported for the interpreter."""
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(kernel_cache.TritonModeError, match="first imported"):
        kernel_cache.load(codegen.KernelKey(DESCS["uvu"], "float32", "row"))


def test_argument_errors():
    desc = DESCS["uvu"]
    _, tri = make(desc, False)
    x1, x2, w = inputs(desc, False)
    with pytest.raises(ValueError, match="per-row weights"):
        tri(x1, x2)
    with pytest.raises(TypeError, match="share a dtype"):
        tri(x1, x2.float(), w)
    with pytest.raises(TypeError, match="float32 and float64"):
        tri(x1.half(), x2.half(), w.half())
    _, tri_s = make(desc, True)
    with pytest.raises(ValueError, match="shared"):
        tri_s(x1, x2, w)
    bad = tp.build(IN1, IN2, I("2x0e"), [(0, 0, 0, "uvw", False)])
    with pytest.raises(ValueError, match="need weights"):
        TritonTensorProduct(bad, False)


# -- code generation and caches --------------------------------------------------------------------

def test_only_nonzero_cg_entries_become_code():
    desc = tp.build(I("1x1o"), I("1x1o"), I("1x1e+1x2e"), [(0, 0, 0, "uvu", True), (0, 0, 1, "uvu", True)])
    src = codegen.generate(codegen.KernelKey(desc, "float64", "row", 32))
    fwd = src.split("def tp_target_g__0")[1].split("def tp_target_x1__0")[0]
    for n, l3 in enumerate((1, 2)):
        nnz = int((abs(wigner_3j(1, 1, l3)) > emit.CG_EPS).sum())
        lines = [ln for ln in fwd.splitlines() if ln.strip().startswith(f"acc_b{n}_")]
        # every nonzero entry is one x1 * x2 product, every zero entry is absent
        assert sum(ln.count(f"p{n}_x2_") for ln in lines) == nnz
        assert nnz < 27
    compile(src, "<generated>", "exec")


def test_cache_key_separates_variants():
    keys = [codegen.KernelKey(DESCS["uvw"], dt, wm, bc)
            for dt in ("float32", "float64") for wm in ("row", "shared") for bc in (2, 32)]
    assert len({k.digest() for k in keys}) == len(keys)
    assert codegen.KernelKey(DESCS["uvw"], "float64", "row").digest() == \
        codegen.KernelKey(tp.fully_connected(O3, IN1, IN2, I("2x0e+1x1o+2x1e+1x2e")), "float64", "row").digest()
    with pytest.raises(ValueError):
        codegen.KernelKey(DESCS["uvuv"], "float64", "row")  # no weights to carry


def test_disk_cache_used_by_a_second_process(tmp_path):
    env = dict(os.environ, EQDSL_CACHE=str(tmp_path), TRITON_INTERPRET="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = textwrap.dedent("""
        import torch
        from eqdsl.backends.triton import TritonTensorProduct, kernel_cache
        from eqdsl.groups.o3 import O3
        from eqdsl.reps import tp
        from eqdsl.reps.irreps import Irreps
        I = lambda s: Irreps.parse(s, O3)
        desc = tp.channelwise(O3, I("1x0e+1x1o"), I("1x1o"))
        m = TritonTensorProduct(desc, False, block_b=4)
        y = m(torch.randn(3, 4), torch.randn(3, 3), torch.randn(3, desc.weight_numel))
        print(kernel_cache.STATS["generated"], kernel_cache.STATS["loaded_from_disk"])
    """)
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert runs[0].stdout.split() == ["1", "0"]
    assert runs[1].stdout.split() == ["0", "1"]
    files = list((tmp_path / "triton").glob("tp_*.py"))
    assert len(files) == 1 and "@triton.jit" in files[0].read_text()


def test_kernels_compile_for_sm90_without_a_gpu(tmp_path):
    """The interpreter is lenient (types of loop-carried values, scalar/tensor mixing), so also run the real
    compiler down to an sm_90 cubin: Triton lowers in-process and its wheel ships ptxas, no GPU needed.
    In a subprocess, because this process's triton may be in interpreter mode."""
    script = ("""
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
        from eqdsl.backends.triton import codegen, kernel_cache
        from eqdsl.groups.o3 import O3
        from eqdsl.reps import tp
        from eqdsl.reps.irreps import Irreps
        I = lambda s: Irreps.parse(s, O3)
        in1, in2 = I("2x0e+2x1o"), I("1x0e+1x1o+1x2e")
        mixed = tp.build(in1, in2, I("2x1e+2x1o"), [(1, 1, 0, "uvuv", True), (1, 1, 0, "uvu", False),
                                                    (1, 0, 1, "uvu", True), (0, 1, 1, "uvuv", False),
                                                    (1, 2, 1, "uvw", True)])
        cases = [(mixed, "float64", "row"),
                 (tp.fully_connected(O3, in1, in2, I("2x0e+1x1o+1x2e")), "float32", "shared"),
                 (tp.channelwise(O3, I("3x0e+5x1o"), I("0e+1o")), "float32", "row")]
        n = 0
        for desc, dtype, weights in cases:
            mod = kernel_cache.load(codegen.KernelKey(desc, dtype, weights, 4))
            ptr = "*fp64" if dtype == "float64" else "*fp32"
            names = {fname for ks in mod.KERNELS.values() for fname, _ in ks}
            for fn in (getattr(mod, fname) for fname in sorted(names)):
                assert type(fn).__name__ == "JITFunction", type(fn)
                sig = {a: ptr for a in fn.arg_names if a not in ("N", "BLOCK_B")}
                sig.update({"N": "i32", "BLOCK_B": "constexpr"})
                k = triton.compile(ASTSource(fn, sig, constexprs={"BLOCK_B": 16}), target=GPUTarget("cuda", 90, 32))
                assert len(k.asm["cubin"]) > 0
                n += 1
        print("compiled", n)
    """)
    r = run_compiler_script(tmp_path, script)
    assert r.returncode == 0, r.stderr[-3000:]
    # the fully connected (shared weights) and channelwise cases also have the fused backward and its dx2 sum
    assert r.stdout.split() == ["compiled", "19"]


def test_memory_cache_and_interpret_flag():
    key = codegen.KernelKey(DESCS["uvu"], "float32", "row", 32)
    a, b = kernel_cache.load(key), kernel_cache.load(key)
    assert a is b
    fname, _ = a.KERNELS["tp_target_g"][0]
    assert type(getattr(a, fname)).__name__ == ("InterpretedFunction" if INTERPRET else "JITFunction")
