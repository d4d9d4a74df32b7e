"""Fused message-passing convolution (``TensorProductLayer.conv``, ``backends.triton.fused``) vs the reference.

out[n] = sum_{e: dst[e] == n} TP(x1_nodes[src[e]], x2[e], w[e]): the Triton forward is one fused kernel
(x1 gathered through src, each destination's messages summed over its piece of the edges sorted by dst and
stored once), the backward the fused family's kernels too.  Without a GPU the kernels run in Triton's interpreter, which must be on before triton is first
imported (see triton_interpreter.py for why), so problems are tiny.
"""
import re

import pytest
import torch

from triton_interpreter import (  # noqa: F401  (the fixtures apply by being imported here)
    DEVICE, WRONG_MODE, WRONG_MODE_REASON, I, _cache_root, _interpreter, check_forces_training, mixed_descriptor,
    rel, run_compiler_script,
)

from eqdsl.backends import triton as triton_backend
from eqdsl.backends.reference import graph_ops
from eqdsl.backends.tensor_product import TensorProductLayer
from eqdsl.backends.triton import TritonUnavailable, codegen, fused, kernel_cache
from eqdsl.groups.o3 import O3
from eqdsl.reps import tp

if WRONG_MODE:
    pytest.skip(WRONG_MODE_REASON + " (pytest tests/backends/test_triton_fused.py)", allow_module_level=True)


IN1, IN2 = I("2x0e+1x1o"), I("1x0e+1x1o+1x2e")
DESCS = {
    "uvu": tp.channelwise(O3, IN1, IN2),
    "uvw": tp.fully_connected(O3, IN1, IN2, I("2x0e+1x1o+1x1e")),
    # weighted/unweighted paths mixed (uvuv, uvu, uvw) into shared output blocks
    "mixed": mixed_descriptor(),
}
TOL = {torch.float64: 1e-11, torch.float32: 2e-5}


def make(desc, shared, dtype=torch.float64):
    ref = TensorProductLayer(desc, shared, backend="reference").to(DEVICE, dtype)
    tri = TensorProductLayer(desc, shared, backend="triton").to(DEVICE, dtype)
    tri.load_state_dict(ref.state_dict())
    return ref, tri


def graph(num_nodes, num_edges, src_nodes=None, dst_nodes=None):
    """Random unsorted edges with repeats; src/dst drawn from the given node subsets."""
    src_nodes = torch.arange(num_nodes) if src_nodes is None else torch.tensor(src_nodes)
    dst_nodes = torch.arange(num_nodes) if dst_nodes is None else torch.tensor(dst_nodes)
    src = src_nodes[torch.randint(len(src_nodes), (num_edges,))]
    dst = dst_nodes[torch.randint(len(dst_nodes), (num_edges,))]
    return src.to(DEVICE), dst.to(DEVICE)


def inputs(desc, shared, num_nodes, num_edges, dtype=torch.float64):
    kw = dict(dtype=dtype, device=DEVICE, requires_grad=True)
    x1 = torch.randn(num_nodes, desc.irreps_in1.dim, **kw)
    x2 = torch.randn(num_edges, desc.irreps_in2.dim, **kw)
    w = None if shared or desc.weight_numel == 0 else torch.randn(num_edges, desc.weight_numel, **kw)
    return x1, x2, w


def check(desc, shared, dtype=torch.float64, num_nodes=6, num_edges=21, src=None, dst=None, x1_rows=None):
    """Values and gradients (x1_nodes, x2, weights) of the triton conv against the reference conv."""
    ref, tri = make(desc, shared, dtype)
    if src is None:
        src, dst = graph(num_nodes, num_edges)
    x1, x2, w = inputs(desc, shared, num_nodes if x1_rows is None else x1_rows, len(src), dtype)
    y_ref = ref.conv(x1, src, x2, w, dst, num_nodes)
    y_tri = tri.conv(x1, src, x2, w, dst, num_nodes)
    assert y_tri.shape == y_ref.shape == (num_nodes, desc.irreps_out.dim) and y_tri.dtype == dtype
    assert torch.isfinite(y_tri).all()
    assert rel(y_tri, y_ref) < TOL[dtype]
    g = torch.randn_like(y_ref)
    wrt = lambda m: [x1, x2] + ([m.weight] if shared else [w])  # noqa: E731
    gr = torch.autograd.grad(y_ref, wrt(ref), g)
    gt = torch.autograd.grad(y_tri, wrt(tri), g)
    for name, a, b in zip(("x1_nodes", "x2", "weight"), gt, gr):
        assert a.shape == b.shape, name
        assert rel(a, b) < TOL[dtype], (name, rel(a, b))
    return y_ref, y_tri


# -- values and first derivatives ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name,shared", [("uvu", False), ("uvw", False), ("uvw", True)],
                         ids=["uvu-edge", "uvw-edge", "uvw-shared"])
def test_conv_matches_reference(name, shared, dtype):
    # 21 edges: two row blocks of 16, the second partial; unsorted src/dst with repeats
    check(DESCS[name], shared, dtype)


def test_mixed_weighted_and_unweighted_paths():
    check(DESCS["mixed"], False, num_nodes=4, num_edges=9)


@pytest.mark.parametrize("name,shared", [("uvw", False), ("uvw", True)])
def test_blocks_split_by_paths(monkeypatch, name, shared):
    """Output blocks split by paths across kernels: a later kernel adds its paths to what the earlier stored."""
    monkeypatch.setattr(codegen, "MAX_TERMS_PER_KERNEL", 6)
    key = codegen.KernelKey(DESCS[name], "float64", "shared" if shared else "row", 16, fused=True)
    assert "more paths added to the stored sum" in codegen.generate(key)
    check(DESCS[name], shared, num_nodes=5, num_edges=19)


def test_reference_path_is_exactly_gather_tp_scatter():
    desc = DESCS["uvu"]
    ref, _ = make(desc, False)
    auto = TensorProductLayer(desc, False, backend="auto").to(DEVICE, torch.float64)
    auto.load_state_dict(ref.state_dict())
    src, dst = graph(5, 13)
    x1, x2, w = inputs(desc, False, 5, 13)
    expect = graph_ops.scatter(ref(graph_ops.gather(x1, src), x2, w), dst, 5, "sum")
    assert torch.equal(ref.conv(x1, src, x2, w, dst, 5), expect)
    if DEVICE == "cpu":  # auto on CPU tensors is the reference
        assert torch.equal(auto.conv(x1, src, x2, w, dst, 5), expect)


# -- edge cases ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shared", [False, True], ids=["edge", "shared"])
def test_zero_edges(shared):
    desc = DESCS["uvw"]
    _, tri = make(desc, shared)
    x1, x2, w = inputs(desc, shared, 4, 0)
    src = dst = torch.zeros(0, dtype=torch.int64, device=DEVICE)
    y = tri.conv(x1, src, x2, w, dst, 4)
    assert torch.equal(y, torch.zeros(4, desc.irreps_out.dim, dtype=torch.float64, device=DEVICE))
    y.sum().backward()
    assert torch.equal(x1.grad, torch.zeros_like(x1)) and x2.grad.shape == x2.shape
    wg = tri.weight.grad if shared else w.grad
    assert wg.shape == (tri.weight if shared else w).shape and not wg.any()


def test_nodes_without_incoming_edges_are_zero():
    # destinations only among nodes {1, 4}; sources among {0, 2, 3}; node 5 appears nowhere
    src, dst = graph(6, 11, src_nodes=[0, 2, 3], dst_nodes=[1, 4])
    _, y = check(DESCS["uvu"], False, num_nodes=6, src=src, dst=dst)
    for n in (0, 2, 3, 5):
        assert torch.equal(y[n], torch.zeros_like(y[n]))
    assert y[1].abs().sum() > 0 and y[4].abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_repeated_edges_to_one_destination(dtype):
    """Every edge into node 2, several identical edges: one piece sums them all."""
    src = torch.tensor([0, 1, 1, 1, 3, 0, 2, 2, 1, 3, 3, 0, 1, 1, 2, 0, 3, 3, 1], device=DEVICE)
    dst = torch.full_like(src, 2)
    _, y = check(DESCS["uvw"], False, dtype, num_nodes=4, src=src, dst=dst)
    assert not y[[0, 1, 3]].any()


@pytest.mark.parametrize("num_edges,block_b", [(1, 4), (5, 4), (9, 2), (3, 8)])
def test_edges_not_multiple_of_block(num_edges, block_b):
    desc = DESCS["uvu"]
    ref, tri = make(desc, False)
    src, dst = graph(4, num_edges)
    x1, x2, w = inputs(desc, False, 4, num_edges)
    y_ref = ref.conv(x1, src, x2, w, dst, 4)
    y = fused.conv(tri, x1, src, x2, w, dst, 4, block_b=block_b, block_c=2)
    assert rel(y, y_ref) < 1e-11
    g = torch.randn_like(y)
    for a, b in zip(torch.autograd.grad(y, [x1, x2, w], g), torch.autograd.grad(y_ref, [x1, x2, w], g)):
        assert rel(a, b) < 1e-11


def test_sorted_and_unsorted_edges_agree():
    desc = DESCS["uvu"]
    _, tri = make(desc, False)
    src, dst = graph(5, 12)
    x1, x2, w = inputs(desc, False, 5, 12)
    perm = torch.argsort(dst * 100 + src)  # sorted by (dst, src)
    y = tri.conv(x1, src, x2, w, dst, 5)
    y_sorted = tri.conv(x1, src[perm], x2[perm], w[perm], dst[perm], 5)
    assert rel(y, y_sorted) < 1e-13


def test_either_index_gathers_int32_and_x1_rows_other_than_num_nodes():
    """The API takes arbitrary index tensors: x1 gathered by dst and scattered by src, int32 indices,
    x1 with more rows than the output, and gather/scatter by the same index."""
    desc = DESCS["uvu"]
    src, dst = graph(5, 10)
    check(desc, False, num_nodes=5, src=dst, dst=src)
    check(desc, False, num_nodes=5, src=src.int(), dst=dst.int())
    check(desc, False, num_nodes=3, src=src, dst=dst % 3, x1_rows=5)
    check(desc, False, num_nodes=5, src=dst, dst=dst)


# -- gradcheck and double backward --------------------------------------------------------------

@pytest.mark.parametrize("name,shared", [("uvu", False), ("uvw", True)])
def test_gradcheck(name, shared):
    desc = DESCS[name]
    _, tri = make(desc, shared)
    src = torch.tensor([2, 0, 2, 1], device=DEVICE)
    dst = torch.tensor([1, 1, 0, 2], device=DEVICE)
    x1, x2, w = inputs(desc, shared, 3, 4)
    if shared:  # the functional form, with the shared weight as an argument
        f = lambda a, b, ww: fused.conv_tensor_product(desc, a, src, b, ww, dst, 3, True)  # noqa: E731
        args = (x1, x2, tri.weight.detach().clone().requires_grad_())
    else:
        f, args = (lambda a, b, ww: tri.conv(a, src, b, ww, dst, 3)), (x1, x2, w)
    assert torch.autograd.gradcheck(f, args, fast_mode=True)


def test_gradgradcheck():
    desc = tp.channelwise(O3, I("2x0e+1x1o"), I("1x1o"))
    _, tri = make(desc, False)
    src = torch.tensor([1, 0, 1], device=DEVICE)
    dst = torch.tensor([0, 0, 1], device=DEVICE)
    assert torch.autograd.gradgradcheck(lambda a, b, ww: tri.conv(a, src, b, ww, dst, 2), inputs(desc, False, 2, 3),
                                        fast_mode=True)


def test_forces_training_double_backward():
    """F = -dE/dpos through the fused conv, then d|F|^2/d(node features, weights): derivatives of the backward."""
    desc = tp.channelwise(O3, I("2x0e+1x1o"), I("0e+1o+2e"))
    ref, tri = make(desc, False)
    check_forces_training(ref, tri, lambda m, h, src, sh, w, dst, n: m.conv(h, src, sh, w, dst, n))


@pytest.mark.parametrize("shared", [False, True], ids=["edge", "shared"])
def test_grad_of_weight_gradient_matches_reference(shared):
    """d/d(x1, x2, w) of <probe, dL/dw>: the weight gradient differentiated again, fused vs reference."""
    desc = DESCS["uvw"]
    ref, tri = make(desc, shared)
    src, dst = graph(4, 7)
    x1, x2, w = inputs(desc, shared, 4, 7)
    out = []
    for m in (ref, tri):
        ws = m.weight if shared else w
        y = m.conv(x1, src, x2, None if shared else w, dst, 4)
        (gw,) = torch.autograd.grad((y ** 2).sum(), [ws], create_graph=True)
        probe = torch.cos(torch.arange(gw.numel(), dtype=gw.dtype, device=DEVICE)).reshape(gw.shape)
        out.append(torch.autograd.grad((gw * probe).sum(), [x1, x2, ws]))
    for a, b in zip(out[1], out[0]):
        assert rel(a, b) < 1e-11


# -- the kernel really is the fused one -----------------------------------------------------------

def _kernel_sources(src: str) -> dict:
    """Generated source per kernel function name."""
    parts = re.split(r"\n(?=@triton\.jit)", src)
    out = {}
    for part in parts:
        m = re.search(r"def (\w+)\(", part)
        if m and part.startswith("@triton.jit"):
            out[m.group(1)] = part
    return out


@pytest.mark.parametrize("weights", ["row", "shared"])
def test_fused_kernel_source_gathers_and_sums_pieces(weights):
    """Node rows are read through their index; a target on nodes is summed over a piece of sorted edges and
    stored once into the piece's row: no atomic anywhere in the family."""
    desc = DESCS["uvw"]
    key = codegen.KernelKey(desc, "float32", weights, 16, fused=True)
    source = codegen.generate(key)
    assert "atomic" not in source
    kernels = _kernel_sources(source)
    by_op = {}
    for fname, text in kernels.items():
        by_op.setdefault(fname.split("__")[0], []).append(text)
    backward = by_op.pop("tp_conv_backward", None), by_op.pop("tp_conv_backward_dx2", None)
    fixups = {by_op.pop("tp_conv_fixup_g")[0], by_op.pop("tp_conv_fixup_x1")[0]}
    assert set(by_op) == {"tp_conv_g", "tp_conv_x1", "tp_conv_x2", "tp_conv_w"}
    assert all("for i in range(count):" in f for f in fixups)
    if weights == "row":  # the fused backward: pieces of the source nodes' edges, dx1 stored once per piece
        text = "\n".join(backward[0])
        assert "tl.load(X1 + srows *" in text and "tl.load(G + drows *" in text and "tl.load(X1 + rows" not in text
        assert "rows = tl.load(PERM + pos" in text and "tl.store(DX1 + orow *" in text
        by_op.update({"tp_conv_backward": [], "tp_conv_backward_dx2": []})
    else:
        assert backward == (None, None)
    for op, texts in by_op.items():
        if op.startswith("tp_conv_backward"):
            continue
        text = "\n".join(texts)
        target = op[len("tp_conv_"):]
        # node rows are read through their index, never by edge
        assert "tl.load(X1 + rows" not in text and "tl.load(G + rows" not in text
        if target != "x1":
            assert "tl.load(X1 + srows *" in text and "tl.load(SRC + rows" in text
        if target != "g":
            assert "tl.load(G + drows *" in text and "tl.load(DST + rows" in text
        if target in ("g", "x1"):  # node rows: each piece's edges through PERM, one store into its row
            assert "for e0 in range(lo, hi, BLOCK_B):" in text and "rows = tl.load(PERM + pos" in text
            assert "tl.store(T + orow *" in text and "tl.store(T + rows" not in text
        else:  # x2 and w are per edge
            assert "PERM" not in text and "tl.store(T" in text
    mod = kernel_cache.load(key)
    assert {k for k in mod.KERNELS if not k.endswith("_weighted")} == set(by_op) | {
        "tp_conv_fixup_g", "tp_conv_fixup_x1"}
    assert key.digest() != codegen.KernelKey(desc, "float32", weights, 16).digest()


@pytest.mark.parametrize("name,shared", [("uvw", False), ("uvu", False), ("uvw", True), ("wide", False)])
def test_nodes_split_across_pieces(monkeypatch, name, shared):
    """Nodes with more edges than a piece holds (block_b=2: 16 edges a piece): their pieces go to partial rows
    that the fixup sums; values and first and second derivatives against the reference."""
    launched = []
    launch = fused.launch_kernel
    monkeypatch.setattr(fused, "launch_kernel",
                        lambda k, grid, *a, **m: launched.append(k.fn.__name__) or launch(k, grid, *a, **m))
    # node 0 receives 40 edges (3 pieces), node 1 sends 37 (3 pieces), node 3 neither sends nor receives
    src = torch.cat([torch.randint(0, 6, (40,)), torch.ones(37, dtype=torch.int64), torch.tensor([2, 4, 5])])
    dst = torch.cat([torch.zeros(40, dtype=torch.int64), torch.randint(0, 6, (37,)), torch.tensor([5, 2, 4])])
    dst[dst == 3] = 2
    src[src == 3] = 4
    perm = torch.randperm(len(src))
    src, dst = src[perm].to(DEVICE), dst[perm].to(DEVICE)
    # wide: output rows of 144 columns, which the fixup sums 128 at a time
    desc = tp.channelwise(O3, I("12x1o"), I("0e+1o")) if name == "wide" else DESCS[name]
    ref, tri = make(desc, shared)
    x1, x2, w = inputs(desc, shared, 6, len(src))
    y_ref = ref.conv(x1, src, x2, w, dst, 6)
    y = fused.conv(tri, x1, src, x2, w, dst, 6, block_b=2, block_c=2)
    assert rel(y, y_ref) < 1e-11 and not y[3].any()
    assert "tp_conv_fixup_g" in launched
    wrt = lambda m: [x1, x2] + ([m.weight] if shared else [w])  # noqa: E731
    g = torch.randn_like(y)
    gr = torch.autograd.grad(y_ref, wrt(ref), g, create_graph=True)
    if not shared:  # a first-order backward: the fused backward's pieces of the source nodes, then the fixup
        n = len(launched)
        for a, b in zip(torch.autograd.grad(y, wrt(tri), g, retain_graph=True), gr):
            assert rel(a, b) < 1e-11
        assert any(k.startswith("tp_conv_backward__") for k in launched[n:]) and "tp_conv_fixup_x1" in launched[n:]
    n = len(launched)
    gt = torch.autograd.grad(y, wrt(tri), g, create_graph=True)  # the per-slot operations
    assert "tp_conv_fixup_x1" in launched[n:]
    for a, b in zip(gt, gr):
        assert rel(a, b) < 1e-11
    assert not gt[0][3].any()
    if name == "wide":  # the wide rows are for the fixup's column loop: first derivatives exercise it
        return
    probe = [torch.randn_like(a) for a in gt]
    st = torch.autograd.grad(sum((a * p).sum() for a, p in zip(gt, probe)), [x1, x2])
    sr = torch.autograd.grad(sum((a * p).sum() for a, p in zip(gr, probe)), [x1, x2])
    for a, b in zip(st, sr):
        assert rel(a, b) < 1e-11


def test_conv_runs_only_fused_kernels_at_every_order(monkeypatch):
    """Forward, backward and double backward of the conv launch the tp_conv_* family only: no per-row kernel,
    so no gathered node features or per-edge gradients (a regression to gather + tp + scatter fails)."""
    launched = []
    per_row = triton_backend.per_row._Plan.launch
    conv_launch = fused._ConvPlan.launch
    monkeypatch.setattr(triton_backend.per_row._Plan, "launch",
                        lambda self, target, *a: launched.append(("row", target)) or per_row(self, target, *a))
    monkeypatch.setattr(fused._ConvPlan, "launch",
                        lambda self, target, *a: launched.append(("fused", target)) or conv_launch(self, target, *a))
    monkeypatch.setattr(torch.Tensor, "index_select", lambda *a, **k: pytest.fail("index_select in the conv"))
    desc = DESCS["uvu"]
    _, tri = make(desc, False)
    src, dst = graph(3, 5)
    x1, x2, w = inputs(desc, False, 3, 5)
    y = tri.conv(x1, src, x2, w, dst, 3)
    assert launched == [("fused", "g")]
    grads = torch.autograd.grad((y ** 2).sum(), (x1, x2, w), create_graph=True)
    assert sorted(set(launched[1:])) == [("fused", "w"), ("fused", "x1"), ("fused", "x2")]
    n = len(launched)
    sum((g * g).sum() for g in grads).backward()
    assert ("fused", "g") in launched[n:] and all(kind == "fused" for kind, _ in launched)


# -- errors -------------------------------------------------------------------------------------

def test_argument_errors():
    desc = DESCS["uvu"]
    _, tri = make(desc, False)
    src = torch.tensor([0, 1, 2, 2, 0], device=DEVICE)
    dst = torch.tensor([1, 2, 0, 1, 1], device=DEVICE)
    x1, x2, w = inputs(desc, False, 3, 5)
    with pytest.raises(IndexError, match="src"):
        tri.conv(x1, src + 1, x2, w, dst, 3)
    with pytest.raises(IndexError, match="src"):
        tri.conv(x1, src - 1, x2, w, dst, 3)
    with pytest.raises(IndexError, match="dst"):
        tri.conv(x1, src, x2, w, dst, 2)
    with pytest.raises(TypeError, match="int32/int64"):
        tri.conv(x1, src.double(), x2, w, dst, 3)
    with pytest.raises(ValueError, match="same length"):
        tri.conv(x1, src[:4], x2[:4], w[:4], dst, 3)
    with pytest.raises(ValueError, match="one row per edge"):
        tri.conv(x1, src, x2[:4], w, dst, 3)
    with pytest.raises(ValueError, match="per-edge weights"):
        tri.conv(x1, src, x2, None, dst, 3)
    with pytest.raises(TypeError, match="share a dtype"):
        tri.conv(x1, src, x2.float(), w, dst, 3)
    _, tri_s = make(desc, True)
    with pytest.raises(ValueError, match="shared"):
        tri_s.conv(x1, src, x2, w, dst, 3)


def test_cpu_without_interpreter_raises(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    desc = DESCS["uvu"]
    tri = TensorProductLayer(desc, False, backend="triton")
    src, dst = graph(3, 5)
    x1, x2, w = (torch.randn(n, d) for n, d in ((3, desc.irreps_in1.dim), (5, desc.irreps_in2.dim),
                                                 (5, desc.weight_numel)))
    with pytest.raises(TritonUnavailable, match="TRITON_INTERPRET"):
        tri.conv(x1, src.cpu(), x2, w, dst.cpu(), 3)


def test_fused_kernels_compile_for_sm90_without_a_gpu(tmp_path):
    """The interpreter is lenient; run the real compiler (in a subprocess, not in interpreter mode) down to
    sm_90 cubins for the whole fused family (the piece loops over runtime bounds included), float32 and float64,
    per-edge and shared weights, int64 and int32 indices: no atomic instruction in any kernel."""
    script = ("""
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
        from eqdsl.backends.triton import codegen, kernel_cache
        from eqdsl.groups.o3 import O3
        from eqdsl.reps import tp
        from eqdsl.reps.irreps import Irreps
        I = lambda s: Irreps.parse(s, O3)
        in1, in2 = I("2x0e+1x1o"), I("0e+1o+2e")
        cases = [(tp.channelwise(O3, in1, in2), "float32", "row"),
                 (tp.channelwise(O3, in1, in2), "float64", "row"),
                 (tp.fully_connected(O3, in1, in2, I("2x0e+1x1o")), "float32", "shared")]
        n = 0
        for desc, dtype, weights in cases:
            mod = kernel_cache.load(codegen.KernelKey(desc, dtype, weights, 16, fused=True))
            ptr = "*fp64" if dtype == "float64" else "*fp32"
            names = sorted({f for op, ks in mod.KERNELS.items() for f, _ in ks})
            index = {"SRC": "*i64", "DST": "*i32", "PERM": "*i64", "PIECES": "*i64", "FIXUPS": "*i64"}
            for fname in names:
                fn = getattr(mod, fname)
                sig = {a: index.get(a, ptr) for a in fn.arg_names if a not in ("N", "BLOCK_B")}
                sig.update({"N": "i32", "BLOCK_B": "constexpr"})
                k = triton.compile(ASTSource(fn, sig, constexprs={"BLOCK_B": 16}), target=GPUTarget("cuda", 90, 32))
                ptx = k.asm["ptx"]
                assert "red.global" not in ptx and "atom.global" not in ptx, fname
                assert len(k.asm["cubin"]) > 0
                n += 1
        print("compiled", n)
    """)
    r = run_compiler_script(tmp_path, script)
    assert r.returncode == 0, r.stderr[-3000:]
    # g, x1, x2, w and the two fixups for each of the three cases; the per-edge channelwise ones also the fused
    # backward and its dx2 sum
    assert r.stdout.split() == ["compiled", "26"]
