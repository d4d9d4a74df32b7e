"""The fused backward (``backends/triton/backward_codegen.py``): dx1, dx2 and dW in one pass, against the reference.

Channelwise and fully connected descriptors weighted per row with single-channel x2 get ``tp_target_backward`` /
``tp_conv_backward``; a first-order backward through two or more inputs that require gradients runs it,
while second derivatives (``create_graph``) and a single such input keep the per-slot operations.  Checked: values
against the reference in float64 and float32, per row and as a fused convolution, with channel tiles
looped and blocks split by paths across kernels; which kernels each kind of backward launches; which
descriptors get the family.
"""
import pytest
import torch

from triton_interpreter import (  # noqa: F401  (the fixtures apply by being imported here)
    DEVICE, WRONG_MODE, WRONG_MODE_REASON, I, _cache_root, _interpreter, rel,
)

from eqdsl.backends.tensor_product import TensorProductLayer
from eqdsl.backends.triton import TritonTensorProduct, codegen, emit, traffic
from eqdsl.groups.o3 import O3
from eqdsl.reps import tp

if WRONG_MODE:
    pytest.skip(WRONG_MODE_REASON + " (pytest tests/backends/test_triton_backward.py)", allow_module_level=True)

DESC = tp.channelwise(O3, I("5x0e+3x1o+2x2e+1x1e"), I("0e+1o+2e"))
# fully connected with per-row weights and single-channel x2 (DiffDock's): its uvw paths loop over w
UVW = tp.fully_connected(O3, I("3x1o+2x1e+5x0e"), I("0e+1o+2e"), I("2x1o+1x1e+3x0e+2x0o"))
TOL = {torch.float64: 1e-12, torch.float32: 2e-5}


def _inputs(desc, rows, dtype, x1_rows=None):
    kw = dict(dtype=dtype, device=DEVICE, requires_grad=True)
    return (torch.randn(x1_rows or rows, desc.irreps_in1.dim, **kw), torch.randn(rows, desc.irreps_in2.dim, **kw),
            torch.randn(rows, desc.weight_numel, **kw))


def _launched(fn) -> list[str]:
    """The operations whose kernels `fn` launches, in order (recorded, not run: values are not looked at)."""
    with traffic.recorded() as launches:
        fn()
    return list(dict.fromkeys(lc.name.rsplit("__", 1)[0] for lc in launches))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("block_c", [16, 2])
@pytest.mark.parametrize("desc", [DESC, UVW], ids=["uvu", "uvw"])
def test_fused_backward_matches_the_reference_per_row(dtype, block_c, desc):
    ref = TensorProductLayer(desc, False, backend="reference").to(DEVICE, dtype)
    tri = TritonTensorProduct(desc, False, block_c=block_c).to(DEVICE, dtype)
    x1, x2, w = _inputs(desc, 37, dtype)
    g = torch.randn(37, desc.irreps_out.dim, dtype=dtype, device=DEVICE)
    want = torch.autograd.grad(ref(x1, x2, w), (x1, x2, w), g)
    got = torch.autograd.grad(tri(x1, x2, w), (x1, x2, w), g)
    for a, b in zip(want, got):
        assert rel(b, a) < TOL[dtype]
    names = _launched(lambda: torch.autograd.grad(tri(x1, x2, w), (x1, x2, w), g))
    assert names == ["tp_target_g", "tp_target_backward", "tp_target_backward_dx2"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("desc", [DESC, UVW], ids=["uvu", "uvw"])
def test_fused_backward_of_the_convolution_matches_the_reference(dtype, desc):
    ref = TensorProductLayer(desc, False, backend="reference").to(DEVICE, dtype)
    tri = TensorProductLayer(desc, False, backend="triton").to(DEVICE, dtype)
    nodes, edges = 6, 41
    src, dst = torch.randint(nodes, (edges,), device=DEVICE), torch.randint(nodes, (edges,), device=DEVICE)
    x1, x2, w = _inputs(desc, edges, dtype, x1_rows=nodes)
    g = torch.randn(nodes, desc.irreps_out.dim, dtype=dtype, device=DEVICE)
    want = torch.autograd.grad(ref.conv(x1, src, x2, w, dst, nodes), (x1, x2, w), g)
    got = torch.autograd.grad(tri.conv(x1, src, x2, w, dst, nodes), (x1, x2, w), g)
    for a, b in zip(want, got):
        assert rel(b, a) < TOL[dtype]
    names = _launched(lambda: torch.autograd.grad(tri.conv(x1, src, x2, w, dst, nodes), (x1, x2, w), g))
    assert names == ["tp_conv_g", "tp_conv_backward", "tp_conv_backward_dx2"]


def test_blocks_split_by_paths_add_to_what_the_earlier_kernel_stored(monkeypatch):
    monkeypatch.setenv("EQDSL_TRITON_MAX_TERMS", "30")  # 10 products per backward kernel
    desc = tp.channelwise(O3, I("3x1o+2x2e"), I("0e+1o+2e"))
    ref = TensorProductLayer(desc, False, backend="reference").to(DEVICE, torch.float64)
    tri = TritonTensorProduct(desc, False).to(DEVICE, torch.float64)
    source = codegen.generate(codegen.KernelKey(desc, "float64", "row"))
    assert source.count("def tp_target_backward__") > 2 and "added to the dx1 an earlier kernel stored" in source
    x1, x2, w = _inputs(desc, 20, torch.float64)
    g = torch.randn(20, desc.irreps_out.dim, dtype=torch.float64, device=DEVICE)
    for a, b in zip(torch.autograd.grad(ref(x1, x2, w), (x1, x2, w), g),
                    torch.autograd.grad(tri(x1, x2, w), (x1, x2, w), g)):
        assert rel(b, a) < 1e-12


def test_second_derivatives_and_single_gradients_use_the_per_slot_operations():
    tri = TritonTensorProduct(DESC, False).to(DEVICE, torch.float64)
    x1, x2, w = _inputs(DESC, 16, torch.float64)
    g = torch.randn(16, DESC.irreps_out.dim, dtype=torch.float64, device=DEVICE)

    def second():
        grads = torch.autograd.grad(tri(x1, x2, w), (x1, x2, w), g, create_graph=True)
        torch.autograd.grad(grads, (x1, x2, w), [torch.ones_like(t) for t in grads])
    assert "tp_target_backward" not in _launched(second)
    # one input that requires a gradient: its own operation
    one = lambda: torch.autograd.grad(tri(x1.detach(), x2, w.detach()), (x2,), g)  # noqa: E731
    assert _launched(one) == ["tp_target_g", "tp_target_x2"]
    # two of the three: the fused pass
    assert "tp_target_backward" in _launched(lambda: torch.autograd.grad(tri(x1, x2.detach(), w), (x1, w), g))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("desc", [DESC, UVW], ids=["uvu", "uvw"])
def test_fused_backward_with_shared_weights_sums_row_groups(dtype, desc):
    """Shared weights: dW summed over the rows, each program a group of SHARED_W_ROW_BLOCKS row blocks into its
    own partial row (533 rows: 34 blocks of 16, two groups, the second of two blocks, its last partial)."""
    ref = TensorProductLayer(desc, True, backend="reference").to(DEVICE, dtype)
    tri = TritonTensorProduct(desc, True).to(DEVICE, dtype)
    tri.load_state_dict(ref.state_dict())
    n = 16 * (emit.SHARED_W_ROW_BLOCKS + 1) + 5
    x1, x2, _ = _inputs(desc, n, dtype)
    g = torch.randn(n, desc.irreps_out.dim, dtype=dtype, device=DEVICE)
    want = torch.autograd.grad(ref(x1, x2), (x1, x2, ref.weight), g)
    got = torch.autograd.grad(tri(x1, x2), (x1, x2, tri.weight), g)
    for a, b in zip(want, got):
        assert b.shape == a.shape and rel(b, a) < TOL[dtype]
    with traffic.recorded() as launches:
        torch.autograd.grad(tri(x1, x2), (x1, x2, tri.weight), g)
    names = [lc.name.rsplit("__", 1)[0] for lc in launches]
    assert list(dict.fromkeys(names)) == ["tp_target_g", "tp_target_backward", "tp_target_backward_dx2"]
    backward = next(lc for lc in launches if lc.name.startswith("tp_target_backward__"))
    dw = backward.args[list(backward.kernel.arg_names).index("DW")]
    assert dw.shape[0] == 2  # one partial per group of row blocks


def test_the_convolution_with_shared_weights_keeps_the_per_slot_gradients():
    """Its programs own pieces of nodes, which have no row groups to sum dW over (per-slot operations)."""
    src = codegen.generate(codegen.KernelKey(DESC, "float32", "shared", fused=True))
    assert "tp_conv_backward" not in src
    assert "tp_target_backward" in codegen.generate(codegen.KernelKey(DESC, "float32", "shared"))


@pytest.mark.parametrize("desc,weights", [
    (tp.channelwise(O3, I("2x0e+2x1o"), I("2x0e+2x1o")), "row"),  # x2 with two channels
    (tp.build(I("2x0e"), I("1x0e"), I("2x0e"), [(0, 0, 0, "uvuv", True)]), "row"),  # uvuv
    (tp.build(I("2x0e+2x1o"), I("1x0e+1x1o"), I("2x1o"), [(1, 0, 0, "uvu", True), (0, 1, 0, "uvu", False)]), "row"),
])
def test_which_descriptors_get_the_fused_backward(desc, weights):
    src = codegen.generate(codegen.KernelKey(desc, "float32", weights))
    assert "tp_target_backward" not in src and "BACKWARD_COLUMNS" not in src
    for good in (DESC, UVW):
        assert "tp_target_backward" in codegen.generate(codegen.KernelKey(good, "float32", "row"))
