"""How matrix groups (cyclic, dihedral, symmetric, Lorentz, SL(n), groups by generators) answer the
typing rules' questions.

Values carry a ``eqdsl.reps.matrix_reps.Rep``.  Where irreps groups read off selection rules, these
answers ask the numerical representation algebra: a linear or bilinear map exists when the equivariance
constraint has solutions (``eqdsl.reps.solve``), pointwise functions are allowed on permutation
representations (regular, permutation, scalars), norms on orthogonal ones.  Loads numpy and scipy, so
``ops.family_rules`` imports it only when such a group is used.

``RULES`` implements ``type_rules.FamilyRules``; the ops only this family has (bilinear, inner,
group_pool, conv2d, the image pools) keep their rule here under their own name.
"""
from __future__ import annotations

from ..reps import matrix_properties
from ..reps.matrix_reps import Rep, Tensor, Trivial, direct_sum, scalars
from .type_rules import FamilyRules, TypeRuleError, need_tensor, same_placement
from .types import ValueType, same_rep, tensor

# Solving a constraint with more unknowns than this is refused at compile time.
MAX_SOLVE_ENTRIES = 4_000_000


def blocks_text(rep: Rep, idx: list[int]) -> str:
    """Output blocks by index, repeated ones counted: `16 copies of scalar`, `V**2`."""
    bl = matrix_properties.blocks(rep)
    counts: dict = {}
    for i in idx:
        counts[bl[i]] = counts.get(bl[i], 0) + 1
    return ", ".join(f"`{b}`" if n == 1 else f"{n} copies of `{b}`" for b, n in counts.items())


def _contains_note(rep: Rep, what: str) -> list[str]:
    """Which irreps `rep` contains (planar groups: analytic irreps; other finite groups: their characters)."""
    found = matrix_properties.contained_irreps(rep)
    if found is None:
        return []
    return [f"irreps in {what}: {', '.join(str(ir) for ir in found) or 'none listed'}"]


def _need_scalars(t: ValueType, where: str, what: str, code: str = "E0305") -> None:
    need_tensor(t, where)
    if not matrix_properties.is_scalars(t.rep):
        bad = list(dict.fromkeys(str(b) for b in matrix_properties.blocks(t.rep) if not isinstance(b, Trivial)))
        raise TypeRuleError(code, f"{what} must be invariant scalars, got `{t.rep}`", where,
                            f"not invariant: {', '.join(bad)}",
                            hints=["make them invariant first, e.g. with inner(x, x), norm(x) or group_pool(x)"])


def _solvable(rep_in: Rep, rep_out: Rep, where: str) -> None:
    n = rep_in.size * rep_out.size
    if n > MAX_SOLVE_ENTRIES:
        raise TypeRuleError("E0108", f"an equivariant map `{rep_in}` -> `{rep_out}` has {n} entries, "
                            f"more than {MAX_SOLVE_ENTRIES} the compiler solves for", where, "too large",
                            hints=["use fewer or smaller channels"])


def _check_bias(g, out: Rep, attrs: dict) -> None:
    """A bias is a learned invariant vector: the output needs one."""
    if attrs.get("bias") and not matrix_properties.basis_count(Trivial(g), out):
        raise TypeRuleError("E0201", "bias needs an invariant direction in the output", "bias",
                            f"`{out}` has no vector fixed by {g.name}", hints=["drop `bias = true`"])


def _check_orthogonal(rep: Rep, where: str, what: str, g) -> None:
    if not matrix_properties.is_orthogonal_rep(rep):
        raise TypeRuleError("E0306", f"{what} of `{rep}` is not invariant under {g.name}", where,
                            "this representation does not preserve Euclidean lengths",
                            notes=[f"{g.name} acts on `{rep}` by matrices that are not orthogonal"],
                            hints=["use inner(x, x): it contracts with the group's invariant form "
                                   "(the Minkowski metric for the Lorentz group)"])


def _per_block(g, rep: Rep) -> Rep:
    return scalars(g, len(matrix_properties.blocks(rep)))


def _need_grid(x: ValueType, what: str) -> None:
    if x.placement != "grid":
        raise TypeRuleError("E0504", f"{what} works on images (@grid values), this is @{x.placement}", "x",
                            f"@{x.placement}", hints=["declare image inputs with @grid: input img : 3 @grid"])


def _grid_reason(g) -> str | None:
    from ..reps.grid import grid_group_ok
    return grid_group_ok(g)


class MatrixRules(FamilyRules):
    def guard(self, rule, g, ins, attrs):
        try:
            return rule(g, ins, attrs)
        except matrix_properties.TooLargeToSolve as err:
            raise TypeRuleError("E0108", str(err), "out" if attrs.get("out") is not None else None,
                                "too large to solve", hints=["split the representation into smaller blocks: "
                                                             "fewer tensor-power factors per block"]) from None

    def need_invariant(self, t: ValueType, where: str, what: str, code: str = "E0305") -> None:
        _need_scalars(t, where, what, code)

    def check_max(self, x: ValueType, what: str) -> None:
        if not matrix_properties.is_permutation_rep(x.rep):
            raise TypeRuleError("E0503", f"{what} over `{x.rep}` is not equivariant", "x",
                                "the group mixes these components",
                                notes=["a componentwise maximum commutes with the group only when it permutes components "
                                       "(scalars, regular and permutation representations)"],
                                hints=["use sum or mean"])

    def linear_map(self, g, rep_in: Rep, out: Rep) -> dict:
        _solvable(rep_in, out, "out")
        missing = matrix_properties.unreachable_blocks(rep_in, out)
        if missing:
            raise TypeRuleError("E0201", f"no equivariant linear map reaches {blocks_text(out, missing)} from `{rep_in}`",
                                "out", "the equivariance constraint has only the zero solution here",
                                notes=["Schur's lemma: a linear map commuting with the group only connects "
                                       "equivalent pieces of the representations",
                                       f"input blocks: {', '.join(dict.fromkeys(f'`{b}`' for b in matrix_properties.blocks(rep_in)))}"]
                                + _contains_note(rep_in, "the input")
                                + _contains_note(matrix_properties.blocks(out)[missing[0]], f"`{matrix_properties.blocks(out)[missing[0]]}`"),
                                hints=["create new representations with bilinear(a, b) -> R first"])
        return {"basis_size": matrix_properties.basis_count(rep_in, out)}

    def check_bias(self, g, out: Rep, attrs: dict) -> None:
        """A bias is a learned invariant vector: the output needs one."""
        if attrs.get("bias") and not matrix_properties.basis_count(Trivial(g), out):
            raise TypeRuleError("E0201", "bias needs an invariant direction in the output", "bias",
                                f"`{out}` has no vector fixed by {g.name}", hints=["drop `bias = true`"])

    def pointwise(self, g, rep: Rep, act: str, where: str) -> Rep:
        if not matrix_properties.is_permutation_rep(rep):
            bad = list(dict.fromkeys(str(b) for b in matrix_properties.blocks(rep) if not matrix_properties.is_permutation_rep(b)))
            raise TypeRuleError("E0301", f"pointwise `{act}` on `{', '.join(bad)}` is not equivariant", where,
                                f"{g.name} mixes the components of this field",
                                notes=["pointwise functions commute with the group only on scalars and on "
                                       "permutation representations (regular, or the defining rep of S_n)"],
                                hints=["use gate(...) -> R for these blocks, or, for finite groups, map to regular "
                                       "fields first: linear(x) -> (k * regular)"])
        return rep

    def gate(self, g, rep_in: Rep, out: Rep, attrs: dict) -> dict:
        bl = matrix_properties.blocks(out)
        n_scalars = 0
        while n_scalars < len(bl) and isinstance(bl[n_scalars], Trivial):
            n_scalars += 1
        gated = bl[n_scalars:]
        if any(isinstance(t, Trivial) for t in gated):
            raise TypeRuleError("E0206", f"gate output `{out}` must list its scalars before the gated blocks", "out",
                                "scalars after non-scalars")
        expected = direct_sum(*bl[:n_scalars], *[Trivial(g)] * len(gated), *gated)
        if rep_in != expected:
            raise TypeRuleError("E0206", f"gate -> `{out}` needs input `{expected}`, got `{rep_in}`", "x",
                                f"expected {n_scalars} scalars, {len(gated)} gates, then the gated blocks",
                                notes=["one gate scalar per gated block, between the activated scalars and the gated blocks"],
                                hints=[f"produce it with linear(...) -> ({expected})"])
        return {"num_scalars": n_scalars, "gated_sizes": tuple(t.size for t in gated)}

    def norm(self, g, rep: Rep) -> tuple:
        _check_orthogonal(rep, "x", "the Euclidean norm", g)
        return _per_block(g, rep), {"sizes": tuple(t.size for t in matrix_properties.blocks(rep))}

    def mlp_output(self, g, x: ValueType, out, attrs: dict) -> tuple:
        if out is None:
            raise TypeRuleError("E0104", "mlp needs its output size: mlp(x, hidden...) -> K", None, "output size missing")
        if not matrix_properties.is_scalars(out):
            raise TypeRuleError("E0305", f"an MLP produces invariant scalars, not `{out}`", "out", "not invariant scalars",
                                hints=[f"write -> {out.size}"])
        return tensor(out, x.placement), {}

    def check_shiftable(self, x: ValueType) -> None:
        if not matrix_properties.is_scalars(x.rep):
            raise TypeRuleError("E0303", f"adding a constant to `{x.rep}` is not equivariant", "x", "not invariant scalars",
                                notes=["a constant is fixed by the group; only invariant channels may be shifted"])

    def product(self, g, a: Rep, b: Rep, sym: str, where: str) -> Rep:
        if a.size == 1 and matrix_properties.is_scalars(a):
            return b
        if b.size == 1 and matrix_properties.is_scalars(b):
            return a
        if matrix_properties.is_scalars(a) and a == b:
            return a
        raise TypeRuleError("E0304", f"`{sym}` of `{a}` and `{b}` is not equivariant", where,
                            "elementwise products need one invariant scalar on one side",
                            notes=["allowed: one scalar times anything, or scalars times scalars of equal size"],
                            hints=["use bilinear(a, b) -> R for products of non-scalar features"])

    def check_divisor(self, b: ValueType) -> None:
        if not matrix_properties.is_scalars(b.rep):
            raise TypeRuleError("E0304", f"division by non-scalar `{b.rep}`", "b", "not invariant scalars")

    def power(self, g, x: ValueType, k: float) -> ValueType:
        if not matrix_properties.is_scalars(x.rep):
            raise TypeRuleError("E0304", f"`**` on `{x.rep}` is not equivariant", "x", "powers act on invariant scalars only",
                                hints=["take a power of an invariant such as inner(x, x)"])
        return x

    # -- the ops only matrix groups have ---------------------------------------------------------------
    def bilinear(self, g, ins, attrs):
        a, b, out = ins["a"], ins["b"], attrs["out"]
        need_tensor(a, "a")
        need_tensor(b, "b")
        place = same_placement("b", a, b)
        if a.rep.size * b.rep.size * out.size > MAX_SOLVE_ENTRIES:
            raise TypeRuleError("E0108", f"a bilinear map `{a.rep}` x `{b.rep}` -> `{out}` has "
                                f"{a.rep.size * b.rep.size * out.size} entries, more than {MAX_SOLVE_ENTRIES}", "out",
                                "too large", hints=["use fewer or smaller channels"])
        missing = matrix_properties.bilinear_unreachable(a.rep, b.rep, out)
        if missing:
            notes = ["the product of the inputs contains no piece equivalent to this output block"]
            notes += _contains_note(Tensor(a.rep, b.rep), "the product")
            notes += _contains_note(matrix_properties.blocks(out)[missing[0]], f"`{matrix_properties.blocks(out)[missing[0]]}`")
            raise TypeRuleError("E0203", f"no equivariant bilinear map of `{a.rep}` and `{b.rep}` reaches "
                                f"{blocks_text(out, missing)}", "out", "the equivariance constraint has only the zero solution",
                                notes=notes)
        return tensor(out, place), {"basis_size": matrix_properties.bilinear_count(a.rep, b.rep, out)}

    def inner(self, g, ins, attrs):
        a, b = ins["a"], ins["b"]
        need_tensor(a, "a")
        need_tensor(b, "b")
        if a.rep != b.rep:
            raise TypeRuleError("E0202", f"inner needs equal representations, got `{a.rep}` and `{b.rep}`", "b",
                                f"this is `{b.rep}`")
        for t in matrix_properties.blocks(a.rep):
            n = matrix_properties.invariant_form_count(t)
            if n != 1:
                raise TypeRuleError("E0306", f"`{t}` has {n} independent invariant bilinear forms, so inner(...) is "
                                    f"{'undefined' if n == 0 else 'ambiguous'}", "a",
                                    "no unique invariant form",
                                    hints=["learn a combination instead: bilinear(a, b) -> k"] if n else
                                    ["pair it with its dual instead, or use bilinear(a, b) -> k"])
        return tensor(_per_block(g, a.rep), same_placement("b", a, b)), {}

    def group_pool(self, g, ins, attrs):
        x = ins["x"]
        need_tensor(x, "x")
        for t in matrix_properties.blocks(x.rep):
            if not matrix_properties.is_permutation_rep(t):
                raise TypeRuleError("E0307", f"group pooling needs regular or permutation blocks, not `{t}`", "x",
                                    f"{g.name} mixes the components of `{t}`",
                                    notes=["pooling over the components is invariant only when the group permutes them"],
                                    hints=["use norm(...) or inner(x, x) for other representations"])
        return tensor(_per_block(g, x.rep), x.placement), {"sizes": tuple(t.size for t in matrix_properties.blocks(x.rep))}

    def conv2d(self, g, ins, attrs):
        x, out, k = ins["x"], attrs["out"], attrs["kernel"]
        need_tensor(x, "x")
        _need_grid(x, "conv2d")
        reason = _grid_reason(g)
        approximate = reason is not None
        if approximate and not attrs.get("approximate"):
            raise TypeRuleError("E0308", f"conv2d needs a group acting on the pixel grid; {reason}", "x",
                                f"{g.name} does not map the grid to itself",
                                hints=["accept kernels sampled on rings, exactly equivariant only under the grid's own "
                                       "symmetries in the group: conv2d(..., approximate = true)"]
                                if g.dim == 2 else [])
        if approximate:
            from ..reps.grid import _approx_group_reason
            why = _approx_group_reason(g)
            if why is not None:
                raise TypeRuleError("E0308", f"conv2d on images: {why}",
                                    "x", "not a planar group", hints=["use Cn, Dn, SO(2) or O(2)"])
        if k < 1 or k % 2 == 0 or k > 15:
            raise TypeRuleError("E0108", f"kernel = {k}: kernel sizes are odd numbers from 1 to 15", "kernel",
                                "centred kernels need an odd size")
        _solvable(x.rep, out, "out")
        from ..reps.grid import kernel_rep
        missing = matrix_properties.unreachable_blocks(kernel_rep(g, k, x.rep, approximate=approximate), out)
        if missing:
            raise TypeRuleError("E0201", f"no equivariant {k}x{k} kernel reaches {blocks_text(out, missing)} from `{x.rep}`",
                                "out", "the kernel constraint has only the zero solution")
        self.check_bias(g, out, attrs)
        return tensor(out, "grid"), {"sampled": approximate}

    def _spatial_pool(self, reduce, ins, attrs):
        x = ins["x"]
        need_tensor(x, "x")
        _need_grid(x, f"{reduce}_pool2d")
        if attrs["size"] < 1:
            raise TypeRuleError("E0108", "pooling size must be positive", "size")
        if reduce == "max":
            self.check_max(x, "max pooling")
        return x, {}

    def avg_pool2d(self, g, ins, attrs):
        return self._spatial_pool("avg", ins, attrs)

    def max_pool2d(self, g, ins, attrs):
        return self._spatial_pool("max", ins, attrs)

    def global_pool(self, g, ins, attrs):
        x = ins["x"]
        need_tensor(x, "x")
        _need_grid(x, "global_pool")
        if attrs["reduce"] == "max":
            self.check_max(x, "max pooling")
        return x.at("graph"), {}

    def orthonormalize(self, g, ins, attrs):
        """A group acting orthogonally on R^n: n - 1 vectors V give the columns by Gram-Schmidt and, last, their
        generalised cross product, which a reflection reverses (det * V)."""
        import numpy as np

        from ..reps.matrix_rep_syntax import parse_rep
        xs, n = ins["xs"], g.dim
        orthogonal = all(np.allclose(A, -A.T, atol=1e-9) for A in g.lie_generators) and \
            all(np.allclose(h @ h.T, np.eye(n), atol=1e-9) for h in g.discrete_generators)
        if not orthogonal or n < 2:
            raise TypeRuleError("E0802", f"rotation outputs need a group of rotations and reflections of R^n; "
                                         f"{g.name} does not act orthogonally", None, "no rotation output here")
        if len(xs) != n - 1:
            raise TypeRuleError("E0801", f"in {n} dimensions orthonormalize takes {n - 1} vector{'s' if n > 2 else ''}, "
                                         f"got {len(xs)}", f"xs.{n - 1}" if len(xs) > n - 1 else None,
                                f"orthonormalize({', '.join('v' + str(i + 1) for i in range(n - 1))})")
        vector = parse_rep("V", g)
        for i, v in enumerate(xs):
            need_tensor(v, f"xs.{i}", "a vector of orthonormalize")
            if not same_rep(v.rep, vector):
                raise TypeRuleError("E0801", f"orthonormalize takes vectors `V`, got `{v.rep}`", f"xs.{i}",
                                    f"this is `{v.rep}`", hints=["map it to one vector first: linear(...) -> V"])
        columns = parse_rep(" + ".join(["V"] * (n - 1) + ["det * V"]), g)
        return ValueType("rotation", columns, same_placement(f"xs.{len(xs) - 1}", *xs)), {}

RULES = MatrixRules()
