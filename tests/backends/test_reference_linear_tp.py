"""Reference runtime: Linear and TensorProduct (gradients, O(3)/SO(3) equivariance, agreement with e3nn)."""
import numpy as np
import pytest
import torch
from torch.func import functional_call

from eqdsl.backends.reference import Linear, TensorProduct
from eqdsl.groups.o3 import O3, SO3
from eqdsl.reps import tp
from eqdsl.reps.irreps import Irreps
from eqdsl.reps.so3 import irreps_D, random_rotation


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def I(text, group=O3):  # noqa: E743
    return Irreps.parse(text, group)


def group_elements(group, seed=0):
    """Two random rotations, and for O(3) also both composed with the inversion."""
    rng = np.random.default_rng(seed)
    rots = [random_rotation(rng) for _ in range(2)]
    return rots + [-r for r in rots] if group is O3 else rots


def D(irreps, R):
    return torch.tensor(irreps_D(irreps, R), dtype=torch.float64)


def descriptors(group):
    sfx = (lambda s: s) if group is O3 else (lambda s: s.replace("e", "").replace("o", ""))
    in1, in2 = I(sfx("2x0e+2x1o"), group), I(sfx("1x0e+1x1o+1x2e"), group)
    out_fc = I(sfx("2x0e+1x1o+2x1e+1x2e"), group) if group is O3 else I("2x0+3x1+1x2", group)
    # weighted/unweighted uvuv, uvu and uvw mixed, several paths into each output block
    raw_mixed = [(1, 1, 0, "uvuv", True), (1, 1, 0, "uvu", False),
                 (1, 0, 1, "uvu", True), (0, 1, 1, "uvuv", False), (1, 2, 1, "uvw", True)]
    out_mixed = I(sfx("2x1e+2x1o"), group)
    return {
        "uvw": tp.fully_connected(group, in1, in2, out_fc),
        "uvu": tp.channelwise(group, in1, in2),
        "uvuv": tp.full(group, in1, in2),
        "mixed": tp.build(in1, in2, out_mixed, raw_mixed),
    }


def float64_default():
    """e3nn builds its constants (3j symbols) in the default dtype; build them in float64 for tight comparisons."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    return old


def run_tp(m, x1, x2, w):
    return m(x1, x2) if m.shared_weights else m(x1, x2, w)


# ---------------------------------------------------------------------------- Linear

LINEAR_CASES = [("3x0e+2x1o+1x2e+2x0e", "2x0e+3x1o+1x2e", True), ("2x1o+1x0o", "1x0o+3x1o", False)]


@pytest.mark.parametrize("irreps_in,irreps_out,bias", LINEAR_CASES)
def test_linear_gradcheck(irreps_in, irreps_out, bias):
    m = Linear(I(irreps_in), I(irreps_out), bias=bias).double()
    x = torch.randn(2, m.irreps_in.dim, dtype=torch.float64, requires_grad=True)
    params = {k: v.detach().clone().requires_grad_() for k, v in m.named_parameters()}
    names = list(params)
    f = lambda x, *ps: functional_call(m, dict(zip(names, ps)), (x,))  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, *params.values()))


@pytest.mark.parametrize("group", [O3, SO3])
def test_linear_equivariance(group):
    irreps_in = I("3x0e+2x1o+1x2e+2x1o", group) if group is O3 else I("3x0+2x1+1x2+2x1", group)
    irreps_out = I("2x0e+3x1o+2x2e", group) if group is O3 else I("2x0+3x1+2x2", group)
    m = Linear(irreps_in, irreps_out, bias=True).double()
    with torch.no_grad():
        m.bias.normal_()
    x = torch.randn(4, irreps_in.dim, dtype=torch.float64)
    for R in group_elements(group):
        torch.testing.assert_close(m(x @ D(irreps_in, R).T), m(x) @ D(irreps_out, R).T)


@pytest.mark.parametrize("irreps_in,irreps_out,bias", LINEAR_CASES)
def test_linear_matches_e3nn(irreps_in, irreps_out, bias):
    o3 = pytest.importorskip("e3nn.o3")
    ours = Linear(I(irreps_in), I(irreps_out), bias=bias).double()
    theirs = o3.Linear(irreps_in, irreps_out, biases=bias).double()
    assert theirs.weight_numel == ours.weight_numel and theirs.bias_numel == ours.bias_numel
    with torch.no_grad():
        theirs.weight.copy_(ours.weight)
        if bias:
            ours.bias.normal_()
            theirs.bias.copy_(ours.bias)
    x = torch.randn(5, ours.irreps_in.dim, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-12, atol=1e-12)


def test_linear_errors():
    with pytest.raises(ValueError, match="no input"):
        Linear(I("2x0e"), I("1x1o"))
    with pytest.raises(ValueError, match="trivial"):
        Linear(I("2x0e+1x1o"), I("1x0e+1x1o"), bias=[False, True])
    assert Linear(I("1x1o"), I("1x1o"), bias=True).bias is None  # no trivial output: nothing to bias


def test_linear_batch_shapes_and_float32():
    m = Linear(I("2x0e+1x1o"), I("3x0e+2x1o"))
    x = torch.randn(2, 3, 5)
    assert m(x).shape == (2, 3, 9) and m(x).dtype == torch.float32
    torch.testing.assert_close(m(x), m.double()(x.double()).float())


# ---------------------------------------------------------------------------- TensorProduct

@pytest.mark.parametrize("kind", ["uvw", "uvu", "uvuv", "mixed"])
@pytest.mark.parametrize("shared", [True, False])
def test_tp_gradcheck(kind, shared):
    desc = descriptors(O3)[kind]
    m = TensorProduct(desc, shared_weights=shared).double()
    x1 = torch.randn(2, desc.irreps_in1.dim, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(2, desc.irreps_in2.dim, dtype=torch.float64, requires_grad=True)
    if shared:
        w = m.weight.detach().clone().requires_grad_() if m.weight is not None else None
        f = lambda x1, x2, *w: functional_call(m, {"weight": w[0]} if w else {}, (x1, x2))  # noqa: E731
    else:
        w = torch.randn(2, desc.weight_numel, dtype=torch.float64, requires_grad=True) if desc.weight_numel else None
        f = lambda x1, x2, *w: m(x1, x2, w[0] if w else None)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x1, x2) + ((w,) if w is not None else ()))


@pytest.mark.parametrize("group", [O3, SO3])
@pytest.mark.parametrize("kind", ["uvw", "uvu", "uvuv", "mixed"])
@pytest.mark.parametrize("shared", [True, False])
def test_tp_equivariance(group, kind, shared):
    desc = descriptors(group)[kind]
    m = TensorProduct(desc, shared_weights=shared).double()
    x1 = torch.randn(3, desc.irreps_in1.dim, dtype=torch.float64)
    x2 = torch.randn(3, desc.irreps_in2.dim, dtype=torch.float64)
    w = torch.randn(3, desc.weight_numel, dtype=torch.float64)
    out = run_tp(m, x1, x2, w)
    assert out.abs().max() > 1e-3  # not trivially equivariant
    for R in group_elements(group):
        rotated = run_tp(m, x1 @ D(desc.irreps_in1, R).T, x2 @ D(desc.irreps_in2, R).T, w)
        torch.testing.assert_close(rotated, out @ D(desc.irreps_out, R).T)


@pytest.mark.parametrize("kind", ["uvw", "uvu", "uvuv", "mixed"])
@pytest.mark.parametrize("shared", [True, False])
def test_tp_matches_e3nn(kind, shared):
    o3 = pytest.importorskip("e3nn.o3")
    desc = descriptors(O3)[kind]
    ours = TensorProduct(desc, shared_weights=shared).double()
    old = float64_default()
    try:
        theirs = o3.TensorProduct(
            str(desc.irreps_in1), str(desc.irreps_in2), str(desc.irreps_out),
            [(p.i_in1, p.i_in2, p.i_out, p.mode, p.has_weight) for p in desc.paths],
            shared_weights=shared, internal_weights=shared,
        )
    finally:
        torch.set_default_dtype(old)
    assert theirs.weight_numel == ours.weight_numel
    for p, ins in zip(desc.paths, theirs.instructions):
        assert p.path_weight == pytest.approx(ins.path_weight, rel=1e-14)
    x1 = torch.randn(4, desc.irreps_in1.dim, dtype=torch.float64)
    x2 = torch.randn(4, desc.irreps_in2.dim, dtype=torch.float64)
    if shared:
        if ours.weight is not None:
            with torch.no_grad():
                theirs.weight.copy_(ours.weight)
        expected, got = theirs(x1, x2), ours(x1, x2)
    else:
        w = torch.randn(4, desc.weight_numel, dtype=torch.float64)
        expected, got = theirs(x1, x2, w), ours(x1, x2, w)
    torch.testing.assert_close(got, expected, rtol=1e-11, atol=1e-12)


def test_tp_broadcasting_and_shared_weight_errors():
    desc = descriptors(O3)["uvu"]
    m = TensorProduct(desc, shared_weights=False).double()
    x1 = torch.randn(2, 3, desc.irreps_in1.dim, dtype=torch.float64)
    x2 = torch.randn(3, desc.irreps_in2.dim, dtype=torch.float64)
    w = torch.randn(3, desc.weight_numel, dtype=torch.float64)
    out = m(x1, x2, w)
    assert out.shape == (2, 3, desc.irreps_out.dim)
    torch.testing.assert_close(out[1], m(x1[1], x2, w))
    with pytest.raises(ValueError, match="required"):
        m(x1, x2)
    shared = TensorProduct(desc, shared_weights=True)
    with pytest.raises(ValueError, match="shared"):
        shared(x1.float(), x2.float(), w.float())


def test_tp_rejects_bad_paths():
    in1, in2 = I("2x1o"), I("1x1o")
    with pytest.raises(ValueError, match="selection"):
        TensorProduct(tp.build(in1, in2, I("2x1o"), [(0, 0, 0, "uvu", True)]))
    with pytest.raises(ValueError, match="multiplicity"):
        TensorProduct(tp.build(in1, in2, I("3x1e"), [(0, 0, 0, "uvu", True)]))
    with pytest.raises(ValueError, match="need weights"):
        TensorProduct(tp.build(in1, in2, I("3x1e"), [(0, 0, 0, "uvw", False)]))
