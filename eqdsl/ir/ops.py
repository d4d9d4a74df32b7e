"""The registry of layers and operators: every op's signature and typing rule, written once.

Each ``Op`` declares its parameters (runtime values and static attributes), the families of groups
that have it, and an ``infer`` that maps input types and attributes to the output type, or raises
``TypeRuleError`` naming the parameter at fault so the checker can point at it.  Where the answer
depends on the kind of representation (is there an equivariant linear map, which pointwise functions
commute with the group), a rule asks its group's ``FamilyRules`` (``family_rules(g)``): selection
rules for irreps groups (``irreps_rules.py``), solved constraints for matrix groups (``matrix_rules.py``,
loaded only when such a group is used).  Rules are pure functions of (group, input types,
attributes): the IR verifier re-runs them on the lowered graph.

The checker and the verifier look ops up with ``ops_for(group)`` and nowhere else.
"""
from __future__ import annotations

import importlib

from ..reps.family import family_of
from . import frame_rules, gaunt_rules, orientation_rules
from .activations import PARITY
from .type_rules import (FAMILIES, POINT_HINT, FamilyRules, Op, Param, TypeRuleError, need_tensor,
                         same_placement)
from .types import ValueType, same_rep, tensor

IRREPS, MATRIX = ("irreps",), ("matrix",)

OPS: dict[str, Op] = {}
FAMILY_GROUPS = {"irreps": "irreps groups (O3, SO3)", "matrix": "matrix groups"}
# what a spec writes instead, in the other family, where an op has a counterpart there
COUNTERPARTS = {"tensor_product": "bilinear(a, b) -> R", "bilinear": "tensor_product(a, b, ...) -> R",
                "dot": "inner(a, b)", "inner": "dot(a, b)"}

_FAMILY_RULES = {"irreps": "eqdsl.ir.irreps_rules", "matrix": "eqdsl.ir.matrix_rules"}
_RULES: dict[str, FamilyRules] = {}
_OPS_BY_FAMILY: dict[str, dict[str, Op]] = {}


def family_rules(g) -> FamilyRules:
    """How `g`'s family of representations answers the rules' questions."""
    rules = _RULES.get(g.rep_family)
    if rules is None:
        rules = _RULES[g.rep_family] = importlib.import_module(_FAMILY_RULES[g.rep_family]).RULES
    return rules


def ops_for(g) -> dict[str, Op]:
    """The ops a spec over `g` can use, each with the parameters `g`'s family gives it."""
    family = g.rep_family
    table = _OPS_BY_FAMILY.get(family)
    if table is None:
        table = _OPS_BY_FAMILY[family] = {name: o.for_family(family) for name, o in OPS.items() if family in o.families}
    return table


def op(name: str, *params: Param, out: str = "check", doc: str = "", families: tuple[str, ...] = FAMILIES):
    def register(rule):
        def infer(g, ins, attrs):
            out, derived = family_rules(g).guard(rule, g, ins, attrs)
            return frame_rules.propagate(name, ins, out), derived
        OPS[name] = Op(name, params, infer, out, doc, families)
        return rule
    return register


def _family_rule(name: str):
    """The rule of an op only one family has: its family's method of the same name."""
    return lambda g, ins, attrs: getattr(family_rules(g), name)(g, ins, attrs)


def one_scalar(g):
    """The representation of a single invariant scalar, for either family of group."""
    return family_of(g).scalars(g, 1)


def vector_rep(g):
    """The representation carried by differences of positions."""
    return family_of(g).vector(g)


# -- inputs and structure ----------------------------------------------------------------------------
@op("input", Param("type", "type"))
def _input(g, ins, attrs):
    return attrs["type"], {}


@op("gather", Param("x", "value"), Param("index", "choice", choices=("src", "dst")))
def _gather(g, ins, attrs):
    x = ins["x"]
    if x.kind == "graph":
        need_tensor(x, "x")
    if x.placement != "node":
        raise TypeRuleError("E0502", f"only per-node values can be indexed with [{attrs['index']}], this is @{x.placement}",
                            "x", f"@{x.placement}", hints=["index node features: h[src], pos[dst]"])
    return x.at("edge"), {}


def _scatter(reduce):
    def infer(g, ins, attrs):
        x = ins["x"]
        need_tensor(x, "x")
        if x.placement != "edge":
            raise TypeRuleError("E0504", f"scatter_{reduce} aggregates per-edge values, this is @{x.placement}",
                                "x", f"@{x.placement}", hints=["gather node features onto edges first: h[src]"])
        if reduce == "max":
            family_rules(g).check_max(x, "max aggregation")
        return x.at("node"), {}
    return infer


def _pool(reduce, over):
    def infer(g, ins, attrs):
        x = ins["x"]
        need_tensor(x, "x")
        if x.placement != over:
            raise TypeRuleError("E0504", f"{reduce}_{over}s pools per-{over} values, this is @{x.placement}",
                                "x", f"@{x.placement}")
        if reduce == "max":
            family_rules(g).check_max(x, "max aggregation")
        return x.at("graph"), {}
    return infer


for _r in ("sum", "mean", "max"):
    op(f"scatter_{_r}", Param("x", "value"), Param("index", "choice", choices=("src", "dst")))(_scatter(_r))
    for _over in ("node", "edge"):
        op(f"{_r}_{_over}s", Param("x", "value"))(_pool(_r, _over))


# -- linear and bilinear maps ---------------------------------------------------------------------------
APPROXIMATE = Param("approximate", "bool", False, keyword_only=True)
# Layers approximate by a fixed construction (sampled ring kernels, orientation and sphere grids, low-rank tables),
# not by an unconstrained path: exact in the limit (of the grid, of the rank), they add no soft group (no penalty
# could remove their error).
DISCRETISED = ("conv2d", "orientations", "sphere_mlp", "low_rank")
APPROXIMATE_DOC = ("  `approximate = true` adds an unconstrained path (zero at initialisation): the layer, and the model, "
                   "are then only approximately equivariant (listed in APPROXIMATE; see eqdsl/soft.py).")


@op("linear", Param("x", "value"), Param("bias", "bool", False, keyword_only=True),
    Param("by", "value", None, keyword_only=True), APPROXIMATE, out="defines",
    doc="Equivariant linear map, a learned combination of a basis of Hom_G(in, out): between copies of the "
        "same irrep (Schur's lemma) for irreps groups, the solved basis for matrix groups.  With `by = s` "
        "(K invariant scalars per row, e.g. a one-hot species) one map per column of s, combined as "
        "sum_k s_k W_k x: weights indexed by the element of each atom." + APPROXIMATE_DOC +
        " Its equivariant part may then be empty (a map Schur's lemma forbids).")
def _linear(g, ins, attrs):
    x, out, by = ins["x"], attrs["out"], ins.get("by")
    need_tensor(x, "x")
    rules = family_rules(g)
    if attrs.get("approximate"):
        if by is not None:
            raise TypeRuleError("E0104", "linear(..., by = s) has no approximate form", "by",
                                hints=["drop `approximate = true`, or `by = s`"])
        try:
            derived = {**rules.linear_map(g, x.rep, out), "equivariant_part": True}
        except TypeRuleError as err:
            if err.code != "E0201":
                raise
            derived = {"equivariant_part": False}  # only the unconstrained path reaches `out`
        rules.check_bias(g, out, attrs)
        return tensor(out, x.placement), derived
    derived = rules.linear_map(g, x.rep, out)
    rules.check_bias(g, out, attrs)
    place = x.placement
    if by is not None:
        place, width = rules.selector(x, by, "a linear map's")
        derived = {**derived, "selectors": width}
    return tensor(out, place), derived


op("tensor_product", Param("a", "value"), Param("b", "value"), Param("weights", "value", None, keyword_only=True),
   Param("mode", "choice", "uvw", choices=("uvw", "uvu", "full", "gaunt"), keyword_only=True),
   Param("filter", "rep", None, keyword_only=True),
   Param("algorithm", "choice", "auto", choices=("auto",) + gaunt_rules.ALGORITHMS, keyword_only=True),
   Param("rank", "int", 0, keyword_only=True), Param("share_paths", "bool", False, keyword_only=True),
   APPROXIMATE, out="defines", families=IRREPS,
   doc="Tensor product with Clebsch-Gordan paths chosen by the selection rules.  `mode = gaunt`: the Gaunt "
       "product (channel by channel, the product of two functions on the sphere; only paths with l1 + l2 + l3 "
       "even; weights per channel and degree of a and of the output), computed by `algorithm = dense | grid | "
       "fourier` (the same numbers) or `auto` (the cheapest by the cost model).  `rank = R` (uvu, uvw, with "
       "`approximate = true`): every path's Clebsch-Gordan table replaced by its rank-R CP approximation "
       "(Tensor Decomposition Networks), approximately equivariant; `share_paths = true` (uvu, C channels of "
       "a and of the output, b one channel): one weight per channel for all paths, and with a rank one CP "
       "approximation of the whole channel's table." + APPROXIMATE_DOC +
       " The unconstrained path is a dense bilinear map a x b -> out.")(_family_rule("tensor_product"))


@op("conv", Param("x", "value"), Param("b", "value"), Param("weights", "value", None, keyword_only=True),
    Param("mode", "choice", "uvw", choices=("uvw", "uvu", "full"), keyword_only=True),
    Param("filter", "rep", None, keyword_only=True), out="defines", families=IRREPS,
    doc="Message passing, scatter_sum(tensor_product(x[gather_index], b, ...), scatter_index), as one layer "
        "(made by the message-passing fusion pass, never written in a spec).")
def _conv(g, ins, attrs):
    """The composition of the three rules it fuses, so the verifier re-derives it from them."""
    edge_rows, _ = OPS["gather"].infer(g, {"x": ins["x"]}, {"index": attrs["gather_index"]})
    tp_ins = {"a": edge_rows, "b": ins["b"], **({"weights": ins["weights"]} if "weights" in ins else {})}
    messages, derived = OPS["tensor_product"].infer(g, tp_ins, attrs)
    out, _ = OPS["scatter_sum"].infer(g, {"x": messages}, {"index": attrs["scatter_index"]})
    return out, derived


op("symmetric_contraction", Param("x", "value"), Param("correlation", "int"),
   Param("by", "value", None, keyword_only=True), out="defines", families=IRREPS,
   doc="MACE's symmetric contraction: channel by channel, sum over k <= correlation of learned combinations "
       "of the equivariant maps Sym^k(V) -> L (V: one channel's irreps), weights per element with "
       "`by = species`.")(_family_rule("symmetric_contraction"))


op("bilinear", Param("a", "value"), Param("b", "value"), out="defines", families=MATRIX,
   doc="Equivariant bilinear map y = W(a, b), a learned combination of the solved basis of "
       "Hom_G(a (x) b, out).")(_family_rule("bilinear"))


# -- nonlinearities -------------------------------------------------------------------------------------
def _pointwise(name):
    def infer(g, ins, attrs):
        x = ins["x"]
        need_tensor(x, "x")
        return tensor(family_rules(g).pointwise(g, x.rep, name, "x"), x.placement), {}
    return infer


for _name in PARITY:
    op(_name, Param("x", "value"))(_pointwise(_name))


@op("gate", Param("x", "value"), Param("act", "act", "silu", keyword_only=True),
    Param("odd_act", "act", "tanh", keyword_only=True, families=IRREPS),
    Param("gate_act", "act", "sigmoid", keyword_only=True), out="defines",
    doc="Gated nonlinearity: scalars through act (odd_act on pseudoscalars), each non-scalar irrep or block "
        "scaled by gate_act of its own scalar gate.")
def _gate(g, ins, attrs):
    x, out = ins["x"], attrs["out"]
    need_tensor(x, "x")
    return tensor(out, x.placement), family_rules(g).gate(g, x.rep, out, attrs)


@op("norm_activation", Param("x", "value"), Param("act", "act", "sigmoid", keyword_only=True), families=IRREPS,
    doc="Scales every irrep copy by act of its norm; equivariant for any representation.")
def _norm_activation(g, ins, attrs):
    x = ins["x"]
    need_tensor(x, "x")
    return x, {}


# -- invariants and geometry ------------------------------------------------------------------------------
@op("norm", Param("x", "value"),
    doc="Norm of every irrep copy or block (orthogonal representations of matrix groups): invariant scalars.")
def _norm(g, ins, attrs):
    x = ins["x"]
    need_tensor(x, "x", "features of norm")
    rep, derived = family_rules(g).norm(g, x.rep)
    return tensor(rep, x.placement), derived


op("dot", Param("a", "value"), Param("b", "value"), families=IRREPS,
   doc="Inner product of matching irrep copies.")(_family_rule("dot"))
op("inner", Param("a", "value"), Param("b", "value"), families=MATRIX,
   doc="Invariant inner product of matching blocks through the group's invariant form (Minkowski for "
       "Lorentz).")(_family_rule("inner"))
op("group_pool", Param("x", "value"), Param("reduce", "choice", "max", choices=("max", "mean"), keyword_only=True),
   families=MATRIX, doc="Max or mean over each regular or permutation block (group pooling): one invariant scalar "
                        "per block.")(_family_rule("group_pool"))
op("spherical_harmonics", Param("x", "value"), Param("lmax", "int"), Param("normalize", "bool", True, keyword_only=True),
   families=IRREPS, doc="Real spherical harmonics (e3nn basis, component normalization) of a vector.")(
    _family_rule("spherical_harmonics"))


def _radial(name):
    def infer(g, ins, attrs):
        x = ins["x"]
        need_tensor(x, "x")
        scalar = one_scalar(g)
        if not same_rep(x.rep, scalar):
            raise TypeRuleError("E0202", f"{name} takes one invariant distance `{scalar}`, got `{x.rep}`", "x",
                                f"this is `{x.rep}`", hints=["pass a distance such as norm(pos[dst] - pos[src])"])
        if attrs["cutoff"] <= 0:
            raise TypeRuleError("E0108", "cutoff must be positive", "cutoff")
        n = attrs.get("n", 1)
        if n < 1:
            raise TypeRuleError("E0108", "n must be at least 1", "n")
        return tensor(family_of(g).scalars(g, n), x.placement), {}
    return infer


op("bessel", Param("x", "value"), Param("n", "int", 8), Param("cutoff", "float"),
   doc="Bessel radial basis sin(k pi d / c) / d (NequIP), n functions.")(_radial("bessel"))
op("gaussian", Param("x", "value"), Param("n", "int", 8), Param("cutoff", "float"),
   doc="Gaussian radial basis with n centres on [0, cutoff].")(_radial("gaussian"))
op("spline", Param("x", "value"), Param("n", "int", 8), Param("cutoff", "float"),
   doc="n cubic B-splines on [0, cutoff], exactly zero with two zero derivatives at the cutoff.")(_radial("spline"))
op("envelope", Param("x", "value"), Param("cutoff", "float"), Param("p", "int", 6, keyword_only=True),
   doc="Smooth polynomial cutoff (NequIP), exactly zero beyond the cutoff.")(_radial("envelope"))


@op("mlp", Param("x", "value"), Param("hidden", "ints*"), Param("act", "act", "silu", keyword_only=True), APPROXIMATE,
    out="defines",
    doc="Multilayer perceptron on invariant scalars: hidden sizes, output `-> K` scalars (irreps groups: or "
        "taken from the tensor product it feeds).  `approximate = true`: on every component of x, of any "
        "representation (an unconstrained layer: the model is then only approximately equivariant).")
def _mlp(g, ins, attrs):
    x, out = ins["x"], attrs.get("out")
    rules = family_rules(g)
    if attrs.get("approximate"):
        need_tensor(x, "x")
    else:
        rules.need_invariant(x, "x", "the input of an MLP")
    if any(s < 1 for s in attrs["hidden"]):
        raise TypeRuleError("E0108", "MLP sizes must be positive", "hidden")
    return rules.mlp_output(g, x, out, attrs)


@op("concat", Param("xs", "values*"), doc="Concatenation of features (direct sum of representations).")
def _concat(g, ins, attrs):
    xs = ins["xs"]
    if not xs:
        raise TypeRuleError("E0104", "concat needs at least one value", None)
    for i, x in enumerate(xs):
        need_tensor(x, f"xs.{i}")
    place = same_placement(f"xs.{len(xs) - 1}", *xs)
    return tensor(family_of(g).direct_sum([x.rep for x in xs]), place), {}


op("grad", Param("y", "value"), Param("x", "value"), families=IRREPS,
   doc="Gradient of a scalar with respect to an input: -grad(energy, pos) gives forces.")(_family_rule("grad"))


# -- rotation outputs ------------------------------------------------------------------------------------
op("orthonormalize", Param("xs", "values*"),
   doc="A rotation (Zhou et al., 2019: the continuous 6D representation, and its SO(n) form) from n - 1 "
       "equivariant vectors in n dimensions by Gram-Schmidt, the last column their generalised cross product "
       "(for reflections a pseudovector): in 3D orthonormalize(a, b), in the plane orthonormalize(a).  "
       "Equivariant: R(g x) = g R(x) diag(1, ..., 1, det g) (O(3): up to the parities of a and b).")(
    _family_rule("orthonormalize"))


# -- frame averaging ------------------------------------------------------------------------------------
op("frame", Param("pos", "value"),
   doc="The frames of frame averaging, one set per graph that moves with the points: PCA frames of the "
       "centred positions (O(3): 8, SO(3): 4, O(2): 4, SO(2): 2 sign choices of the eigenvectors), the whole "
       "group for Cn and Dn.")(frame_rules.frame)
op("to_frame", Param("x", "value"), Param("f", "value"),
   doc="A position (centred) or features expressed in every element of the frame: invariant scalars per copy, "
       "on which any layer on scalars may act.")(frame_rules.to_frame)
op("from_frame", Param("y", "value"), Param("f", "value"), out="defines",
   doc="The average over the frame of rho_R(F_k) y_k (y: R.dim scalars per copy), or of y_k when y already "
       "carries R: equivariant.")(frame_rules.from_frame)


op("sphere_mlp", Param("x", "value"), Param("hidden", "ints*"), Param("act", "act", "silu", keyword_only=True),
   Param("grid", "int", 8, keyword_only=True), APPROXIMATE, out="defines", families=IRREPS,
   doc="Facet's layer: each channel of x (channels of distinct degrees, parity (-1)^l) as a function on the "
       "sphere, sampled on a grid of `grid` Gauss-Legendre rings times 2 * grid azimuths, an MLP across channels "
       "at every point, projected back onto R's degrees; equivariant up to the grid's resolution, so it must be "
       "declared `approximate = true` (its weights do not depend on the grid).")(_family_rule("sphere_mlp"))


# -- position-orientation space (PONITA) ------------------------------------------------------------------
op("orientations", Param("n", "int", 16, keyword_only=True), APPROXIMATE,
   doc="A fixed grid of n directions (a Fibonacci grid on the sphere for O3 and SO3, equally spaced angles "
       "on the circle for SO2 and O2) on which features live as functions of (position, orientation), one "
       "copy per direction; equivariant up to the grid's resolution, so it must be declared "
       "`approximate = true`.")(orientation_rules.orientations)
op("to_orientations", Param("x", "value"), Param("O", "value"),
   doc="Features as functions on the grid: Y_l(o_k) . x_u (unit-norm spherical harmonics; in the plane "
       "o_k . v) for every irrep copy u, one invariant scalar per copy and direction.")(orientation_rules.to_orientations)
op("pair_invariants", Param("r", "value"), Param("O", "value"),
   doc="PONITA's invariants of a vector and each grid direction: o . r and |r - (o . r) o| (2 scalars per "
       "direction).")(orientation_rules.pair_invariants)
op("orientation_conv", Param("h", "value"), Param("O", "value"), Param("basis", "int", 16, keyword_only=True),
   doc="Depthwise convolution over the grid, h'_k = 1/n sum_j K(o_k . o_j) h_j, the kernel an MLP of the "
       "cosine (`basis` hidden units, one output per channel; weights independent of n).")(
    orientation_rules.orientation_conv)
op("from_orientations", Param("y", "value"), Param("O", "value"), out="defines",
   doc="Readout from the grid: (2l+1)/n sum_k y_k Y_l(o_k) per irrep copy of R, one scalar channel of y "
       "each (scalars: the mean over directions; vectors: d/n sum_k y_k o_k).")(orientation_rules.from_orientations)


# -- images ----------------------------------------------------------------------------------------------
op("conv2d", Param("x", "value"), Param("kernel", "int", 3, keyword_only=True),
   Param("bias", "bool", False, keyword_only=True), Param("approximate", "bool", False, keyword_only=True),
   out="defines", families=MATRIX,
   doc="Steerable 2D convolution: kernel basis K(g d) = rho_out(g) K(d) rho_in(g)^-1 solved by the compiler; "
       "approximate = true samples ring kernels for groups that do not map the grid to itself (C8, D8, ...).")(
    _family_rule("conv2d"))
op("avg_pool2d", Param("x", "value"), Param("size", "int", 2), families=MATRIX,
   doc="Average over size x size windows (stride size); image sides must be multiples of size.")(
    _family_rule("avg_pool2d"))
op("max_pool2d", Param("x", "value"), Param("size", "int", 2), families=MATRIX,
   doc="Maximum over size x size windows, on permutation representations.")(_family_rule("max_pool2d"))
op("global_pool", Param("x", "value"), Param("reduce", "choice", "mean", choices=("mean", "max"), keyword_only=True),
   families=MATRIX, doc="Mean (or max, on permutation representations) over all pixels: one value per "
                        "image.")(_family_rule("global_pool"))


# -- arithmetic ------------------------------------------------------------------------------------------
@op("add", Param("a", "value"), Param("b", "value"))
def _add(g, ins, attrs):
    return _add_sub(g, ins["a"], ins["b"], "+")


@op("sub", Param("a", "value"), Param("b", "value"))
def _sub(g, ins, attrs):
    return _add_sub(g, ins["a"], ins["b"], "-")


def _add_sub(g, a: ValueType, b: ValueType, sym: str):
    vec = vector_rep(g)
    place = same_placement("b", a, b)
    kinds = (a.kind, b.kind)
    if kinds == ("point", "point"):
        if sym == "-":
            return tensor(vec, place), {}
        raise TypeRuleError("E0402", "positions cannot be added", "b", "point + point",
                            notes=["the sum of two points is not translation equivariant"], hints=[POINT_HINT])
    if "point" in kinds:
        other, where = (b, "b") if a.kind == "point" else (a, "a")
        need_tensor(other, where)
        if not same_rep(other.rep, vec):
            raise TypeRuleError("E0402", f"a position can only move by a vector `{vec}`, got `{other.rep}`", where,
                                f"this is `{other.rep}`", hints=[POINT_HINT])
        if a.kind == "tensor" and sym == "-":
            raise TypeRuleError("E0402", "vector - position is not equivariant", "b", "a point", hints=[POINT_HINT])
        return ValueType("point", None, place), {}
    need_tensor(a, "a")
    need_tensor(b, "b")
    if not same_rep(a.rep, b.rep):
        raise TypeRuleError("E0202", f"`{sym}` needs equal representations, got `{a.rep}` and `{b.rep}`", "b",
                            f"this is `{b.rep}`", hints=["map one side with linear(...) -> R first"])
    return tensor(a.rep, place), {}


@op("add_const", Param("x", "value"), Param("c", "float"))
def _add_const(g, ins, attrs):
    x = ins["x"]
    need_tensor(x, "x")
    family_rules(g).check_shiftable(x)
    return x, {}


def _no_point(x: ValueType, what: str) -> None:
    if x.kind == "point":
        raise TypeRuleError("E0402", f"a position cannot be {what}", "x", "a point",
                            notes=["scaling or negating a point does not commute with translations"],
                            hints=[POINT_HINT])


@op("scale", Param("x", "value"), Param("c", "float"))
def _scale(g, ins, attrs):
    x = ins["x"]
    _no_point(x, "scaled")
    need_tensor(x, "x")
    return x, {}


@op("neg", Param("x", "value"))
def _neg(g, ins, attrs):
    x = ins["x"]
    _no_point(x, "negated")
    need_tensor(x, "x")
    return x, {}


@op("mul", Param("a", "value"), Param("b", "value"))
def _mul(g, ins, attrs):
    a, b = ins["a"], ins["b"]
    need_tensor(a, "a")
    need_tensor(b, "b")
    return tensor(family_rules(g).product(g, a.rep, b.rep, "*", "b"), same_placement("b", a, b)), {}


@op("div", Param("a", "value"), Param("b", "value"))
def _div(g, ins, attrs):
    a, b = ins["a"], ins["b"]
    need_tensor(a, "a")
    need_tensor(b, "b")
    rules = family_rules(g)
    rules.check_divisor(b)
    return tensor(rules.product(g, a.rep, b.rep, "/", "b"), same_placement("b", a, b)), {}


@op("pow", Param("x", "value"), Param("k", "float"))
def _pow(g, ins, attrs):
    x = ins["x"]
    need_tensor(x, "x")
    return family_rules(g).power(g, x, attrs["k"]), {}
