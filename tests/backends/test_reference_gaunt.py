"""The Gaunt tensor product: its three algorithms give the same numbers and gradients, the product is the product
of the two functions on the sphere, it is equivariant (reflections included, for inputs of either overall
parity), the typing rules keep it to symmetric paths, and the cost model's choice is one of the algorithms."""
import numpy as np
import pytest
import torch

import eqdsl
from eqdsl.backends.reference import gaunt as rg
from eqdsl.compiler import check_file
from eqdsl.groups import GROUPS
from eqdsl.ir import cost, gaunt_rules
from eqdsl.reps import so3
from eqdsl.reps.irreps import Irreps

pytestmark = pytest.mark.usefixtures("float64_default")
LAYOUTS = [((0, 1, 2, 3), (0, 1, 2), (0, 1, 2, 3, 4), 3, 1), ((1, 2), (0, 2), (1, 2, 3), 2, 2), ((0,), (0, 1), (1,), 4, 1)]


def _inputs(la, lb, lo, c, cb, seed=0):
    g = torch.Generator().manual_seed(seed)
    da, db = sum(2 * l + 1 for l in la), sum(2 * l + 1 for l in lb)
    return (torch.randn(5, c * da, generator=g), torch.randn(5, cb * db, generator=g),
            torch.randn(5, c * (len(la) + len(lo)), generator=g))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_three_algorithms_give_the_same_numbers_and_gradients(layout):
    a, b, w = _inputs(*layout)
    results = {}
    for alg in gaunt_rules.ALGORITHMS:
        x, y, v = (t.clone().requires_grad_(True) for t in (a, b, w))
        out = rg.GauntProduct(*layout, alg, shared_weights=False)(x, y, v)
        out.backward(torch.ones_like(out))
        results[alg] = (out.detach(), x.grad, y.grad, v.grad)
    for alg in ("grid", "fourier"):
        for got, want in zip(results[alg], results["dense"]):
            assert torch.allclose(got, want, atol=1e-12 * float(want.abs().max() + 1)), alg


@pytest.mark.parametrize("alg", gaunt_rules.ALGORITHMS)
def test_gradcheck(alg):
    layout = ((0, 1, 2), (0, 1), (0, 1, 2), 2, 1)
    a, b, w = (t[:2].requires_grad_(True) for t in _inputs(*layout))
    layer = rg.GauntProduct(*layout, alg, shared_weights=False)
    assert torch.autograd.gradcheck(layer, (a, b, w))


def test_the_product_is_the_pointwise_product_of_the_two_functions():
    """With every output degree up to La + Lb and unit weights, sum_k out_k Y_k(s) = f_a(s) f_b(s) at any point."""
    la, lb = (0, 1, 2), (0, 1, 3)
    lo = tuple(range(6))
    a, b, _ = _inputs(la, lb, lo, 1, 1)
    w = torch.ones(1, len(la) + len(lo))
    out = rg.GauntProduct(la, lb, lo, 1, 1, "fourier", shared_weights=False)(a[:1], b[:1], w)
    s = torch.as_tensor(so3.random_rotation(np.random.default_rng(0)))  # three random unit vectors as rows
    ya, yb, yo = (torch.as_tensor(rg._harmonics(ls, s.numpy())) for ls in (la, lb, lo))
    assert torch.allclose(yo @ out[0], (ya @ a[0]) * (yb @ b[0]), atol=1e-11)


def _D(irreps: str, R: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(so3.irreps_D(Irreps.parse(irreps, GROUPS["O3"]), R[None])[0])


@pytest.mark.parametrize("a_irreps,b_irreps,out_irreps", [
    ("2x0e + 2x1o + 2x2e", "1x0e + 1x1o", "2x0e + 2x1o + 2x2e + 2x3o"),
    ("2x0o + 2x1e + 2x2o", "1x0e + 1x1o + 1x2e", "2x0o + 2x1e + 2x2o"),     # a of odd overall parity
    ("2x0o + 2x1e", "2x0o + 2x1e", "2x0e + 2x1o + 2x2e"),                   # both odd: the output is natural
])
def test_equivariant_under_rotations_and_reflections(a_irreps, b_irreps, out_irreps):
    g = GROUPS["O3"]
    A, B, O = (Irreps.parse(t, g) for t in (a_irreps, b_irreps, out_irreps))
    la, lb, lo = (tuple(m.ir.l for m in X) for X in (A, B, O))
    c, cb = A[0].mul, B[0].mul
    layer = rg.GauntProduct(la, lb, lo, c, cb, "grid", shared_weights=False)
    a, b, w = torch.randn(4, A.dim), torch.randn(4, B.dim), torch.randn(4, c * (len(la) + len(lo)))
    for R in (so3.random_rotation(np.random.default_rng(1)), -so3.random_rotation(np.random.default_rng(2))):
        moved = layer(a @ _D(a_irreps, R).T, b @ _D(b_irreps, R).T, w)
        assert torch.allclose(moved, layer(a, b, w) @ _D(out_irreps, R).T, atol=1e-12)


def test_a_wrong_output_parity_would_break_equivariance():
    """The check above can fail: the same numbers labelled 1e instead of 1o do not turn right under -I."""
    layer = rg.GauntProduct((1,), (0,), (1,), 1, 1, "dense", shared_weights=False)
    a, b, w = torch.randn(2, 3), torch.randn(2, 1), torch.ones(2, 2)
    R = -np.eye(3)
    assert not torch.allclose(layer(a @ _D("1x1o", R).T, b, w), layer(a, b, w) @ _D("1x1e", R).T)


def _check(tmp_path, body: str, group: str = "O3"):
    path = tmp_path / "g.eq"
    path.write_text(f"group {group}\nmodel Net {{\n{body}\n}}\n")
    return check_file(path)


@pytest.mark.parametrize("body,code,words", [
    ("input v : 4x1o @node\n output y : 4x1e @node = tensor_product(v, v, mode = gaunt) -> 4x1e", "E0211",
     "antisymmetric"),
    ("input v : 4x0e + 4x1e @node\n output y : 4x0e @node = tensor_product(v, v, mode = gaunt) -> 4x0e", "E0211",
     "one function on the sphere"),
    ("input v : 4x0e + 2x1o @node\n output y : 4x0e @node = tensor_product(v, v, mode = gaunt) -> 4x0e", "E0208",
     "distinct degrees"),
    ("input v : 4x0e + 4x1o @node\n output y : 4x0e @node = tensor_product(v, v, mode = uvw, algorithm = grid) -> 4x0e",
     "E0104", "Gaunt"),
])
def test_typing_rules(tmp_path, body, code, words):
    result = _check(tmp_path, body)
    assert not result.ok
    assert result.diagnostics[0].code == code
    text = " ".join([result.diagnostics[0].message, *result.diagnostics[0].notes, result.diagnostics[0].label or ""])
    assert words in text, text


def test_so3_gaunt_products_have_no_odd_paths(tmp_path):
    bad = _check(tmp_path, "input v : 4x1 @node\n output y : 4x1 @node = tensor_product(v, v, mode = gaunt) -> 4x1", "SO3")
    assert [d.code for d in bad.diagnostics] == ["E0211"]
    ok = _check(tmp_path, "input v : 4x1 @node\n output y : 4x0 + 4x2 @node = tensor_product(v, v, mode = gaunt) -> "
                          "(4x0 + 4x2)", "SO3")
    assert ok.ok, [d.message for d in ok.diagnostics]


def test_auto_takes_the_cheapest_algorithm_by_the_cost_model(tmp_path):
    for L in (1, 6):
        ls = " + ".join(f"8x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(L + 1))
        path = tmp_path / f"auto{L}.eq"
        path.write_text(f"group O3\nmodel Net {{\n input v : {ls} @node\n"
                        f" output y : {ls} @node = tensor_product(v, v, mode = gaunt) -> ({ls})\n}}\n")
        cls = eqdsl.compile_file(path).model_class()
        layer = next(m for m in cls().modules() if isinstance(m, rg.GauntProduct))
        plan = {"la": tuple(range(L + 1)), "lb": tuple(range(L + 1)), "lo": tuple(range(L + 1)), "channels": 8,
                "b_channels": 8}
        assert layer.algorithm == min(gaunt_rules.ALGORITHMS, key=lambda a: cost.gaunt(plan, a)["flops"])


def test_a_gaunt_model_compiles_checks_and_reports(tmp_path, capsys):
    spec = tmp_path / "gm.eq"
    spec.write_text("""group O3
rep F = 8x0e + 8x1o + 8x2e
model GauntNet(cutoff = 4.0) {
    input z : 4x0e @node
    input pos : position @node
    input edges : graph
    r = pos[src] - pos[dst]
    Y = spherical_harmonics(r, lmax = 2)
    h = linear(z) -> 8x0e
    m = tensor_product(h[src], Y, weights = mlp(bessel(norm(r), n = 8, cutoff = cutoff), 16), mode = gaunt) -> F
    h = linear(scatter_sum(m, dst)) -> F
    output e : 0e @graph = sum_nodes(linear(h) -> 1x0e)
    output f : 1o @node = linear(h) -> 1x1o
}
""")
    from eqdsl.cli import main
    assert main(["check", str(spec)]) == 0
    assert main(["compile", str(spec), "--report", "-o", str(tmp_path / "gm.py")]) == 0
    out = capsys.readouterr().out
    assert "tensor_product (gaunt)" in out and "GauntProduct" in out


def test_eqc_bench_strategies_runs_checks_and_writes_its_table(tmp_path, capsys):
    pytest.importorskip("e3nn")
    from eqdsl.cli import main
    md, js = tmp_path / "s.md", tmp_path / "s.json"
    assert main(["bench", "--strategies", "--lmax", "1,2", "--batch", "40", "--repeat", "1", "--warmup", "0",
                 "--device", "cpu", "--rank", "5", "--markdown", str(md), "--json", str(js)]) == 0
    text = md.read_text()
    assert "| 2 | 11 |" in text and "e3nn-cg" in text and "gaunt-fourier" in text and "cp-rank-5" in text
    import json
    rows = json.loads(js.read_text())["rows"]
    assert all(r["agreement"] < 1e-5 for r in rows)  # the three algorithms agree (float32)
    with pytest.raises(SystemExit, match="--lmax"):
        main(["bench", "--strategies", "--lmax", "x", "--device", "cpu"])
