"""The fused convolution's pieces (``backends.triton.segments``): every edge of a node in runs of at most
`piece` sorted edges, split nodes through partial rows, checked by summing with them as the kernels do."""
import gc
import weakref

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdsl.backends.triton import segments


def _sum_with(seg: segments.Segments, index: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """What the piece kernels and the fixup compute, in plain torch: each piece summed into its row, then
    each split node's partial rows summed into its row."""
    buf = torch.full((seg.buffer_rows, x.shape[1]), float("nan"), dtype=x.dtype)
    for lo, hi, row in seg.pieces.tolist():
        assert 0 <= lo <= hi <= len(index) and hi - lo <= seg.piece
        assert len(set(index[seg.perm[lo:hi]].tolist())) <= 1  # one node's edges
        buf[row] = x[seg.perm[lo:hi]].sum(0)
    for node, first, count in seg.fixups.tolist():
        assert seg.rows <= first and first + count <= seg.rows + seg.partial_rows
        buf[node] = buf[first:first + count].sum(0)
    return buf[:seg.rows]


@st.composite
def graphs(draw):
    rows = draw(st.integers(1, 9))
    piece = draw(st.integers(1, 6))
    hub = draw(st.booleans())  # most edges on one node: several split pieces
    e = draw(st.integers(0, 60))
    index = draw(st.lists(st.integers(0, rows - 1), min_size=e, max_size=e))
    if hub:
        index = [0 if i % 4 else v for i, v in enumerate(index)]
    return torch.tensor(index, dtype=torch.int64), rows, piece


@settings(max_examples=150, deadline=None)
@given(graphs())
def test_pieces_sum_every_edge_once_into_its_node(graph):
    index, rows, piece = graph
    seg = segments.build(index, rows, piece)
    assert torch.equal(torch.sort(seg.perm).values, torch.arange(len(index)))
    assert torch.equal(index[seg.perm], torch.sort(index, stable=True).values)
    x = torch.randn(len(index), 3, dtype=torch.float64)
    expect = torch.zeros(rows, 3, dtype=torch.float64).index_add_(0, index, x)
    assert torch.allclose(_sum_with(seg, index, x), expect, rtol=0, atol=1e-12)
    # exact sizes: one piece per node with at most `piece` edges, ceil(c / piece) for the others
    counts = torch.bincount(index, minlength=rows)
    k = torch.clamp((counts + piece - 1) // piece, min=1)
    assert seg.programs == int(k.sum()) and seg.fixups.shape[0] == int((k > 1).sum())
    assert seg.partial_rows == int(k[k > 1].sum())


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_bounded_layout_sums_the_same_and_pads_into_the_scratch_row(graph):
    """The layout meta tensors get (sizes bounded without reading values), built on the CPU: the same sums,
    sizes at least the exact ones, and padding that writes only the scratch row."""
    index, rows, piece = graph
    exact = segments.build(index, rows, piece)
    bound = segments.build(index, rows, piece, bounded=True)
    x = torch.randn(len(index), 3, dtype=torch.float64)
    assert torch.allclose(_sum_with(bound, index, x), _sum_with(exact, index, x), rtol=0, atol=1e-12)
    if len(index):
        assert bound.programs >= exact.programs and bound.fixups.shape[0] >= exact.fixups.shape[0]
        assert bound.partial_rows >= exact.partial_rows
        scratch = bound.buffer_rows - 1
        pad = bound.pieces[exact.programs:]
        assert (pad[:, 0] == pad[:, 1]).all() and (pad[:, 2] == scratch).all()
        pad_fixups = bound.fixups[exact.fixups.shape[0]:]
        assert (pad_fixups[:, 0] == scratch).all() and (pad_fixups[:, 2] == 0).all()
    meta = segments.build(index.to("meta"), rows, piece)
    assert (meta.programs, meta.fixups.shape, meta.partial_rows) == (
        bound.programs, bound.fixups.shape, bound.partial_rows)


def test_split_node_pieces_and_fixup():
    index = torch.tensor([0] * 13 + [2, 2, 1])
    seg = segments.build(index, 4, 3)
    x = torch.randn(len(index), 2, dtype=torch.float64)
    expect = torch.zeros(4, 2, dtype=torch.float64).index_add_(0, index, x)
    assert torch.allclose(_sum_with(seg, index, x), expect)
    assert seg.fixups.tolist() == [[0, 4, 5]]  # node 0: 13 edges, 5 pieces of 3, partial rows 4..8
    assert seg.programs == 5 + 3  # and one piece for each of nodes 1, 2 and the empty node 3


def test_graph_is_shared_while_the_same_index_tensors_come_back():
    src, dst = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 0])
    g = segments.for_indices(src, dst, 3, 3)
    assert segments.for_indices(src, dst, 3, 3) is g
    assert segments.for_indices(src.clone(), dst, 3, 3) is not g
    s = g.segments("g", dst, 4)
    assert g.segments("g", dst, 4) is s
    dst[0] = 2  # modified in place: a new graph, which replaces the old one
    old = weakref.ref(g)
    del g, s
    assert segments.for_indices(src, dst, 3, 3) is not None
    for _ in range(3):  # an index buffer rewritten in place every step keeps one graph alive, not one per step
        dst.copy_(torch.randint(0, 3, (3,)))
        segments.for_indices(src, dst, 3, 3).segments("g", dst, 4)
    gc.collect()
    assert old() is None
    key = (id(src), id(dst), 3, 3)
    del src, dst
    gc.collect()
    assert key not in segments._GRAPHS  # the entry goes with its tensors
