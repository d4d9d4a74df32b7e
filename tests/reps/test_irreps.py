"""Property tests for Irreps (eqdsl.reps.irreps) and the O3/SO3 selection rules."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdsl.groups.o3 import O3, SO3, O3Irrep, SO3Irrep
from eqdsl.reps.irreps import Irreps, IrrepsSyntaxError, MulIr
from eqdsl.reps.so3 import wigner_3j

PROPS = settings(max_examples=60, deadline=None)

o3_irreps = st.builds(O3Irrep, st.integers(0, 7), st.sampled_from([1, -1]))
so3_irreps = st.builds(SO3Irrep, st.integers(0, 7))
muls = st.integers(0, 40)


def irreps_of(irrep_strategy, max_size=6):
    return st.lists(st.builds(MulIr, muls, irrep_strategy), max_size=max_size).map(lambda xs: Irreps(tuple(xs)))


o3_reps, so3_reps = irreps_of(o3_irreps), irreps_of(so3_irreps)
group_and_reps = st.one_of(o3_reps.map(lambda x: (O3, x)), so3_reps.map(lambda x: (SO3, x)))
group_and_pair = st.one_of(
    st.tuples(st.just(O3), o3_reps, o3_reps),
    st.tuples(st.just(SO3), so3_reps, so3_reps),
)


# --- string form ------------------------------------------------------------------


@PROPS
@given(group_and_reps)
def test_parse_str_round_trip(gx):
    group, x = gx
    assert Irreps.parse(str(x), group) == x
    # spacing around '+' and 'x' is allowed
    spaced = " + ".join(f"{m.mul} x {m.ir}" for m in x)
    assert Irreps.parse(spaced, group) == x


def test_parse_examples():
    assert Irreps.parse("32x0e+16x1o", O3) == Irreps.of([(32, O3Irrep(0, 1)), (16, O3Irrep(1, -1))])
    assert Irreps.parse("1o + 2e", O3) == Irreps.of([(1, O3Irrep(1, -1)), (1, O3Irrep(2, 1))])
    assert Irreps.parse("16x1+1x2", SO3) == Irreps.of([(16, SO3Irrep(1)), (1, SO3Irrep(2))])
    assert Irreps.parse("", O3) == Irreps(()) and Irreps.parse("  ", SO3).dim == 0
    assert str(Irreps.parse("0e+1o", O3)) == "1x0e+1x1o"


@pytest.mark.parametrize(
    "group,text,hint_has",
    [
        (SO3, "1o", "1"),  # parity under SO3: suggest `1` or `group O3`
        (SO3, "2x2e", "O3"),
        (O3, "1", "1e"),  # missing parity: suggest 1e / 1o
        (O3, "4x2", "2o"),
        (O3, "abc", "0e"),
        (SO3, "abc", "1x0"),
        (O3, "1o+", "MULxIRREP"),
        (O3, "2x", "0e"),
        (O3, "1x-1e", "0e"),
        (SO3, "1.5", "1x0"),
    ],
)
def test_parse_errors_have_hints(group, text, hint_has):
    with pytest.raises(IrrepsSyntaxError) as info:
        Irreps.parse(text, group)
    assert isinstance(info.value, ValueError)
    assert info.value.hint and hint_has in info.value.hint


# --- algebra ------------------------------------------------------------------------


@PROPS
@given(group_and_pair, st.integers(0, 5))
def test_dim_additivity_and_scaling(gab, n):
    _, a, b = gab
    assert (a + b).dim == a.dim + b.dim
    assert (a + b).num_irreps == a.num_irreps + b.num_irreps
    assert len(a + b) == len(a) + len(b)
    assert (a * n).dim == n * a.dim
    assert a.dim == sum(m.mul * m.ir.dim for m in a)


@PROPS
@given(group_and_reps)
def test_slices_tile_the_vector(gx):
    _, x = gx
    sl = x.slices()
    assert [s.stop - s.start for s in sl] == [m.dim for m in x]
    assert all(s.stop == t.start for s, t in zip(sl, sl[1:]))
    assert (sl[-1].stop if sl else 0) == x.dim


@PROPS
@given(group_and_reps)
def test_simplify(gx):
    _, x = gx
    s = x.simplify()
    assert s.dim == x.dim
    assert s.simplify() == s
    assert all(m.mul > 0 for m in s)
    assert all(u.ir != v.ir for u, v in zip(s.items, s.items[1:]))
    assert all(s.count(ir) == x.count(ir) for ir in x.irreps_set())


@PROPS
@given(group_and_reps)
def test_sort_is_a_stable_permutation(gx):
    _, x = gx
    srt, p, inv = x.sort()
    assert sorted(inv) == list(range(len(x))) and sorted(p) == list(range(len(x)))
    assert all(srt[i] == x[inv[i]] for i in range(len(x)))
    assert all(inv[p[j]] == j for j in range(len(x)))
    keys = [m.ir for m in srt]
    assert keys == sorted(keys)
    # stable: equal irreps keep their relative order
    for i in range(len(x) - 1):
        if srt[i].ir == srt[i + 1].ir:
            assert inv[i] < inv[i + 1]
    assert srt.dim == x.dim


@PROPS
@given(group_and_reps)
def test_regroup_one_block_per_irrep(gx):
    _, x = gx
    r = x.regroup()
    irs = [m.ir for m in r]
    assert len(irs) == len(set(irs)) and irs == sorted(irs)
    assert all(r.count(ir) == x.count(ir) for ir in x.irreps_set() if x.count(ir) > 0)
    assert r.dim == x.dim


def test_o3_sort_order_matches_e3nn():
    """Within a degree, odd before even (e3nn sorts Irrep by (l, p) with p = -1 < 1)."""
    x = Irreps.parse("1e+0e+1o+0o+2e", O3)
    assert str(x.sort()[0]) == "1x0o+1x0e+1x1o+1x1e+1x2e"


# --- selection rules ------------------------------------------------------------------


def _check_product(group, a, b):
    out = group.product(a, b)
    assert [ir.l for ir in out] == list(range(abs(a.l - b.l), a.l + b.l + 1))
    assert all(ir.p == a.p * b.p for ir in out)
    assert sum(ir.dim for ir in out) == a.dim * b.dim
    assert out == sorted(out) and len(set(out)) == len(out)
    return out


@PROPS
@given(o3_irreps, o3_irreps)
def test_o3_product_selection_rule(a, b):
    out = _check_product(O3, a, b)
    assert all(isinstance(ir, O3Irrep) for ir in out)
    note = O3.selection_note(a, b)
    assert str(a) in note and str(b) in note


@PROPS
@given(so3_irreps, so3_irreps)
def test_so3_product_selection_rule(a, b):
    out = _check_product(SO3, a, b)
    assert all(isinstance(ir, SO3Irrep) for ir in out)


@PROPS
@given(group_and_pair)
def test_product_dimension_of_irreps(gab):
    group, a, b = gab
    total = sum(m1.mul * m2.mul * ir.dim for m1 in a for m2 in b for ir in group.product(m1.ir, m2.ir))
    assert total == a.dim * b.dim


@pytest.mark.parametrize("l1", range(5))
@pytest.mark.parametrize("l2", range(5))
def test_selection_rule_matches_coupling_coefficients(l1, l2):
    """An output degree is allowed exactly when a nonzero 3j tensor exists."""
    allowed = {ir.l for ir in SO3.product(SO3Irrep(l1), SO3Irrep(l2))}
    for l3 in range(l1 + l2 + 3):
        if l3 in allowed:
            assert abs(float((wigner_3j(l1, l2, l3) ** 2).sum()) - 1.0) < 1e-12
        else:
            with pytest.raises(ValueError):
                wigner_3j(l1, l2, l3)


def test_harmonics_irreps():
    assert str(Irreps.harmonics(O3, 3)) == "1x0e+1x1o+1x2e+1x3o"
    assert str(Irreps.harmonics(SO3, 2)) == "1x0+1x1+1x2"
    assert Irreps.harmonics(O3, 4).dim == 25


def test_misc_queries():
    x = Irreps.parse("2x0e+1o+3x0e+0o", O3)
    assert x.lmax == 1 and x.count(O3Irrep(0, 1)) == 5
    assert x.irreps_set() == [O3Irrep(0, 1), O3Irrep(1, -1), O3Irrep(0, -1)]
    assert x.filter([O3Irrep(0, 1)]) == Irreps.parse("2x0e+3x0e", O3)
    assert x.filter(lambda ir: ir.l == 1) == Irreps.parse("1o", O3)
    assert Irreps.parse("3x0e+0o", O3).is_scalar() and not x.is_scalar()
    assert Irreps.parse("3x0e", O3).is_invariant() and not Irreps.parse("0o", O3).is_invariant()
    assert Irreps.parse("2x0", SO3).is_invariant()
    with pytest.raises(ValueError):
        Irreps(()).lmax
    assert [mul for mul, _ in x] == [2, 1, 3, 1]


def test_a_descriptor_pickled_in_another_process_hashes_as_here():
    """TensorProductDescriptor caches its hash; string hashes differ between processes (PYTHONHASHSEED), so an
    unpickled descriptor must recompute it, or plan and kernel caches keyed by descriptors miss or collide."""
    import os
    import pickle
    import subprocess
    import sys

    from eqdsl.reps import tp

    made_here = tp.describe(O3, Irreps.parse("2x0e+1x1o", O3), Irreps.parse("0e+1o", O3), "uvu")
    source = ("import pickle, sys\nfrom eqdsl.groups.o3 import O3\nfrom eqdsl.reps import tp\n"
              "from eqdsl.reps.irreps import Irreps\n"
              "d = tp.describe(O3, Irreps.parse('2x0e+1x1o', O3), Irreps.parse('0e+1o', O3), 'uvu')\n"
              "sys.stdout.buffer.write(pickle.dumps(d))\n")
    out = subprocess.run([sys.executable, "-c", source], capture_output=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout
    made_there = pickle.loads(out)
    assert made_there == made_here and hash(made_there) == hash(made_here)
    assert {made_here: 1}[made_there] == 1
    assert made_there.weight_numel == made_here.weight_numel
