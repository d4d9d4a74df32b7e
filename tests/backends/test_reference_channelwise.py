"""The channelwise plan (backends/reference/channelwise.py) against the per-path evaluation: same
values and gradients in float64 for random uvu descriptors (weighted, unweighted and mixed paths,
repeated and unreached output blocks, shared and per-row weights), in one chunk of rows or many,
and as a convolution against gather -> product -> scatter."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdsl.backends.reference import TensorProduct, channelwise
from eqdsl.backends.reference.graph_ops import gather, scatter
from eqdsl.groups.o3 import O3, SO3, O3Irrep
from eqdsl.reps import tp
from eqdsl.reps.irreps import Irreps, MulIr

IRREPS = [O3Irrep(l, p) for l in range(4) for p in (1, -1)]


@st.composite
def uvu_descriptors(draw):
    u = draw(st.integers(1, 4))
    in1 = Irreps(tuple(MulIr(u, ir) for ir in draw(st.lists(st.sampled_from(IRREPS), min_size=1, max_size=3))))
    in2 = Irreps(tuple(MulIr(1, ir) for ir in draw(st.lists(st.sampled_from(IRREPS), min_size=1, max_size=3))))
    reached = O3.product(in1[0].ir, in2[0].ir)[0]  # one output block some path writes, at least
    outs = draw(st.permutations([reached] + draw(st.lists(st.sampled_from(IRREPS), max_size=4))))
    extra = draw(st.sampled_from([(), (MulIr(u + 1, IRREPS[0]),)]))  # a block no uvu path can write
    out = Irreps(tuple(MulIr(u, ir) for ir in outs) + extra)
    raw = [(i1, i2, io, "uvu", draw(st.booleans()))
           for i1, a in enumerate(in1) for i2, b in enumerate(in2) for io, c in enumerate(out)
           if c.ir in O3.product(a.ir, b.ir) and a.mul == c.mul]
    return tp.build(in1, in2, out, raw)


def both(desc, shared, seed=0):
    torch.manual_seed(seed)
    m = TensorProduct(desc, shared_weights=shared).double()
    return m


def inputs(desc, shared, rows, seed=1):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(rows, desc.irreps_in1.dim, dtype=torch.float64, generator=g, requires_grad=True)
    x2 = torch.randn(rows, desc.irreps_in2.dim, dtype=torch.float64, generator=g, requires_grad=True)
    w = None
    if not shared and desc.weight_numel:
        w = torch.randn(rows, desc.weight_numel, dtype=torch.float64, generator=g, requires_grad=True)
    return x1, x2, w


def per_path(m, x1, x2, w):
    return m.per_path(x1, x2, m.weight if m.shared_weights else w)


def grads(y, tensors, seed=2):
    g = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(seed))
    tensors = [t for t in tensors if t is not None and t.requires_grad]
    return torch.autograd.grad(y, tensors, g, allow_unused=True)


@settings(max_examples=60, deadline=None)
@given(desc=uvu_descriptors(), shared=st.booleans(), rows=st.integers(0, 9), chunk=st.sampled_from([None, 64, 600]))
def test_the_plan_equals_the_per_path_evaluation(desc, shared, rows, chunk):
    m = both(desc, shared)
    assert m.grouped is not None
    x1, x2, w = inputs(desc, shared, rows)
    old = channelwise.CHUNK_BYTES
    try:
        if chunk is not None:  # a few rows per chunk: several chunks, the last one short
            channelwise.CHUNK_BYTES = chunk
        y = m(x1, x2) if shared else m(x1, x2, w)
    finally:
        channelwise.CHUNK_BYTES = old
    ref = per_path(m, x1, x2, w)
    assert y.shape == ref.shape == (rows, desc.irreps_out.dim)
    assert torch.allclose(y, ref, rtol=1e-12, atol=1e-12)
    if rows:
        tensors = [x1, x2, w] + ([m.weight] if shared and m.weight is not None else [])
        for a, b in zip(grads(y, tensors), grads(ref, tensors)):
            assert (a is None and b is None) or torch.allclose(a, b, rtol=1e-11, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(desc=uvu_descriptors(), shared=st.booleans(), edges=st.integers(0, 12), nodes=st.integers(1, 5),
       chunk=st.sampled_from([None, 64]))
def test_the_convolution_equals_gather_product_scatter(desc, shared, edges, nodes, chunk):
    m = both(desc, shared)
    g = torch.Generator().manual_seed(3)
    x1 = torch.randn(nodes, desc.irreps_in1.dim, dtype=torch.float64, generator=g, requires_grad=True)
    _, x2, w = inputs(desc, shared, edges)
    src, dst = torch.randint(0, nodes, (edges,), generator=g), torch.randint(0, nodes, (edges,), generator=g)
    old = channelwise.CHUNK_BYTES
    try:
        if chunk is not None:
            channelwise.CHUNK_BYTES = chunk
        y = m.conv(x1, src, x2, None if shared else w, dst, nodes)
    finally:
        channelwise.CHUNK_BYTES = old
    ref = scatter(per_path(m, gather(x1, src), x2, w), dst, nodes, "sum")
    assert torch.allclose(y, ref, rtol=1e-12, atol=1e-12)
    tensors = [x1, x2, w]
    for a, b in zip(grads(y, tensors), grads(ref, tensors)):
        assert (a is None and b is None) or torch.allclose(a, b, rtol=1e-11, atol=1e-12)


def nequip_like(group=O3):
    sfx = (lambda s: s) if group is O3 else (lambda s: s.replace("e", "").replace("o", ""))
    return tp.channelwise(group, Irreps.parse(sfx("2x0e+2x1o"), group), Irreps.parse(sfx("0e+1o"), group))


@pytest.mark.parametrize("group", [O3, SO3])
def test_gradcheck_and_second_derivatives_in_chunks(group):
    desc = nequip_like(group)
    m = both(desc, shared=False)
    assert m.grouped is not None and len(m.grouped.bands) >= 1
    x1, x2, w = inputs(desc, False, 3)
    old = channelwise.CHUNK_BYTES
    try:
        channelwise.CHUNK_BYTES = 200  # a few rows per chunk
        assert m.grouped.chunk_rows(torch.float64) < 3
        assert torch.autograd.gradcheck(m, (x1, x2, w))
        assert torch.autograd.gradgradcheck(m, (x1, x2, w))
        src, dst = torch.tensor([0, 1, 1]), torch.tensor([1, 0, 0])
        nodes = x1[:2].detach().requires_grad_(True)
        assert torch.autograd.gradcheck(lambda a, b, c: m.conv(a, src, b, c, dst, 2), (nodes, x2, w))
        assert torch.autograd.gradgradcheck(lambda a, b, c: m.conv(a, src, b, c, dst, 2), (nodes, x2, w))
    finally:
        channelwise.CHUNK_BYTES = old


def test_descriptors_of_other_forms_keep_the_per_path_evaluation():
    in1, in2 = Irreps.parse("2x0e+2x1o", O3), Irreps.parse("0e+1o", O3)
    assert channelwise.plan(tp.channelwise(O3, in1, in2)) is not None
    assert channelwise.plan(tp.fully_connected(O3, in1, in2, Irreps.parse("2x0e+2x1o", O3))) is None  # uvw
    assert channelwise.plan(tp.channelwise(O3, in1, Irreps.parse("2x0e+1o", O3))) is None  # x2 of mul 2
    assert channelwise.plan(tp.channelwise(O3, Irreps.parse("2x0e+3x1o", O3), in2)) is None  # two U
    assert channelwise.plan(tp.build(in1, in2, Irreps.parse("2x2e", O3), [])) is None  # no path


def test_output_blocks_share_a_product_while_their_components_fit_half_the_channels():
    desc = tp.channelwise(O3, Irreps.parse("8x0e+8x1o", O3), Irreps.parse("0e+1o+2e", O3))
    plan = channelwise.plan(desc)
    assert all(sum(band.dims) <= 4 or len(band.outputs) == 1 for band in plan.bands)
    assert sorted(o for band in plan.bands for o in band.outputs) == list(range(len(desc.irreps_out)))
    wide = channelwise.plan(tp.channelwise(O3, Irreps.parse("128x0e+128x1o", O3), Irreps.parse("0e+1o+2e", O3)))
    assert len(wide.bands) == 1

