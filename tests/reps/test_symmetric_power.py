"""The product basis of the symmetric contraction: equivariant, symmetric in its slots, orthogonal, of
the dimension character theory gives, and the same every time it is built."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdsl.groups import O3, SO3
from eqdsl.reps import so3
from eqdsl.reps import symmetric_power
from eqdsl.reps.irreps import Irreps
from eqdsl.reps.symmetric_power import symmetric_basis


def irs(text, g=O3):
    return tuple(m.ir for m in Irreps.parse(text, g))


def contract(U, a):
    for _ in range(U.ndim - 2):
        U = np.einsum("n...dm,d->n...m", U, a)
    return U


@pytest.mark.parametrize("V,nu,expected", [
    ("1x1o", 2, {"0e": 1, "1e": 0, "2e": 1}),                        # Sym^2(1) = 0 + 2
    ("1x0e+1x1o", 2, {"0e": 2, "1o": 1, "1e": 0, "2e": 1}),
    ("1x0e+1x1o+1x2e+1x3o", 3, {"0e": 8}),                           # counted by hand, term by term
    ("1x1o", 3, {"1o": 1, "3o": 1, "0e": 0, "2o": 0}),                # Sym^3(1) = 1 + 3
])
def test_dimensions(V, nu, expected):
    for L, n in expected.items():
        assert symmetric_basis(O3, irs(V), irs("1x" + L)[0], nu).shape[0] == n, L


@settings(max_examples=25, deadline=None)
@given(st.sets(st.sampled_from(["0e", "1o", "1e", "2e", "2o"]), min_size=1, max_size=3),
       st.sampled_from(["0e", "1o", "1e", "2e", "2o", "3o"]), st.integers(1, 3), st.integers(0, 10_000))
def test_bases_are_equivariant_symmetric_and_orthogonal(V, L, nu, seed):
    V = "+".join(f"1x{ir}" for ir in sorted(V))
    out = irs("1x" + L)[0]
    U = symmetric_basis(O3, irs(V), out, nu)
    if U.shape[0] == 0:
        return
    rng = np.random.default_rng(seed)
    R = so3.random_orthogonal(rng)
    DV, DL = so3.irreps_D(Irreps.parse(V, O3), R), so3.irreps_D(Irreps.parse("1x" + L, O3), R)
    a = rng.normal(size=DV.shape[0])
    assert np.abs(contract(U, DV @ a) - contract(U, a) @ DL.T).max() < 1e-10
    for i in range(1, nu):
        assert np.abs(U - np.swapaxes(U, i, i + 1)).max() < 1e-12
    flat = U.reshape(len(U), -1)
    assert np.allclose(flat @ flat.T, out.dim * np.eye(len(U)), atol=1e-10)


def test_the_basis_is_the_same_when_built_again():
    args = (O3, irs("1x0e+1x1o+1x2e"), irs("1x1o")[0], 3)
    first = symmetric_basis(*args).copy()
    symmetric_basis.cache_clear()
    symmetric_power._couplings.cache_clear()
    assert np.array_equal(symmetric_basis(*args), first)


def test_so3_has_no_parity():
    U = symmetric_basis(SO3, irs("1x1", SO3), irs("1x1", SO3)[0], 2)  # Sym^2(1) = 0 + 2: no 1
    assert U.shape[0] == 0
    assert symmetric_basis(SO3, irs("1x1", SO3), irs("1x2", SO3)[0], 2).shape[0] == 1


def _chi(ls_parities, theta, inversion, k=1):
    """Character of V at (rotation by k*theta, inversion**k)."""
    total = 0.0
    for l, p in ls_parities:
        t = k * theta
        rot = np.sin((l + 0.5) * t) / np.sin(0.5 * t)
        total = total + rot * (p ** k if inversion else 1)
    return total


def character_count(V: str, L: str, nu: int) -> int:
    """The multiplicity of L in Sym^nu(V) from characters (cycle index of S_nu), integrated over O(3)."""
    V_ = [(ir.l, ir.p) for ir in irs(V)]
    (Lir,) = irs("1x" + L)
    theta = (np.arange(4000) + 0.5) * np.pi / 4000  # midpoints: exact for these trigonometric polynomials
    total = 0.0
    for inversion in (False, True):
        c = [None] + [_chi(V_, theta, inversion, k) for k in (1, 2, 3)]
        sym = {1: c[1], 2: (c[1] ** 2 + c[2]) / 2, 3: (c[1] ** 3 + 3 * c[2] * c[1] + 2 * c[3]) / 6}[nu]
        chi_L = _chi([(Lir.l, Lir.p)], theta, inversion)
        total += np.mean(sym * chi_L * (1 - np.cos(theta)))  # Haar measure of SO(3) on the angle
    return int(round(total / 2))


@pytest.mark.parametrize("V", ["1x0e+1x1o+1x2e+1x3o", "1x1o+1x2e", "1x0e+1x1e+1x2o"])
@pytest.mark.parametrize("nu", [1, 2, 3])
def test_dimensions_agree_with_characters(V, nu):
    for L in ["0e", "0o", "1o", "1e", "2e", "2o", "3o", "3e", "4e"]:
        assert symmetric_basis(O3, irs(V), irs("1x" + L)[0], nu).shape[0] == character_count(V, L, nu), L
