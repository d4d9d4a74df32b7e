"""Matrix groups end to end: declarations, generated modules, and checks that catch broken maps."""
from pathlib import Path

import numpy as np
import pytest
import torch

import eqdsl
from eqdsl.compiler import check_file
from eqdsl.groups.recipe import group_from_recipe
from eqdsl.testing import assert_equivariant, equivariance_errors

ROOT = Path(__file__).resolve().parents[2]

_BODY = """
model Net {
    input x : 2 * V @graph
    output y = linear(x) -> V
}
"""


@pytest.mark.parametrize("decl, name", [
    ("group C4", "C4"), ("group G = cyclic(4)", "C4"), ("group D6", "D6"), ("group G = dihedral(6)", "D6"),
    ("group Lorentz", "SO+(1,3)"), ("group L = lorentz()", "SO+(1,3)"), ("group G = SO(4)", "SO(4)"),
    ("group G = O(2)", "O(2)"), ("group S5", "S5"), ("group G = SL(3)", "SL(3)"), ("group G = GL(2)", "GL(2)"),
    ("group G = Sp(4)", "Sp(4)"), ("group G = SU2()", "SU(2)"),
])
def test_group_declarations(tmp_path, decl, name):
    spec = tmp_path / "net.eq"
    spec.write_text(decl + "\n" + _BODY)
    result = check_file(spec, verify_ir=True)
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.models[0].group == name
    cls = eqdsl.compile_file(spec).model_class()
    torch.manual_seed(0)
    assert_equivariant(cls().double(), tol=1e-9)


def test_generator_group_rebuilds_from_the_generated_module():
    cls = eqdsl.compile_file(ROOT / "specs" / "field_dipole.eq").model_class()
    assert cls.GROUP[0] == "matrix"
    G = group_from_recipe(cls.GROUP)
    assert G.name == "Cinfv" and G.dim == 3 and len(G.lie_generators) == 1 and G.compact


def test_conflicting_groups_across_imports(tmp_path):
    (tmp_path / "lib.eq").write_text("group D4\nrep F = 2 * regular\n")
    (tmp_path / "main.eq").write_text('import "lib.eq"\ngroup C4\n' + _BODY)
    result = check_file(tmp_path / "main.eq")
    assert [d.code for d in result.diagnostics] == ["E0109"]


def _break(model, prefix):
    """Overwrite a solved basis between non-scalar block types in the first such layer named prefix..."""
    for name, module in model.named_modules():
        if not (name.startswith(prefix) and hasattr(module, "map")):
            continue
        for i in range(module.map.num_pieces):
            basis = getattr(module.map, f"basis_{i}")
            if max(basis.shape[1:3]) > 1:  # a random map between scalars would still be equivariant
                with torch.no_grad():
                    basis.copy_(torch.randn_like(basis))
                return name
    raise AssertionError(f"no {prefix} layer")


@pytest.mark.parametrize("spec, layer", [
    ("lorentz_jets", "linear"), ("deepsets", "linear"), ("emlp_o5", "bilinear"), ("galaxy_d4", "conv"),
    ("point_vortices", "bilinear"), ("sl2_tensors", "bilinear"),
])
def test_equivariance_check_catches_a_broken_basis(spec, layer):
    cls = eqdsl.compile_file(ROOT / "specs" / f"{spec}.eq").model_class()
    torch.manual_seed(0)
    model = cls().double()
    assert max(equivariance_errors(model, np.random.default_rng(0)).values()) < 1e-9
    _break(model, layer)
    assert max(equivariance_errors(model, np.random.default_rng(0)).values()) > 1e-6


def test_images_are_nchw_and_the_check_rotates_them():
    cls = eqdsl.compile_file(ROOT / "specs" / "galaxy_d4.eq").model_class()
    torch.manual_seed(0)
    model = cls().double()
    img = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    out = model(img)["votes"]
    assert out.shape == (2, 37)
    # rotating every image by 90 degrees and mirroring it leaves the votes unchanged
    torch.testing.assert_close(model(torch.rot90(img, 1, dims=(2, 3)))["votes"], out)
    torch.testing.assert_close(model(img.flip(-1))["votes"], out)
    # ... but not a transposed-and-shifted image (the check is not vacuous)
    assert not torch.allclose(model(torch.roll(img, 3, dims=-1))["votes"], out)


def test_approximate_layers_are_declared_checked_exactly_on_the_grid_and_measured_elsewhere(capsys):
    from eqdsl import cli
    from eqdsl.testing import approximate_errors
    cls = eqdsl.compile_file(ROOT / "specs" / "galaxy_c8.eq").model_class()
    assert [op for op, _ in cls.APPROXIMATE] == ["conv2d", "conv2d"]
    torch.manual_seed(0)
    model = cls().double()
    # 45-degree rotations of smooth images: small but nonzero error (ring-sampled kernels)
    err = approximate_errors(model, np.random.default_rng(0))["votes"]
    assert 1e-6 < err < 0.1
    assert max(equivariance_errors(model, np.random.default_rng(0)).values()) < 1e-9
    _break(model, "conv")
    assert max(equivariance_errors(model, np.random.default_rng(0)).values()) > 1e-6
    assert cli.main(["check", str(ROOT / "specs" / "galaxy_c8.eq")]) == 0
    out = capsys.readouterr().out
    assert "approximately equivariant by declaration: conv2d at" in out and "reported" in out


def test_exact_grid_groups_have_no_approximate_layers():
    cls = eqdsl.compile_file(ROOT / "specs" / "galaxy_d4.eq").model_class()
    assert not getattr(cls, "APPROXIMATE", ())


def test_matrix_group_models_refuse_the_triton_backend(capsys):
    from eqdsl import cli
    cls = eqdsl.compile_file(ROOT / "specs" / "deepsets.eq").model_class()
    with pytest.raises(ValueError, match="no Triton kernels"):
        cls(backend="triton")
    cls(backend="reference")
    assert cli.main(["check", str(ROOT / "specs" / "deepsets.eq"), "--backend", "triton"]) == 2
    assert "no Triton kernels" in capsys.readouterr().err


_IMAGE_SPEC = """
model Img {
    input img : 2 @grid
    h = conv2d(img, kernel = 5, approximate = true) -> (2 + V + freq(2))
    h = gate(linear(h) -> (2 + 2 + V + freq(2))) -> (2 + V + freq(2))
    output s : 5 @graph = global_pool(concat(linear(h) -> 1, norm(h)))
}
"""


@pytest.mark.parametrize("group", ["group G = SO(2)", "group G = O(2)", "group C8"])
def test_approximate_image_models_of_planar_groups(tmp_path, group, capsys):
    from eqdsl import cli
    from eqdsl.testing import approximate_errors
    spec = tmp_path / "img.eq"
    spec.write_text(group + "\n" + _IMAGE_SPEC)
    cls = eqdsl.compile_file(spec).model_class()
    torch.manual_seed(0)
    model = cls().double()
    assert max(equivariance_errors(model, np.random.default_rng(0)).values()) < 1e-9  # exact on the grid's symmetries
    assert 1e-6 < approximate_errors(model, np.random.default_rng(0))["s"] < 0.2
    assert cli.main(["check", str(spec)]) == 0
    assert "approximately equivariant" in capsys.readouterr().out


def test_pixelwise_models_of_continuous_groups_are_checked_on_the_grid_symmetries(tmp_path):
    spec = tmp_path / "pix.eq"
    spec.write_text("group G = SO(2)\nmodel Pix {\n    input img : V + 1 @grid\n"
                    "    output out = linear(img) -> (V + 2)\n}\n")
    cls = eqdsl.compile_file(spec).model_class()
    torch.manual_seed(0)
    assert max(equivariance_errors(cls().double(), np.random.default_rng(0), trials=4).values()) < 1e-12
