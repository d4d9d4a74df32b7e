"""Frame averaging: the frames move with the points, the representation matrices at the frames' elements are
the group's, degenerate point sets are refused, gradients are right, and frame-averaged models of every
supported group are equivariant to 1e-10 in float64 (and are not without the average)."""
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import eqdsl
from eqdsl import testing
from eqdsl.backends.reference import frames as rf
from eqdsl.groups import GROUPS
from eqdsl.groups.builtin import O, SO, cyclic, dihedral
from eqdsl.reps import so3
from eqdsl.reps.irreps import Irreps
from eqdsl.reps.matrix_rep_syntax import parse_rep



pytestmark = pytest.mark.usefixtures("float64_default")  # these tests compute in float64


def _points(seed, n=9, d=3):
    return torch.as_tensor(np.random.default_rng(seed).normal(size=(n, d)) * np.arange(1, d + 1))


def _as_set(F: torch.Tensor) -> list:
    return sorted(tuple(np.round(m.numpy().ravel(), 8)) for m in F)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), proper=st.booleans())
def test_pca_frames_move_with_the_points(seed, proper):
    """F(gX + t) = g F(X) as sets, for rotations and reflections (O(3): 8 elements) and rotations (SO(3): 4)."""
    rng = np.random.default_rng(seed)
    pos = _points(seed)
    batch = torch.zeros(len(pos), dtype=torch.long)
    g = torch.as_tensor(so3.random_rotation(rng) if proper else so3.random_orthogonal(rng))
    count = 4 if proper else 8
    F = rf.pca_frames(pos, batch, 1, count).elements[0]
    moved = rf.pca_frames(pos @ g.T + torch.as_tensor(rng.normal(size=3)), batch, 1, count).elements[0]
    assert F.shape == (count, 3, 3)
    assert torch.allclose(F.transpose(-1, -2) @ F, torch.eye(3).expand(count, 3, 3), atol=1e-12)
    if proper:
        assert torch.all(torch.linalg.det(F) > 0)
    assert _as_set(g @ F) == _as_set(moved)


def test_planar_pca_frames_have_two_or_four_elements():
    pos = _points(3, d=2)
    batch = torch.zeros(len(pos), dtype=torch.long)
    assert rf.pca_frames(pos, batch, 1, 4).elements.shape == (1, 4, 2, 2)
    F = rf.pca_frames(pos, batch, 1, 2).elements[0]
    assert torch.all(torch.linalg.det(F) > 0) and F.shape == (2, 2, 2)


@pytest.mark.parametrize("irreps", ["1x0e + 1x0o + 2x1o + 1x1e + 1x2e + 1x3o + 1x4e"])
def test_irreps_action_is_the_wigner_D_of_the_frame_element(irreps):
    ir = Irreps.parse(irreps, GROUPS["O3"])
    act = rf.IrrepsAction(ir)
    rng = np.random.default_rng(0)
    R = np.stack([so3.random_orthogonal(rng) for _ in range(6)])
    assert torch.allclose(act.matrices(torch.as_tensor(R)), torch.as_tensor(so3.irreps_D(ir, R)), atol=1e-12)


def test_so3_irreps_action_on_rotations():
    ir = Irreps.parse("1x0 + 1x1 + 2x2 + 1x5", GROUPS["SO3"])
    R = np.stack([so3.random_rotation(np.random.default_rng(s)) for s in range(4)])
    assert torch.allclose(rf.IrrepsAction(ir).matrices(torch.as_tensor(R)), torch.as_tensor(so3.irreps_D(ir, R)),
                          atol=1e-12)


@pytest.mark.parametrize("group,text", [(O(2), "1 + det + V + freq(2) + freq(3)"), (SO(2), "1 + V + freq(2)")])
def test_planar_action_is_the_representation(group, text):
    rep = parse_rep(text, group)
    act = rf.PlanarAction(rep)
    rng = np.random.default_rng(1)
    els = np.stack([group.sample(rng) for _ in range(8)])
    expected = np.stack([rep.rho(g) for g in els])
    assert torch.allclose(act.matrices(torch.as_tensor(els)), torch.as_tensor(expected), atol=1e-10)


@pytest.mark.parametrize("group", [cyclic(6), dihedral(4)])
def test_finite_frames_are_the_whole_group(group):
    rep = parse_rep("1 + V + regular", group) if group.name == "C6" else parse_rep("1 + V + det", group)
    pos = _points(2, d=2)
    frames = rf.FrameMaker(group, "group", group.order)(pos, torch.zeros(len(pos), dtype=torch.long), 1)
    act = rf.FiniteAction(rep, group.elements())
    expected = np.stack([rep.rho(g) for g in group.elements()])
    assert torch.allclose(act.matrices(frames.elements)[0], torch.as_tensor(expected))
    x = torch.randn(len(pos), rep.dim)
    inside = rf.to_frame(x, frames, act, torch.zeros(len(pos), dtype=torch.long))
    back = torch.stack([torch.as_tensor(rep.rho(g)) @ inside.reshape(group.order, len(pos), -1)[k].T
                        for k, g in enumerate(group.elements())])
    assert torch.allclose(back, x.T.expand_as(back))  # rho(F_k) applied to the copy in F_k gives x back


@pytest.mark.parametrize("make", [
    lambda: torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]),      # collinear
    lambda: torch.tensor([[1.0, 0, 0], [-1.0, 0, 0], [0, 1.0, 0], [0, -1.0, 0], [0, 0, 2.0], [0, 0, -2.0]]),  # symmetric
    lambda: torch.tensor([[0.5, 0.1, 0.3]]),                                          # one point
], ids=["collinear", "repeated-eigenvalues", "one-point"])
def test_degenerate_points_are_refused_with_a_clear_error(make):
    pos = make()
    with pytest.raises(rf.FrameError, match=r"graph 0 has no unique frame \(frame made at here.eq:3:5\).*repeated eigenvalues"):
        rf.pca_frames(pos, torch.zeros(len(pos), dtype=torch.long), 1, 8, where="frame made at here.eq:3:5")


def test_a_degenerate_graph_is_named_among_good_ones():
    good, bad = _points(5, n=5), torch.tensor([[0.0, 0, 0], [1.0, 1.0, 1.0]])
    pos = torch.cat([good, bad])
    batch = torch.tensor([0] * 5 + [1] * 2)
    with pytest.raises(rf.FrameError, match="graph 1 has no unique frame"):
        rf.pca_frames(pos, batch, 2, 8)


def test_to_and_from_frame_have_correct_gradients():
    ir = Irreps.parse("1x0e + 1x1o + 1x2e", GROUPS["O3"])
    act = rf.IrrepsAction(ir)
    batch = torch.tensor([0] * 5 + [1] * 6)
    x = torch.randn(11, ir.dim, requires_grad=True)

    def f(pos, x):
        frames = rf.pca_frames(pos, batch, 2, 8)
        inside = rf.to_frame(x, frames, act, batch)
        coords = rf.to_frame(pos, frames, None, batch, point=True)
        y = torch.cat([torch.tanh(inside[:, :6]) * coords[:, :1], inside[:, 6:] * coords[:, 1:2]], dim=-1)
        return rf.from_frame(y, frames, act, batch, rotate=True)

    pos = _points(7, n=11).requires_grad_(True)
    assert torch.autograd.gradcheck(f, (pos, x))


GROUP_SPECS = {  # group line, a (pseudo)scalar input, an output, its width in scalars, hidden scalars, one scalar, vector
    "O3": ("group O3", "1x0o", "1x1o + 1x1e", "6x0e", "8x0e", "1x0e", "1x1o"),
    "SO3": ("group SO3", "1x0", "1x1 + 1x2", "8x0", "8x0", "1x0", "1x1"),
    "O2": ("group O2 = O(2)", "det", "V + freq(2)", "4", "8", "1", "V"),
    "SO2": ("group SO2 = SO(2)", "1", "V", "2", "8", "1", "V"),
    "C6": ("group C6 = cyclic(6)", "1", "V + regular", "8", "8", "1", "V"),
    "D4": ("group D4 = dihedral(4)", "det", "V + det", "3", "8", "1", "V"),
}


def _spec(name) -> str:
    group, q, out, width, hidden, scalar, vec = GROUP_SPECS[name]
    return f"""{group}
model Framed {{
    input pos : position @node
    input q : {q} @node
    input edges : graph
    f = frame(pos)
    x = to_frame(pos, f)
    qf = to_frame(q, f)
    v = to_frame(pos[dst] - pos[src], f)
    h = mlp(concat(x, qf), 16, act = silu) -> {hidden}
    m = scatter_mean(mlp(concat(v, h[src]), 16, act = silu) -> {hidden}, dst)
    y = mlp(concat(h, m), 16, act = silu) -> {hidden}
    output e : {q} @graph = from_frame(sum_nodes(mlp(y, 8) -> {scalar}), f) -> {q}
    output v : {out} @node = from_frame(mlp(y, 8) -> {width}, f) -> ({out})
    u = scatter_sum(pos[dst] - pos[src], dst)
    output w : {vec} @node = from_frame(u * (mlp(y, 8) -> {scalar}), f) -> {vec}
}}
"""


@pytest.fixture(params=sorted(GROUP_SPECS))
def framed_model(request, tmp_path):
    path = tmp_path / f"framed_{request.param}.eq"
    path.write_text(_spec(request.param))
    torch.manual_seed(0)
    return eqdsl.compile_file(path).model_class()().double()


def test_frame_averaged_models_are_equivariant(framed_model):
    errors = testing.assert_equivariant(framed_model, trials=4, tol=1e-10)
    assert set(errors) == {"e", "v", "w"}


def test_without_the_average_the_models_are_not_equivariant(framed_model, monkeypatch):
    """The check above can fail: reading one copy instead of averaging them breaks the symmetry."""
    def first_copy(y, frames, act, row_graph, rotate):
        copies = y.reshape(frames.count, -1, y.shape[-1])
        if not rotate:
            return copies[0]
        mats = act.matrices(frames.elements)[:, 0]
        return torch.einsum("rij,rj->ri", mats if row_graph is None else mats[row_graph], copies[0])

    monkeypatch.setattr(rf, "from_frame", first_copy)
    errors = testing.equivariance_errors(framed_model, np.random.default_rng(0), trials=6)
    assert max(errors.values()) > 1e-3, errors


def test_the_shipped_spec_predicts_equivariant_forces_and_conservative_gradients(tmp_path):
    torch.manual_seed(0)
    model = eqdsl.compile_file(Path(__file__).resolve().parents[2] / "specs" / "frame_average_mlp.eq").model_class()().double()
    errors = testing.assert_equivariant(model, trials=4, tol=1e-10)
    assert set(errors) == {"energy", "forces"}
    # gradients pass through the eigenvectors: -dE/dpos of the averaged energy is equivariant too
    sample = testing.random_sample(type(model), np.random.default_rng(3))
    pos = sample.inputs["pos"].clone().requires_grad_(True)
    g = torch.as_tensor(so3.random_orthogonal(np.random.default_rng(4)))
    inputs = dict(sample.inputs, pos=pos)
    (grad,) = torch.autograd.grad(model(**inputs, **sample.kwargs)["energy"].sum(), pos)
    moved = (sample.inputs["pos"] @ g.T).requires_grad_(True)
    (grad_moved,) = torch.autograd.grad(model(**dict(sample.inputs, pos=moved), **sample.kwargs)["energy"].sum(), moved)
    assert torch.allclose(grad_moved, grad @ g.T, atol=1e-10 * grad.abs().max())
