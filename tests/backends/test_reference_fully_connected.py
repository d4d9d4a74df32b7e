"""The fully connected plan (backends/reference/fully_connected.py) against the per-path evaluation: same
values and gradients (x1, x2, the shared weights) in float64 for random uvw descriptors with shared
weights (several paths into one output block, unreached output blocks, output multiplicities of
their own), in one chunk of rows or many, as a convolution against gather -> product -> scatter, and
twice differentiable."""
import warnings

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdsl.backends.reference import TensorProduct, channelwise, fully_connected
from eqdsl.backends.reference.graph_ops import gather, scatter
from eqdsl.groups.o3 import O3, O3Irrep
from eqdsl.reps import tp
from eqdsl.reps.irreps import Irreps, MulIr

IRREPS = [O3Irrep(l, p) for l in range(3) for p in (1, -1)]


@st.composite
def uvw_descriptors(draw):
    u = draw(st.integers(1, 4))
    in1 = Irreps(tuple(MulIr(u, ir) for ir in draw(st.lists(st.sampled_from(IRREPS), min_size=1, max_size=3))))
    in2 = Irreps(tuple(MulIr(1, ir) for ir in draw(st.lists(st.sampled_from(IRREPS), min_size=1, max_size=3))))
    reached = O3.product(in1[0].ir, in2[0].ir)[0]
    outs = draw(st.permutations([reached] + draw(st.lists(st.sampled_from(IRREPS), max_size=3))))
    out = Irreps(tuple(MulIr(draw(st.integers(1, 3)), ir) for ir in outs))
    return tp.fully_connected(O3, in1, in2, out)


def module(desc, seed=0):
    torch.manual_seed(seed)
    return TensorProduct(desc, shared_weights=True).double()


def rows_of(desc, n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, desc.irreps_in1.dim, dtype=torch.float64, generator=g, requires_grad=True),
            torch.randn(n, desc.irreps_in2.dim, dtype=torch.float64, generator=g, requires_grad=True))


def grads(y, tensors, seed=2):
    g = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad(y, tensors, g, allow_unused=True, materialize_grads=True)


@settings(max_examples=50, deadline=None)
@given(desc=uvw_descriptors(), rows=st.integers(0, 9), chunk=st.sampled_from([None, 64, 600]))
def test_the_plan_equals_the_per_path_evaluation(desc, rows, chunk):
    m = module(desc)
    assert isinstance(m.grouped, fully_connected.FullyConnectedPlan)
    x1, x2 = rows_of(desc, rows)
    old = channelwise.CHUNK_BYTES
    try:
        if chunk is not None:  # a few rows per chunk: several chunks, the last one short
            channelwise.CHUNK_BYTES = chunk
        y = m(x1, x2)
    finally:
        channelwise.CHUNK_BYTES = old
    ref = m.per_path(x1, x2, m.weight)
    assert y.shape == ref.shape == (rows, desc.irreps_out.dim)
    assert torch.allclose(y, ref, rtol=1e-12, atol=1e-12)
    if rows:
        for a, b in zip(grads(y, [x1, x2, m.weight]), grads(ref, [x1, x2, m.weight])):
            assert torch.allclose(a, b, rtol=1e-11, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(desc=uvw_descriptors(), edges=st.integers(0, 12), nodes=st.integers(1, 5), chunk=st.sampled_from([None, 64]))
def test_the_convolution_equals_gather_product_scatter(desc, edges, nodes, chunk):
    m = module(desc)
    g = torch.Generator().manual_seed(3)
    x1 = torch.randn(nodes, desc.irreps_in1.dim, dtype=torch.float64, generator=g, requires_grad=True)
    _, x2 = rows_of(desc, edges)
    src, dst = torch.randint(0, nodes, (edges,), generator=g), torch.randint(0, nodes, (edges,), generator=g)
    old = channelwise.CHUNK_BYTES
    try:
        if chunk is not None:
            channelwise.CHUNK_BYTES = chunk
        y = m.conv(x1, src, x2, None, dst, nodes)
    finally:
        channelwise.CHUNK_BYTES = old
    ref = scatter(m.per_path(gather(x1, src), x2, m.weight), dst, nodes, "sum")
    assert torch.allclose(y, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads(y, [x1, x2, m.weight]), grads(ref, [x1, x2, m.weight])):
        assert torch.allclose(a, b, rtol=1e-11, atol=1e-12)


def test_gradcheck_and_gradgradcheck():
    desc = tp.fully_connected(O3, Irreps.parse("2x0e+2x1o", O3), Irreps.parse("0e+1o", O3), Irreps.parse("3x0e+1x1o", O3))
    m = module(desc)
    x1, x2 = rows_of(desc, 4)
    w = m.weight.detach().clone().requires_grad_(True)

    def f(x1, x2, w):
        return m.grouped.forward(x1, x2, w, m._grouped_g(torch.float64))
    assert torch.autograd.gradcheck(f, (x1, x2, w))
    assert torch.autograd.gradgradcheck(f, (x1, x2, w))


def test_which_descriptors_take_the_plan():
    in1, in2, out = Irreps.parse("2x0e+2x1o", O3), Irreps.parse("0e+1o", O3), Irreps.parse("3x0e+1x1o", O3)
    desc = tp.fully_connected(O3, in1, in2, out)
    assert fully_connected.plan(desc, True) is not None
    assert fully_connected.plan(desc, False) is None  # per-row weights: path by path
    assert fully_connected.plan(tp.fully_connected(O3, Irreps.parse("2x0e+3x1o", O3), in2, out), True) is None
    assert fully_connected.plan(tp.fully_connected(O3, in1, Irreps.parse("2x0e+1o", O3), out), True) is None
    assert fully_connected.plan(tp.channelwise(O3, in1, in2), True) is None  # uvu: the channelwise plan
    assert TensorProduct(tp.fully_connected(O3, in1, in2, out), shared_weights=False).grouped is None


def test_traced_and_compiled_in_one_piece():
    """Under tracing the plan runs unchunked (one graph for any number of rows): jit.trace, torch.export and
    torch.compile(fullgraph) give the eager numbers on another row count than the traced one."""
    desc = tp.fully_connected(O3, Irreps.parse("3x0e+3x1o", O3), Irreps.parse("0e+1o", O3), Irreps.parse("2x0e+2x1o", O3))
    m = module(desc)
    a, b = (t.detach() for t in rows_of(desc, 7))
    x1, x2 = (t.detach() for t in rows_of(desc, 5, seed=4))
    eager = m(x1, x2)
    with warnings.catch_warnings():  # the flat-input shortcut is a constant of the trace
        warnings.simplefilter("ignore")  # and torch.jit.trace is deprecated (the generated modules still support it)
        traced = torch.jit.trace(m, (a, b))
    assert torch.allclose(traced(x1, x2), eager, rtol=1e-12, atol=1e-12)
    compiled = torch.compile(m, fullgraph=True, backend="aot_eager", dynamic=True)
    assert torch.allclose(compiled(x1, x2), eager, rtol=1e-12, atol=1e-12)
    rows = torch.export.Dim("rows", min=2)
    exported = torch.export.export(m, (a, b), dynamic_shapes=({0: rows}, {0: rows}))
    assert torch.allclose(exported.module()(x1, x2), eager, rtol=1e-12, atol=1e-12)
