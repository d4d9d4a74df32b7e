"""sphere_mlp (Facet): exact when the grid turns with the input, reflections through the origin exact on any
grid, the error falls as the grid grows, gradients are right, and the typing rules keep it to functions on the
sphere declared approximate."""
import numpy as np
import pytest
import torch

import eqdsl
from eqdsl import testing
from eqdsl.backends.reference import gaunt as rg
from eqdsl.backends.reference.sphere import SphereMLP
from eqdsl.compiler import check_file
from eqdsl.groups import GROUPS
from eqdsl.reps import so3
from eqdsl.reps.irreps import Irreps

pytestmark = pytest.mark.usefixtures("float64_default")
IN, OUT = "3x0e + 3x1o + 3x2e", "2x0e + 2x1o + 2x2e + 2x3o"


def _D(irreps, R):
    return torch.as_tensor(so3.irreps_D(Irreps.parse(irreps, GROUPS["O3"]), R[None])[0])


def _layer(n=4):
    torch.manual_seed(0)
    return SphereMLP((0, 1, 2), (0, 1, 2, 3), 3, 2, [16], "silu", n)


def test_exact_when_the_grid_turns_with_the_input():
    layer = _layer()
    x = torch.randn(4, Irreps.parse(IN, GROUPS["O3"]).dim)
    R = so3.random_rotation(np.random.default_rng(0))
    turned = _layer()
    pts, q = rg.product_grid(4, 8)
    turned.y_in = torch.as_tensor(rg._harmonics((0, 1, 2), pts @ R.T))
    turned.y_out = torch.as_tensor(rg._harmonics((0, 1, 2, 3), pts @ R.T) * q[:, None])
    assert torch.allclose(turned(x @ _D(IN, R).T), layer(x) @ _D(OUT, R).T, atol=1e-12)


def test_the_inversion_is_exact_and_rotations_approach_exactness_as_the_grid_grows():
    x = torch.randn(6, Irreps.parse(IN, GROUPS["O3"]).dim)
    minus = -np.eye(3)
    layer = _layer()
    assert torch.allclose(layer(x @ _D(IN, minus).T), layer(x) @ _D(OUT, minus).T, atol=1e-12)
    R = so3.random_rotation(np.random.default_rng(3))
    errors = []
    with torch.no_grad():
        for n in (2, 4, 8):
            layer.resize(n)
            want = layer(x) @ _D(OUT, R).T
            errors.append(float((layer(x @ _D(IN, R).T) - want).abs().max() / want.abs().max()))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[0] > 1e-6, errors  # the check can fail: a coarse grid is not exact


def test_gradcheck():
    layer = _layer(3)
    x = torch.randn(2, Irreps.parse(IN, GROUPS["O3"]).dim, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


@pytest.mark.parametrize("body,code", [
    ("input v : 4x0e + 4x1e @node\n output y : 4x0e @node = sphere_mlp(v, 8, approximate = true) -> 4x0e", "E0212"),
    ("input v : 4x0e + 4x1o @node\n output y : 4x0e @node = sphere_mlp(v, 8) -> 4x0e", "E0804"),
    ("input v : 4x0e + 2x1o @node\n output y : 4x0e @node = sphere_mlp(v, 8, approximate = true) -> 4x0e", "E0208"),
])
def test_typing_rules(tmp_path, body, code):
    path = tmp_path / "s.eq"
    path.write_text(f"group O3\nmodel Net {{\n{body}\n}}\n")
    assert [d.code for d in check_file(path).diagnostics] == [code]


def test_the_shipped_facet_spec_sweeps_its_grids():
    torch.manual_seed(0)
    model = eqdsl.compile_file("specs/facet.eq").model_class()().double()
    sweep = testing.grid_errors(model, seed=0, trials=2)
    assert [sizes for sizes, _ in sweep] == [[6 * f, 6 * f] for f in testing.GRID_FACTORS]
    for name in sweep[0][1]:
        assert sweep[0][1][name] > sweep[1][1][name], sweep
