"""Type rules for models over matrix groups (cyclic, dihedral, symmetric, Lorentz, SL(n), groups by generators).

Values carry a ``eqdsl.reps.matrix_reps.Rep`` instead of O3 irreps.  Where the O3
rules read off selection rules, these rules ask the numerical representation
algebra: a linear or bilinear map exists when the equivariance constraint has
solutions (``eqdsl.reps.solve``), pointwise functions are allowed on permutation
representations (regular, permutation, scalars), norms on orthogonal ones.
The rules share ``Op``/``Param``/``TypeRuleError`` with ``ops.py``, so the
checker and the IR verifier treat both registries alike.
"""
from __future__ import annotations

from ..reps import matrix_properties
from ..reps.matrix_reps import Rep, Tensor, Trivial, direct_sum, scalars
from .activations import PARITY
from . import ops
from .ops import Param, TypeRuleError, need_tensor, op, same_placement
from .types import ValueType, tensor

MATRIX_OPS: dict = {}
# Rules that do not depend on the kind of representation are the O3 rules themselves.
for _shared in ("input", "gather", "bessel", "gaussian", "envelope", "add", "sub", "scale", "neg"):
    MATRIX_OPS[_shared] = ops.OPS[_shared]

# Solving a constraint with more unknowns than this is refused at compile time.
MAX_SOLVE_ENTRIES = 4_000_000


def _op(name, *params, out="check", doc=""):
    def register(fn):
        def infer(g, ins, attrs):
            try:
                return fn(g, ins, attrs)
            except matrix_properties.TooLargeToSolve as err:
                raise TypeRuleError("E0108", str(err), "out" if attrs.get("out") is not None else None,
                                    "too large to solve", hints=["split the representation into smaller blocks: "
                                                                 "fewer tensor-power factors per block"]) from None
        op(name, *params, out=out, doc=doc, registry=MATRIX_OPS)(infer)
        return fn
    return register


def _blocks_text(rep: Rep, idx: list[int]) -> str:
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


def need_scalars(t: ValueType, where: str, what: str, code: str = "E0305") -> None:
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


# -- inputs and structure -------------------------------------------------------------------------
def _max_ok(x: ValueType, what: str) -> None:
    if not matrix_properties.is_permutation_rep(x.rep):
        raise TypeRuleError("E0503", f"{what} over `{x.rep}` is not equivariant", "x",
                            "the group mixes these components",
                            notes=["a componentwise maximum commutes with the group only when it permutes components "
                                   "(scalars, regular and permutation representations)"],
                            hints=["use sum or mean"])


def _max_permutation(x: ValueType) -> None:
    _max_ok(x, "max aggregation")


for _r in ("sum", "mean", "max"):
    _op(f"scatter_{_r}", Param("x", "value"), Param("index", "choice", choices=("src", "dst")))(
        ops._scatter(_r, _max_permutation))
    for _over in ("node", "edge"):
        _op(f"{_r}_{_over}s", Param("x", "value"))(ops._pool(_r, _over, _max_permutation))


# -- linear and bilinear maps, solved -----------------------------------------------------------------
@_op("linear", Param("x", "value"), Param("bias", "bool", False, keyword_only=True), out="defines",
     doc="Equivariant linear map, a learned combination of the solved basis of Hom_G(in, out).")
def _linear(g, ins, attrs):
    x, out = ins["x"], attrs["out"]
    need_tensor(x, "x")
    _solvable(x.rep, out, "out")
    missing = matrix_properties.unreachable_blocks(x.rep, out)
    if missing:
        raise TypeRuleError("E0201", f"no equivariant linear map reaches {_blocks_text(out, missing)} from `{x.rep}`",
                            "out", "the equivariance constraint has only the zero solution here",
                            notes=["Schur's lemma: a linear map commuting with the group only connects "
                                   "equivalent pieces of the representations",
                                   f"input blocks: {', '.join(dict.fromkeys(f'`{b}`' for b in matrix_properties.blocks(x.rep)))}"]
                            + _contains_note(x.rep, "the input")
                            + _contains_note(matrix_properties.blocks(out)[missing[0]], f"`{matrix_properties.blocks(out)[missing[0]]}`"),
                            hints=["create new representations with bilinear(a, b) -> R first"])
    _check_bias(g, out, attrs)
    return tensor(out, x.placement), {"basis_size": matrix_properties.basis_count(x.rep, out)}


@_op("bilinear", Param("a", "value"), Param("b", "value"), out="defines",
     doc="Equivariant bilinear map y = W(a, b), a learned combination of the solved basis of Hom_G(a (x) b, out).")
def _bilinear(g, ins, attrs):
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
                            f"{_blocks_text(out, missing)}", "out", "the equivariance constraint has only the zero solution",
                            notes=notes)
    return tensor(out, place), {"basis_size": matrix_properties.bilinear_count(a.rep, b.rep, out)}


# -- nonlinearities ---------------------------------------------------------------------------------------
def _pointwise(name):
    def infer(g, ins, attrs):
        x = ins["x"]
        need_tensor(x, "x")
        if not matrix_properties.is_permutation_rep(x.rep):
            bad = list(dict.fromkeys(str(b) for b in matrix_properties.blocks(x.rep) if not matrix_properties.is_permutation_rep(b)))
            raise TypeRuleError("E0301", f"pointwise `{name}` on `{', '.join(bad)}` is not equivariant", "x",
                                f"{g.name} mixes the components of this field",
                                notes=["pointwise functions commute with the group only on scalars and on "
                                       "permutation representations (regular, or the defining rep of S_n)"],
                                hints=["use gate(...) -> R for these blocks, or, for finite groups, map to regular "
                                       "fields first: linear(x) -> (k * regular)"])
        return x, {}
    return infer


for _name in PARITY:
    _op(_name, Param("x", "value"))(_pointwise(_name))


@_op("gate", Param("x", "value"), Param("act", "act", "silu", keyword_only=True),
     Param("gate_act", "act", "sigmoid", keyword_only=True), out="defines",
     doc="Gated nonlinearity: scalars through act, each non-scalar block scaled by gate_act of its own scalar gate.")
def _gate(g, ins, attrs):
    x, out = ins["x"], attrs["out"]
    need_tensor(x, "x")
    bl = matrix_properties.blocks(out)
    n_scalars = 0
    while n_scalars < len(bl) and isinstance(bl[n_scalars], Trivial):
        n_scalars += 1
    gated = bl[n_scalars:]
    if any(isinstance(t, Trivial) for t in gated):
        raise TypeRuleError("E0206", f"gate output `{out}` must list its scalars before the gated blocks", "out",
                            "scalars after non-scalars")
    expected = direct_sum(*bl[:n_scalars], *[Trivial(g)] * len(gated), *gated)
    if x.rep != expected:
        raise TypeRuleError("E0206", f"gate -> `{out}` needs input `{expected}`, got `{x.rep}`", "x",
                            f"expected {n_scalars} scalars, {len(gated)} gates, then the gated blocks",
                            notes=["one gate scalar per gated block, between the activated scalars and the gated blocks"],
                            hints=[f"produce it with linear(...) -> ({expected})"])
    return tensor(out, x.placement), {"num_scalars": n_scalars, "gated_sizes": tuple(t.size for t in gated)}


# -- invariants ---------------------------------------------------------------------------------------------
def _per_block(g, rep: Rep) -> Rep:
    return scalars(g, len(matrix_properties.blocks(rep)))


@_op("norm", Param("x", "value"), doc="Euclidean norm of every block (orthogonal representations): invariant scalars.")
def _norm(g, ins, attrs):
    x = ins["x"]
    need_tensor(x, "x", "features of norm")
    _check_orthogonal(x.rep, "x", "the Euclidean norm", g)
    return tensor(_per_block(g, x.rep), x.placement), {"sizes": tuple(t.size for t in matrix_properties.blocks(x.rep))}


@_op("inner", Param("a", "value"), Param("b", "value"),
     doc="Invariant inner product of matching blocks through the group's invariant form (Minkowski for Lorentz).")
def _inner(g, ins, attrs):
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


@_op("group_pool", Param("x", "value"), Param("reduce", "choice", "max", choices=("max", "mean"), keyword_only=True),
     doc="Max or mean over each regular or permutation block (group pooling): one invariant scalar per block.")
def _group_pool(g, ins, attrs):
    x = ins["x"]
    need_tensor(x, "x")
    for t in matrix_properties.blocks(x.rep):
        if not matrix_properties.is_permutation_rep(t):
            raise TypeRuleError("E0307", f"group pooling needs regular or permutation blocks, not `{t}`", "x",
                                f"{g.name} mixes the components of `{t}`",
                                notes=["pooling over the components is invariant only when the group permutes them"],
                                hints=["use norm(...) or inner(x, x) for other representations"])
    return tensor(_per_block(g, x.rep), x.placement), {"sizes": tuple(t.size for t in matrix_properties.blocks(x.rep))}


@_op("mlp", Param("x", "value"), Param("hidden", "ints*"), Param("act", "act", "silu", keyword_only=True), out="defines",
     doc="Multilayer perceptron on invariant scalars: hidden sizes, output `-> K` scalars.")
def _mlp(g, ins, attrs):
    x, out = ins["x"], attrs.get("out")
    need_scalars(x, "x", "the input of an MLP")
    if any(s < 1 for s in attrs["hidden"]):
        raise TypeRuleError("E0108", "MLP sizes must be positive", "hidden")
    if out is None:
        raise TypeRuleError("E0104", "mlp needs its output size: mlp(x, hidden...) -> K", None, "output size missing")
    if not matrix_properties.is_scalars(out):
        raise TypeRuleError("E0305", f"an MLP produces invariant scalars, not `{out}`", "out", "not invariant scalars",
                            hints=[f"write -> {out.size}"])
    return tensor(out, x.placement), {}


@_op("concat", Param("xs", "values*"), doc="Concatenation of features (direct sum of representations).")
def _concat(g, ins, attrs):
    xs = ins["xs"]
    if not xs:
        raise TypeRuleError("E0104", "concat needs at least one value", None)
    for i, x in enumerate(xs):
        need_tensor(x, f"xs.{i}")
    place = same_placement(f"xs.{len(xs) - 1}", *xs)
    return tensor(direct_sum(*(x.rep for x in xs)), place), {}


# -- images ------------------------------------------------------------------------------------------------
def _need_grid(x: ValueType, what: str) -> None:
    if x.placement != "grid":
        raise TypeRuleError("E0504", f"{what} works on images (@grid values), this is @{x.placement}", "x",
                            f"@{x.placement}", hints=["declare image inputs with @grid: input img : 3 @grid"])


def _grid_reason(g) -> str | None:
    from ..reps.grid import grid_group_ok
    return grid_group_ok(g)


@_op("conv2d", Param("x", "value"), Param("kernel", "int", 3, keyword_only=True),
     Param("bias", "bool", False, keyword_only=True), Param("approximate", "bool", False, keyword_only=True),
     out="defines",
     doc="Steerable 2D convolution: kernel basis K(g d) = rho_out(g) K(d) rho_in(g)^-1 solved by the compiler; "
         "approximate = true samples ring kernels for groups that do not map the grid to itself (C8, D8, ...).")
def _conv2d(g, ins, attrs):
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
        raise TypeRuleError("E0201", f"no equivariant {k}x{k} kernel reaches {_blocks_text(out, missing)} from `{x.rep}`",
                            "out", "the kernel constraint has only the zero solution")
    _check_bias(g, out, attrs)
    return tensor(out, "grid"), {"sampled": approximate}


def _spatial_pool(reduce):
    def infer(g, ins, attrs):
        x = ins["x"]
        need_tensor(x, "x")
        _need_grid(x, f"{reduce}_pool2d")
        if attrs["size"] < 1:
            raise TypeRuleError("E0108", "pooling size must be positive", "size")
        if reduce == "max":
            _max_ok(x, "max pooling")
        return x, {}
    return infer


_op("avg_pool2d", Param("x", "value"), Param("size", "int", 2),
    doc="Average over size x size windows (stride size); image sides must be multiples of size.")(_spatial_pool("avg"))
_op("max_pool2d", Param("x", "value"), Param("size", "int", 2),
    doc="Maximum over size x size windows, on permutation representations.")(_spatial_pool("max"))


@_op("global_pool", Param("x", "value"), Param("reduce", "choice", "mean", choices=("mean", "max"), keyword_only=True),
     doc="Mean (or max, on permutation representations) over all pixels: one value per image.")
def _global_pool(g, ins, attrs):
    x = ins["x"]
    need_tensor(x, "x")
    _need_grid(x, "global_pool")
    if attrs["reduce"] == "max":
        _max_ok(x, "max pooling")
    return x.at("graph"), {}


# -- arithmetic --------------------------------------------------------------------------------------------------
@_op("add_const", Param("x", "value"), Param("c", "float"))
def _add_const(g, ins, attrs):
    x = ins["x"]
    need_tensor(x, "x")
    if not matrix_properties.is_scalars(x.rep):
        raise TypeRuleError("E0303", f"adding a constant to `{x.rep}` is not equivariant", "x", "not invariant scalars",
                            notes=["a constant is fixed by the group; only invariant channels may be shifted"])
    return x, {}


def _product_rep(a: Rep, b: Rep, sym: str) -> Rep:
    if a.size == 1 and matrix_properties.is_scalars(a):
        return b
    if b.size == 1 and matrix_properties.is_scalars(b):
        return a
    if matrix_properties.is_scalars(a) and a == b:
        return a
    raise TypeRuleError("E0304", f"`{sym}` of `{a}` and `{b}` is not equivariant", "b",
                        "elementwise products need one invariant scalar on one side",
                        notes=["allowed: one scalar times anything, or scalars times scalars of equal size"],
                        hints=["use bilinear(a, b) -> R for products of non-scalar features"])


@_op("mul", Param("a", "value"), Param("b", "value"))
def _mul(g, ins, attrs):
    a, b = ins["a"], ins["b"]
    need_tensor(a, "a")
    need_tensor(b, "b")
    return tensor(_product_rep(a.rep, b.rep, "*"), same_placement("b", a, b)), {}


@_op("div", Param("a", "value"), Param("b", "value"))
def _div(g, ins, attrs):
    a, b = ins["a"], ins["b"]
    need_tensor(a, "a")
    need_tensor(b, "b")
    if not matrix_properties.is_scalars(b.rep):
        raise TypeRuleError("E0304", f"division by non-scalar `{b.rep}`", "b", "not invariant scalars")
    return tensor(_product_rep(a.rep, b.rep, "/"), same_placement("b", a, b)), {}


@_op("pow", Param("x", "value"), Param("k", "float"))
def _pow(g, ins, attrs):
    x = ins["x"]
    need_tensor(x, "x")
    if not matrix_properties.is_scalars(x.rep):
        raise TypeRuleError("E0304", f"`**` on `{x.rep}` is not equivariant", "x", "powers act on invariant scalars only",
                            hints=["take a power of an invariant such as inner(x, x)"])
    return x, {}
