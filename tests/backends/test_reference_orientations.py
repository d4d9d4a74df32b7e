"""Position-orientation space (PONITA): the grids, the lift, the pair invariants, the orientation convolution and
the readouts are exactly equivariant when the grid turns with the input; gradients are right; models on a grid
are exact under permutations, translations and the grid's own symmetries, and their equivariance error falls
as the grid grows (three sizes, the shipped spec included)."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import eqdsl
from eqdsl import testing
from eqdsl.backends.reference import orientations as ro
from eqdsl.groups import GROUPS
from eqdsl.reps import so3
from eqdsl.reps.irreps import Irreps

ROOT = Path(__file__).resolve().parents[2]
# Irreps of parity (-1)^l, every one with values on the grid (several copies of some).
LIFTABLE = "2x0e + 3x1o + 1x2e + 2x3o"
BLOCKS = [(2, 0), (3, 1), (1, 2), (2, 3)]


pytestmark = pytest.mark.usefixtures("float64_default")  # these tests compute in float64


def _element(seed, reflect):
    R = so3.random_rotation(np.random.default_rng(seed))
    return -R if reflect else R


@pytest.mark.parametrize("dim,n", [(3, 7), (3, 200), (2, 5), (2, 64)])
def test_grid_points_are_unit_vectors_spread_over_the_sphere(dim, n):
    p = ro.grid_points(dim, n)
    assert p.shape == (n, dim)
    assert np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-14)
    second_moment = p.T @ p / n  # I / dim on a uniform grid: exactly on the circle, nearly on the sphere
    assert np.allclose(second_moment, np.eye(dim) / dim, atol=1e-14 if dim == 2 else 2.0 / n)


@pytest.mark.parametrize("reflect", [False, True])
def test_lift_invariants_readout_and_conv_are_exact_when_the_grid_turns_with_the_input(reflect):
    """f(g x; g O) = f(x; O) for every value on the grid, and the readout gives D(g) times the original:
    the continuum's equivariance, exact for any grid that is turned with the input."""
    ir = Irreps.parse(LIFTABLE, GROUPS["O3"])
    g = torch.as_tensor(_element(1, reflect))
    D = torch.as_tensor(so3.irreps_D(ir, g.numpy()[None])[0])
    grid = ro.Orientations(torch.as_tensor(ro.grid_points(3, 11)))
    turned = ro.Orientations(grid.points @ g.T)
    x = torch.randn(5, ir.dim)
    r = torch.randn(4, 3)
    assert torch.allclose(ro.to_orientations(x @ D.T, turned, BLOCKS), ro.to_orientations(x, grid, BLOCKS), atol=1e-12)
    assert torch.allclose(ro.pair_invariants(r @ g.T, turned), ro.pair_invariants(r, grid), atol=1e-12)
    y = torch.randn(11 * 5, 8)
    assert torch.allclose(ro.from_orientations(y, turned, BLOCKS), ro.from_orientations(y, grid, BLOCKS) @ D.T, atol=1e-12)
    conv = ro.OrientationConv(8, 6)
    assert torch.allclose(conv(y, turned), conv(y, grid), atol=1e-12)


def test_a_wrong_parity_would_break_the_lift_under_reflections():
    """The check above can fail: a pseudovector (1e) evaluated like a vector changes sign under -I."""
    ir = Irreps.parse("1x1e", GROUPS["O3"])
    g = torch.as_tensor(_element(2, True))
    D = torch.as_tensor(so3.irreps_D(ir, g.numpy()[None])[0])
    grid = ro.Orientations(torch.as_tensor(ro.grid_points(3, 9)))
    turned = ro.Orientations(grid.points @ g.T)
    x = torch.randn(3, 3)
    assert not torch.allclose(ro.to_orientations(x @ D.T, turned, [(1, 1)]), ro.to_orientations(x, grid, [(1, 1)]))


def test_pair_invariants_are_the_component_along_and_the_distance_across():
    grid = ro.Orientations(torch.as_tensor(ro.grid_points(3, 6)))
    r = torch.randn(4, 3)
    got = ro.pair_invariants(r, grid).reshape(6, 4, 2)
    o = grid.points
    along = o @ r.T
    across = torch.linalg.norm(r[None] - along[..., None] * o[:, None], dim=-1)
    assert torch.allclose(got[..., 0], along, atol=1e-12)
    assert torch.allclose(got[..., 1], across, atol=1e-7)  # sqrt(. + eps): a smooth norm


@pytest.mark.parametrize("dim,blocks,width", [(3, BLOCKS, Irreps.parse(LIFTABLE, GROUPS["O3"]).dim),
                                              (2, [(2, 0), (1, 1)], 4)])
def test_the_readout_inverts_the_lift_in_the_limit_of_the_grid(dim, blocks, width):
    x = torch.randn(3, width)
    errors = []
    for n in (16, 256, 4096):
        grid = ro.Orientations(torch.as_tensor(ro.grid_points(dim, n)))
        back = ro.from_orientations(ro.to_orientations(x, grid, blocks), grid, blocks)
        errors.append(float((back - x).abs().max() / x.abs().max()))
    if dim == 2:  # equally spaced angles integrate cos^2 exactly
        assert max(errors) < 1e-12, errors
    else:
        assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-3, errors


def test_gradients_of_every_op_on_the_grid():
    grid = ro.Orientations(torch.as_tensor(ro.grid_points(3, 5)))
    x = torch.randn(3, Irreps.parse(LIFTABLE, GROUPS["O3"]).dim, requires_grad=True)
    r = torch.randn(4, 3, requires_grad=True)
    y = torch.randn(5 * 3, 8, requires_grad=True)
    conv = ro.OrientationConv(8, 4)
    assert torch.autograd.gradcheck(lambda v: ro.to_orientations(v, grid, BLOCKS), (x,))
    assert torch.autograd.gradcheck(lambda v: ro.pair_invariants(v, grid), (r,))
    assert torch.autograd.gradcheck(lambda v: ro.from_orientations(v, grid, BLOCKS), (y,))
    assert torch.autograd.gradcheck(lambda v: conv(v, grid), (y,))
    assert torch.autograd.gradgradcheck(lambda v: ro.pair_invariants(v, grid), (r,))


def test_the_grid_is_exact_in_float64_and_resizes_on_its_device():
    grid = ro.OrientationGrid(3, 10).float().double()
    assert torch.equal(grid.points, torch.as_tensor(ro.grid_points(3, 10)))
    grid.resize(40)
    assert grid().count == 40 and grid.points.dtype == torch.float64
    with pytest.raises(ValueError, match="at least 2 directions"):
        grid.resize(1)


PLANAR = """group O2 = O(2)
model Planar(cutoff = 3.0) {
    input pos : position
    input w : 2 @node
    input edges : graph
    r = pos[dst] - pos[src]
    O = orientations(n = 8, approximate = true)
    h = concat(to_orientations(w, O), to_orientations(scatter_sum(r, dst), O))    # scalars, and o . v
    k = mlp(concat(pair_invariants(r, O), bessel(norm(r), n = 8, cutoff = cutoff)), 16, act = silu) -> 3
    h = h + orientation_conv(scatter_sum(k * h[src], dst), O)
    output v : V @node = from_orientations(mlp(h, 16, act = silu) -> 1, O) -> V
    output s : 2 @graph = sum_nodes(from_orientations(mlp(h, 16) -> 2, O) -> 2)
}
"""


@pytest.fixture(scope="module")
def planar_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("orientations") / "planar.eq"
    path.write_text(PLANAR)
    torch.manual_seed(0)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return eqdsl.compile_file(path).model_class()().double()
    finally:
        torch.set_default_dtype(before)


def _errors(model, rotation, seed=0):
    cls = type(model)
    rng = np.random.default_rng(seed)
    sample = testing.random_sample(cls, rng)
    t = testing.Transform(rotation, rng.normal(size=rotation.shape[0]) * 3.0, rng.permutation(sample.num_nodes))
    return testing.errors_under(model, sample, t, rng.permutation(sample.num_edges))


def test_the_grids_own_symmetries_and_permutations_are_exact(planar_model):
    """Turning by 2 pi k / 8, or reflecting in the x axis, maps the 8 angles to themselves; the identity
    with a translation and a permutation is exact for any grid."""
    turn = 2 * math.pi * 3 / 8
    for element in (np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]]),
                    np.diag([1.0, -1.0]), np.eye(2)):
        errors = _errors(planar_model, element)
        assert max(errors.values()) < 1e-12, (element, errors)
    other = _errors(planar_model, np.array([[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]]))
    assert max(other.values()) > 1e-6, other  # any other rotation only approximately


@pytest.mark.parametrize("which", ["planar", "ponita"])
def test_the_error_falls_as_the_grid_grows(which, planar_model):
    if which == "planar":
        model = planar_model
    else:
        torch.manual_seed(0)
        model = eqdsl.compile_file(ROOT / "specs" / "ponita.eq", layers=1).model_class()().double()
    sweep = testing.grid_errors(model, seed=0, trials=2)
    assert [sizes for sizes, _ in sweep] == [[n * f for n in [g.n for g in testing.grid_layers(model)]]
                                            for f in testing.GRID_FACTORS]
    for name in sweep[0][1]:
        errs = [errors[name] for _, errors in sweep]
        assert errs[0] > errs[1] > errs[2], (name, errs)
        assert errs[2] < errs[0] / 8, (name, errs)
    assert [g.n for g in testing.grid_layers(model)] == [sweep[0][0][0]]  # the spec's size again


def test_the_shipped_spec_is_exact_under_translations_and_permutations():
    torch.manual_seed(0)
    model = eqdsl.compile_file(ROOT / "specs" / "ponita.eq").model_class()().double()
    errors = _errors(model, np.eye(3))
    assert max(errors.values()) < 1e-12, errors


def test_so3_lifts_every_degree_and_o3_only_parity_minus_one_to_the_l(tmp_path):
    """Without reflections every irrep has values on the grid; with them only 0e, 1o, 2e, ... (E0803)."""
    body = """
model Net {{
    input x : {rep} @node
    O = orientations(n = 6, approximate = true)
    output y : {rep} @node = from_orientations(to_orientations(x, O), O) -> ({rep})
}}
"""
    from eqdsl.compiler import check_file
    for group, rep, ok in (("SO3", "1x0 + 2x1 + 1x2", True), ("O3", "1x0e + 2x1o + 1x2e", True),
                           ("O3", "1x0e + 1x1e", False), ("O3", "1x0o", False)):
        path = tmp_path / f"lift_{group}_{ok}_{len(rep)}.eq"
        path.write_text(f"group {group}\n" + body.format(rep=rep))
        result = check_file(path)
        assert result.ok == ok, (group, rep, [d.message for d in result.diagnostics])
        if not ok:
            assert [d.code for d in result.diagnostics] == ["E0803"]
