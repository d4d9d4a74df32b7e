"""MACE's layers on Triton kernels (``backends/layers.py``): the symmetric contraction's generated kernels
(``backends/triton/contraction*.py``) and ``linear(x, by = s)`` as a tensor product with the selector,
against the reference layers with the same weights: values, first and second derivatives (every input, the
selector's included), a generated model's energies, forces and training on forces.  Without a GPU the kernels
run in Triton's interpreter (see triton_interpreter.py), so problems are tiny."""
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triton_interpreter import (  # noqa: F401  (the fixtures apply by being imported here)
    DEVICE, INTERPRET, WRONG_MODE, WRONG_MODE_REASON, I, _cache_root, _interpreter, rel, run_compiler_script,
)

import eqdsl
from eqdsl.backends.layers import SelectedLinearLayer, SymmetricContractionLayer
from eqdsl.backends.reference import Linear
from eqdsl.backends.triton import contraction, contraction_codegen, kernel_cache
from eqdsl.groups.o3 import O3

if WRONG_MODE:
    pytest.skip(WRONG_MODE_REASON + " (pytest tests/backends/test_triton_contraction.py)", allow_module_level=True)

TOL = {torch.float64: 1e-12, torch.float32: 2e-5}


def pair(irreps_in, irreps_out, correlation, selectors, dtype=torch.float64, seed=0):
    """The same contraction on both backends (one state dict)."""
    torch.manual_seed(seed)
    ref = SymmetricContractionLayer(O3, I(irreps_in), I(irreps_out), correlation, selectors, backend="reference")
    tri = SymmetricContractionLayer(O3, I(irreps_in), I(irreps_out), correlation, selectors, backend="triton")
    tri.load_state_dict(ref.state_dict())
    return ref.to(DEVICE, dtype), tri.to(DEVICE, dtype)


def selector_of(kind: str, n: int, k: int, dtype):
    if k == 0:
        return None
    if kind == "one-hot":
        return torch.nn.functional.one_hot(torch.randint(0, k, (n,)), k).to(DEVICE, dtype)
    return torch.rand(n, k, dtype=dtype, device=DEVICE).requires_grad_(True)  # any invariant, differentiated


def derivatives(module, x, s, g, h):
    """y, its gradients by every input (x, weights, selector) given g, and their gradients given h."""
    y = module(x, s) if s is not None else module(x)
    ins = [x, *module.parameters()] + ([s] if s is not None and s.requires_grad else [])
    first = torch.autograd.grad(y, ins, g, create_graph=True)
    second = torch.autograd.grad(sum((a * b).sum() for a, b in zip(first, h(first))), ins, allow_unused=True)
    return [y, *first, *second]


@pytest.mark.parametrize("selectors,kind", [(0, None), (3, "one-hot"), (3, "general")])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_contraction_matches_the_reference(selectors, kind, dtype):
    ref, tri = pair("3x0e+3x1o+3x2e", "3x0e+3x1o+3x2e", 3, selectors, dtype)
    n = 37  # not a multiple of the row block
    x = torch.randn(n, ref.irreps_in.dim, dtype=dtype, device=DEVICE, requires_grad=True)
    s = selector_of(kind, n, selectors, dtype)
    g = torch.randn(n, ref.irreps_out.dim, dtype=dtype, device=DEVICE)
    torch.manual_seed(1)
    hs = None

    def h(first):
        nonlocal hs
        if hs is None:
            hs = [torch.randn_like(a) for a in first]
        return hs
    for a, b in zip(derivatives(tri, x, s, g, h), derivatives(ref, x, s, g, h)):
        assert (a is None) == (b is None)
        if a is not None:
            assert rel(a, b) < TOL[dtype]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lmax=st.integers(0, 2), out_l=st.integers(0, 2), correlation=st.integers(1, 3),
       selectors=st.integers(0, 3), channels=st.integers(1, 5), rows=st.integers(1, 20), seed=st.integers(0, 99))
def test_contraction_matches_the_reference_on_random_shapes(lmax, out_l, correlation, selectors, channels, rows,
                                                             seed):
    irreps_in = "+".join(f"{channels}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(lmax + 1))
    irreps_out = f"{channels}x{out_l}{'e' if out_l % 2 == 0 else 'o'}"
    try:
        ref, tri = pair(irreps_in, irreps_out, correlation, selectors, seed=seed)
    except ValueError:  # no contraction of this order reaches the output irrep
        return
    x = torch.randn(rows, ref.irreps_in.dim, dtype=torch.float64, device=DEVICE, requires_grad=True)
    s = selector_of("general", rows, selectors, torch.float64)
    ins = [x, *ref.parameters()] + ([s] if s is not None else [])
    y_ref, y_tri = (m(x, s) if s is not None else m(x) for m in (ref, tri))
    assert rel(y_tri, y_ref) < 1e-12
    g = torch.randn_like(y_ref)
    grads_ref = torch.autograd.grad(y_ref, ins, g)
    grads_tri = torch.autograd.grad(y_tri, [x, *tri.parameters()] + ([s] if s is not None else []), g)
    for a, b in zip(grads_tri, grads_ref):
        assert rel(a, b) < 1e-12


def test_contraction_gradcheck_and_gradgradcheck():
    ref, tri = pair("1x0e+1x1o", "1x0e+1x1o", 3, 2)
    x = torch.randn(3, tri.irreps_in.dim, dtype=torch.float64, device=DEVICE, requires_grad=True)
    s = torch.rand(3, 2, dtype=torch.float64, device=DEVICE, requires_grad=True)
    w = contraction.weights(tri).detach().requires_grad_(True)
    form = contraction._form(tri)
    plan = contraction._Plan(form, "float64")

    def f(x, w, s):
        return contraction._SCOp.apply(plan, "y", 0, x, w, s)
    assert torch.autograd.gradcheck(f, (x, w, s))
    assert torch.autograd.gradgradcheck(f, (x, w, s))


def test_operations_split_into_several_kernels_write_every_part(monkeypatch):
    """With a small limit of monomials per kernel every operation is several kernels, each writing its own
    components / weights (outputs start uninitialised) or its own partial sum of the selector's gradient."""
    monkeypatch.setattr(contraction_codegen, "MAX_MONOMIALS_PER_KERNEL", 15)
    ref, tri = pair("2x0e+2x1o+2x2e", "2x0e+2x1o", 3, 2)
    plan = contraction._Plan(contraction._form(tri), "float64")
    for target, p in contraction.WORKLOADS["forces_training"] + contraction.WORKLOADS["selector"]:
        assert len(plan.kernels(target, p)) > 1, (target, p)
    x = torch.randn(19, tri.irreps_in.dim, dtype=torch.float64, device=DEVICE, requires_grad=True)
    s = torch.rand(19, 2, dtype=torch.float64, device=DEVICE, requires_grad=True)
    w = contraction.weights(ref).detach().requires_grad_(True)
    y = contraction._SCOp.apply(plan, "y", 0, x, w, s)
    y_ref = ref(x, s)
    assert rel(y, y_ref) < 1e-12
    g = torch.randn_like(y)
    first = torch.autograd.grad(y, [x, w, s], g, create_graph=True)
    params = list(ref.parameters())  # registered per output block and order: the order weights() concatenates
    gx, *gw, gs = torch.autograd.grad(y_ref, [x, *params, s], g, create_graph=True)
    first_ref = (gx, torch.cat(gw, dim=1), gs)
    for a, b in zip(first, first_ref):
        assert rel(a, b) < 1e-12
    (xx,) = torch.autograd.grad(first[0].pow(2).sum(), x)
    (xx_ref,) = torch.autograd.grad(first_ref[0].pow(2).sum(), x)
    assert rel(xx, xx_ref) < 1e-12


def test_derivatives_past_the_degree_are_zero():
    """Correlation 2: the third derivative by x vanishes; the family returns zeros without a kernel."""
    _, tri = pair("2x0e+2x1o", "2x0e", 2, 0)
    x = torch.randn(4, tri.irreps_in.dim, dtype=torch.float64, device=DEVICE, requires_grad=True)
    v = torch.randn_like(x)
    (g1,) = torch.autograd.grad(tri(x).sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad((g1 * v).sum(), x, create_graph=True)
    (g3,) = torch.autograd.grad((g2 * v).sum(), x, allow_unused=True, materialize_grads=True)
    assert torch.count_nonzero(g3) == 0
    assert torch.count_nonzero(g2) > 0


def test_only_nonzero_basis_entries_become_code():
    _, tri = pair("1x0e+1x1o+1x2e", "1x1o", 3, 0)
    form = contraction._form(tri)
    src = contraction_codegen.generate(contraction_codegen.ContractionKey(form, "float64", "y", 0))
    products = sum(ln.count(" + ") + 1 for ln in src.splitlines() if ln.strip().startswith("y0_") and "+=" in ln)
    stored = sum(len(entries) for _, _, _, entries in form.blocks[0])  # nonzero sorted tuples (eta, t, m)
    assert products == stored  # one monomial per stored entry, none for the zeros
    full = sum(tri._exact[f"basis_0_{k}"].size for k in tri._orders[0])
    assert stored < full / 5
    compile(src, "<generated>", "exec")


def test_contraction_errors():
    _, tri = pair("2x0e+2x1o", "2x0e", 2, 2)
    x = torch.randn(3, tri.irreps_in.dim, dtype=torch.float64, device=DEVICE)
    with pytest.raises(ValueError, match="takes a selector"):
        tri(x)
    with pytest.raises(ValueError, match="expected 2 columns"):
        tri(x, torch.ones(3, 3, dtype=torch.float64, device=DEVICE))
    with pytest.raises(TypeError, match="float32 and float64"):
        tri.half()(x.half(), torch.ones(3, 2, dtype=torch.float16, device=DEVICE))
    with pytest.raises(ValueError, match="backend must be one of"):
        SymmetricContractionLayer(O3, I("2x0e"), I("2x0e"), 2, backend="cuda")


@pytest.mark.skipif(not INTERPRET, reason="CPU tensors without the interpreter")
def test_contraction_on_the_cpu_without_the_interpreter_raises(monkeypatch):
    _, tri = pair("2x0e+2x1o", "2x0e", 2, 0)
    _, lin = linear_pair("2x0e", "1x0e", 2, False)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(kernel_cache.TritonUnavailable, match="TRITON_INTERPRET.*backend='reference'"):
        tri(torch.randn(3, tri.irreps_in.dim, dtype=torch.float64))
    with pytest.raises(kernel_cache.TritonUnavailable, match="TRITON_INTERPRET.*backend='reference'"):
        lin(torch.randn(3, 2, dtype=torch.float64), torch.ones(3, 2, dtype=torch.float64))


def test_contraction_kernels_compile_for_sm90_without_a_gpu(tmp_path):
    """Every kernel a training step on forces launches (the jobs compiled ahead on a GPU), through the real
    compiler down to sm_90 cubins (the interpreter is lenient about types of loop-carried values); in a
    subprocess whose triton is compiled."""
    script = ("""
        import torch
        from eqdsl.backends.layers import SymmetricContractionLayer
        from eqdsl.backends.triton import contraction, precompile
        from eqdsl.groups.o3 import O3
        from eqdsl.reps.irreps import Irreps
        I = lambda s: Irreps.parse(s, O3)
        n = 0
        for selectors, dtype in ((3, torch.float32), (0, torch.float64)):
            layer = SymmetricContractionLayer(O3, I("4x0e+4x1o+4x2e"), I("4x0e+4x1o"), 3, selectors)
            plan = contraction._Plan(contraction._form(layer), str(dtype).split(".")[1])
            jobs = plan.jobs("forces_training", dtype, 100) + plan.jobs("selector", dtype, 100)
            for job, _, k in precompile.compile_offline(jobs, 90, 2):
                assert len(k.asm["cubin"]) > 0, job.name
                n += 1
            assert {j.name for j in jobs} >= {f"sc_{t}_{p}__0" for t, p in contraction.WORKLOADS["forces_training"]}
        print("compiled", n)
    """)
    r = run_compiler_script(tmp_path, script)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split()[0] == "compiled" and int(r.stdout.split()[1]) >= 2 * 6 + 2


# -- linear(x, by = s) ---------------------------------------------------------------------------------

def linear_pair(irreps_in, irreps_out, k, bias, dtype=torch.float64):
    torch.manual_seed(0)
    maps = [Linear(I(irreps_in), I(irreps_out), bias=bias) for _ in range(k)]
    ref = SelectedLinearLayer(O3, maps, backend="reference")
    with torch.no_grad():
        for p in ref.parameters():  # biases away from zero
            p.add_(0.1 * torch.randn_like(p))
    tri = SelectedLinearLayer(O3, [Linear(I(irreps_in), I(irreps_out), bias=bias) for _ in range(k)], backend="triton")
    tri.load_state_dict(ref.state_dict())
    return ref.to(DEVICE, dtype), tri.to(DEVICE, dtype)


@pytest.mark.parametrize("kind", ["one-hot", "general"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_selected_linear_matches_the_reference(kind, dtype):
    ref, tri = linear_pair("3x0e+2x1o+1x2e+2x1o", "2x0e+3x1o+1x2e", 4, True, dtype)
    n = 21
    x = torch.randn(n, ref.maps[0].irreps_in.dim, dtype=dtype, device=DEVICE, requires_grad=True)
    s = selector_of(kind, n, 4, dtype)
    g = torch.randn(n, ref.maps[0].irreps_out.dim, dtype=dtype, device=DEVICE)
    hs = []

    def h(first):
        if not hs:
            hs.extend(torch.randn_like(a) for a in first)
        return hs
    for a, b in zip(derivatives(tri, x, s, g, h), derivatives(ref, x, s, g, h)):
        assert (a is None) == (b is None)
        if a is not None:
            assert rel(a, b) < TOL[dtype]


def test_selected_linear_path_weights_undo_the_coupling():
    """l (x) 0e -> l couples by the identity over sqrt(2l+1): the descriptor's path weight is the map's times that."""
    from eqdsl.backends.triton import selected_linear

    _, tri = linear_pair("2x0e+1x2e", "1x0e+2x2e", 2, False)
    desc = selected_linear.descriptor(tri)
    assert [p.weight_shape for p in desc.paths] == [(2, 2, 1), (1, 2, 2)]
    assert [p.path_weight for p in desc.paths] == [1 / math.sqrt(2), math.sqrt(5)]


def test_selected_linear_takes_irreps_maps_only():
    with pytest.raises(TypeError, match="irreps maps"):
        SelectedLinearLayer(O3, [torch.nn.Identity()], backend="triton")


# -- a generated model on both backends -------------------------------------------------------------------

SPEC = """group O3
model SC(cutoff = 4.0) {
    input species : 2x0e @node
    input pos     : position @node
    input edges   : graph
    r = pos[dst] - pos[src]
    Y = spherical_harmonics(r, lmax = 2)
    h = linear(species) -> 3x0e
    m = tensor_product(h[src], Y, weights = mlp(bessel(norm(r), n = 4, cutoff = cutoff), 8), mode = uvu, filter = 3x0e + 3x1o + 3x2e)
    A = scatter_sum(m, dst)
    B = symmetric_contraction(A, correlation = 3, by = species) -> (3x0e + 3x1o)
    s = linear(B, by = species) -> (2x0e + 1x1o)
    output energy : 0e @graph = sum_nodes(linear(s) -> 1x0e)
}
"""


def test_a_mace_like_model_runs_on_triton_with_the_reference_numbers(tmp_path, monkeypatch):
    path = tmp_path / "sc.eq"
    path.write_text(SPEC)
    cls = eqdsl.compile_file(path).model_class()
    torch.manual_seed(0)
    ref = cls(backend="reference").double().to(DEVICE)
    tri = cls(backend="triton").double().to(DEVICE)
    tri.load_state_dict(ref.state_dict())
    n = 5
    species = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 0, 1]), 2).double().to(DEVICE)
    pos = (torch.randn(n, 3, dtype=torch.float64) * 1.5).to(DEVICE).requires_grad_(True)
    edges = torch.tensor([[i, j] for i in range(n) for j in range(n) if i != j], device=DEVICE).T

    def step(model):
        out = model(species, pos, edges)
        forces = -torch.autograd.grad(out["energy"].sum(), pos, create_graph=True)[0]
        loss = out["energy"].pow(2).sum() + forces.pow(2).sum()
        return [out["energy"], forces, *torch.autograd.grad(loss, list(model.parameters()))]
    launched = set()
    launch = contraction._Plan.launch

    def recording(plan, target, p, operands):
        launched.add((target, p))
        return launch(plan, target, p, operands)
    monkeypatch.setattr(contraction._Plan, "launch", recording)
    for a, b in zip(step(tri), step(ref)):
        assert rel(a, b) < 1e-11
    # what a GPU compiles ahead for this workload is what it launches
    assert launched == set(contraction.WORKLOADS["forces_training"])
