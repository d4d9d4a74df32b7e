"""Type rules of every layer and operator, shared by the checker and the IR verifier.

Each ``Op`` declares its parameters (runtime values and static attributes) and an
``infer`` that maps input types and attributes to the output type, or raises
``TypeRuleError`` naming the parameter at fault so the checker can point at it.
The rules are pure functions of (group, input types, attributes): the IR
verifier re-runs them on the lowered graph.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Callable

from ..reps import tp as tpd
from ..reps.family import family_of
from ..reps.irreps import Irreps
from .activations import PARITY
from .types import ValueType, same_rep, tensor

REQUIRED = object()


@dataclass
class TypeRuleError(Exception):
    code: str
    message: str
    where: str | None = None  # a parameter name, "out" for the `-> R` target, None for the call
    label: str = ""
    notes: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # value | values* | int | ints* | float | bool | rep | act | choice
    default: object = REQUIRED
    choices: tuple[str, ...] = ()
    keyword_only: bool = False


@dataclass
class Op:
    name: str
    params: tuple[Param, ...]
    infer: Callable  # (group, ins: dict[str, ValueType | list], attrs: dict) -> (ValueType, derived attrs)
    out: str = "check"  # "defines": `-> R` gives the output rep (attrs["out"]); "check": it is compared
    doc: str = ""

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


OPS: dict[str, Op] = {}  # the rules of irreps groups; matrix groups: ``matrix_ops.MATRIX_OPS`` (see ``rules``)


def op(name: str, *params: Param, out: str = "check", doc: str = "", registry: dict | None = None):
    def register(fn):
        (OPS if registry is None else registry)[name] = Op(name, params, fn, out, doc)
        return fn
    return register


# -- shared checks -------------------------------------------------------------------
def _fmt(irs) -> str:
    return ", ".join(str(i) for i in irs) if irs else "nothing"


def arrow_rep(rep: Irreps) -> str:
    """A representation as written after `->`: sums need parentheses."""
    return f"({' + '.join(str(m) for m in rep)})" if len(rep) > 1 else str(rep)


def need_tensor(t: ValueType, where: str, what: str = "features") -> None:
    if t.kind == "point":
        raise TypeRuleError("E0401", f"a position is used as {what}", where, "this is a point, not a vector",
                            notes=["positions move under translations; features built from them directly break translation equivariance"],
                            hints=["use differences of positions, e.g. pos[dst] - pos[src]"])
    if t.kind == "graph":
        raise TypeRuleError("E0502", f"the graph is used as {what}", where, "a graph carries only the edge index",
                            hints=["index node features with [src] or [dst] instead"])
    if t.rep is None:
        raise TypeRuleError("E0205", "the size of this value is not known here", where,
                            "an MLP without a final size takes it from the tensor product it feeds",
                            hints=["give the MLP its output size as the last size, or use it only as `weights =`"])


def need_invariant(t: ValueType, where: str, what: str, code: str = "E0305") -> None:
    need_tensor(t, where)
    bad = [str(x) for x in t.rep if not x.ir.is_trivial]
    if bad:
        raise TypeRuleError(code, f"{what} must be invariant scalars, got `{t.rep}`", where,
                            f"not invariant: {', '.join(bad)}",
                            hints=["make them invariant first, e.g. with norm(...) or dot(...)"])


def same_placement(where: str, *types: ValueType) -> str | None:
    places = {t.placement for t in types if t.placement is not None}
    if len(places) > 1:
        raise TypeRuleError("E0501", f"values live in different places: {', '.join('@' + p for p in sorted(places))}",
                            where, "placements differ",
                            hints=["move values with x[src] / x[dst] (node to edge), scatter_sum (edge to node) "
                                   "or sum_nodes (node to graph)"])
    return places.pop() if places else None


def act_output(g, rep: Irreps, act: str, where: str) -> Irreps:
    """The rep of act(x) applied channelwise, or the equivariance error."""
    parity = PARITY[act]
    out = []
    for mul, ir in rep:
        res = g.pointwise(ir, parity)
        if res is None:
            if ir.is_scalar:
                raise TypeRuleError("E0302", f"`{act}` is not odd, so it cannot act on pseudoscalars `{mul}x{ir}`",
                                    where, f"`{ir}` changes sign under reflections",
                                    notes=[f"`{act}` has parity: {parity}; on {ir} only odd functions keep the parity"],
                                    hints=["use an odd function such as tanh, or abs(...) to make it invariant"])
            raise TypeRuleError("E0301", f"pointwise `{act}` on non-scalar features `{mul}x{ir}`", where,
                                "a pointwise function does not commute with rotations here",
                                notes=["pointwise functions may only touch scalar channels"],
                                hints=["use gate(...) or norm_activation(...) for non-scalar channels"])
        out.append((mul, res))
    return Irreps.of(out)


def _channels(rep: Irreps) -> list:
    return [ir for mul, ir in rep for _ in range(mul)]


def _nearest(wanted, candidates):
    same_l = [c for c in candidates if c.l == wanted.l]
    if same_l:
        return same_l[0]
    return min(candidates, key=lambda c: abs(c.l - wanted.l)) if candidates else None


# -- inputs and structure ----------------------------------------------------------------
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


def _scatter(reduce, max_check=None):
    """scatter_<reduce>; ``max_check(x)`` decides where a componentwise max is equivariant (default: invariants)."""
    max_check = max_check or _max_invariant

    def infer(g, ins, attrs):
        x = ins["x"]
        need_tensor(x, "x")
        if x.placement != "edge":
            raise TypeRuleError("E0504", f"scatter_{reduce} aggregates per-edge values, this is @{x.placement}",
                                "x", f"@{x.placement}", hints=["gather node features onto edges first: h[src]"])
        if reduce == "max":
            max_check(x)
        return x.at("node"), {}
    return infer


def _max_invariant(x: ValueType):
    bad = [str(m) for m in x.rep if not m.ir.is_trivial]
    if bad:
        raise TypeRuleError("E0503", f"max aggregation over `{x.rep}` is not equivariant", "x",
                            f"not invariant: {', '.join(bad)}",
                            notes=["a componentwise maximum does not commute with rotations or reflections"],
                            hints=["use sum or mean, or take max over invariant scalars only"])


for _r in ("sum", "mean", "max"):
    op(f"scatter_{_r}", Param("x", "value"), Param("index", "choice", choices=("src", "dst")))(_scatter(_r))


def _pool(reduce, over, max_check=None):
    max_check = max_check or _max_invariant

    def infer(g, ins, attrs):
        x = ins["x"]
        need_tensor(x, "x")
        if x.placement != over:
            raise TypeRuleError("E0504", f"{reduce}_{over}s pools per-{over} values, this is @{x.placement}",
                                "x", f"@{x.placement}")
        if reduce == "max":
            max_check(x)
        return x.at("graph"), {}
    return infer


for _r in ("sum", "mean", "max"):
    for _over in ("node", "edge"):
        op(f"{_r}_{_over}s", Param("x", "value"))(_pool(_r, _over))


# -- linear maps --------------------------------------------------------------------------
@op("linear", Param("x", "value"), Param("bias", "bool", False, keyword_only=True), out="defines",
    doc="Equivariant linear map; by Schur's lemma only between copies of the same irrep.")
def _linear(g, ins, attrs):
    x, out = ins["x"], attrs["out"]
    need_tensor(x, "x")
    have = x.rep.irreps_set()
    for mul, ir in out:
        if ir not in have:
            near = _nearest(ir, have)
            raise TypeRuleError(
                "E0201", f"linear map cannot produce `{mul}x{ir}` from `{x.rep}`", "out",
                f"no `{ir}` in the input",
                notes=["Schur's lemma: an equivariant linear map only connects copies of the same irrep",
                       f"input irreps: {_fmt(have)}"],
                hints=([f"did you mean `{mul}x{near}`?"] if near is not None else [])
                + ["create new irreps with a tensor product first"])
    if attrs.get("bias") and not any(m.ir.is_trivial for m in out):
        raise TypeRuleError("E0201", "bias needs an invariant output channel", "bias",
                            f"`{out}` has no invariant scalars", hints=["drop `bias = true`"])
    return tensor(out, x.placement), {}


# -- tensor products ------------------------------------------------------------------------
def tp_descriptor(g, a: Irreps, b: Irreps, attrs: dict):
    """Build the descriptor for tensor_product's attributes, or raise the selection-rule error."""
    mode, out, keep = attrs["mode"], attrs.get("out"), attrs.get("filter")
    if out is not None and keep is not None:
        raise TypeRuleError("E0104", "give either `-> R` or `filter = R`, not both", "filter")
    reach = tpd.reachable(g, a, b)
    if out is not None:
        for mul, ir in out:
            if ir not in reach:
                near = _nearest(ir, reach)
                notes = [f"reachable here: {_fmt(reach)}"]
                label = _selection_label(g, a, b, ir)
                raise TypeRuleError("E0203", f"tensor product cannot produce `{mul}x{ir}` from `{a} (x) {b}`", "out",
                                    label, notes=notes,
                                    hints=[f"did you mean `{mul}x{near}`?"] if near is not None else [])
        d = tpd.describe(g, a, b, mode, out=out)
        if mode == "uvu":
            fed = {p.i_out for p in d.paths}
            for i, (mul, ir) in enumerate(out):
                if i not in fed:
                    muls = sorted({x.mul for x in a if any(ir in g.product(x.ir, y.ir) for y in b)})
                    raise TypeRuleError("E0208", f"channelwise (uvu) product cannot fill `{mul}x{ir}`", "out",
                                        "no input block with this multiplicity reaches it",
                                        notes=["uvu keeps the channels of the first input: mul_out must equal mul_in1",
                                               f"multiplicities of the first input that reach {ir}: {_fmt(muls)}"],
                                        hints=[f"use {muls[0]}x{ir}" if muls else "use mode = uvw"])
        if mode == "full" and not same_rep(d.irreps_out, out):
            raise TypeRuleError("E0204", f"the full tensor product gives `{d.irreps_out}`, not `{out}`", "out",
                                "declared type differs", hints=["use filter = R to keep some irreps of a full product"])
        return d
    keep_irs = keep.irreps_set() if keep is not None else None
    if mode == "uvw":
        raise TypeRuleError("E0104", "a fully connected (uvw) tensor product needs its output: `tensor_product(...) -> R`",
                            None, "output representation missing")
    d = tpd.describe(g, a, b, mode, keep=keep_irs)
    if not d.paths:
        raise TypeRuleError("E0203", f"tensor product `{a} (x) {b}` produces nothing with this filter", "filter",
                            "no allowed path", notes=[f"reachable here: {_fmt(reach)}"])
    return d


def _selection_label(g, a: Irreps, b: Irreps, ir) -> str:
    for x in a:
        for y in b:
            if x.ir.l + y.ir.l >= ir.l >= abs(x.ir.l - y.ir.l):
                return f"parity: {g.selection_note(x.ir, y.ir)}"
    top = max(x.ir.l for x in a) + max(y.ir.l for y in b) if len(a) and len(b) else 0
    return f"l = {ir.l} is out of reach: at most {top} here"


@op("tensor_product", Param("a", "value"), Param("b", "value"), Param("weights", "value", None, keyword_only=True),
    Param("mode", "choice", "uvw", choices=("uvw", "uvu", "full"), keyword_only=True),
    Param("filter", "rep", None, keyword_only=True), out="defines",
    doc="Tensor product with Clebsch-Gordan paths chosen by the selection rules.")
def _tensor_product(g, ins, attrs):
    a, b, w = ins["a"], ins["b"], ins.get("weights")
    need_tensor(a, "a")
    need_tensor(b, "b")
    place = same_placement("b", a, b)
    d = tp_descriptor(g, a.rep, b.rep, attrs)
    if w is not None:
        if attrs["mode"] == "full":
            raise TypeRuleError("E0205", "a full tensor product has no weights", "weights", "remove this")
        if w.is_open:
            raise TypeRuleError("E0205", "the weights' size was not resolved", "weights")
        need_invariant(w, "weights", "tensor-product weights", code="E0205")
        if w.rep.dim != d.weight_numel:
            raise TypeRuleError("E0205", f"the tensor product needs {d.weight_numel} weights, got `{w.rep}`",
                                "weights", f"{w.rep.dim} values",
                                notes=[f"{d}"],
                                hints=[f"produce {d.weight_numel}x0e, e.g. mlp(..., {d.weight_numel}), or leave the MLP's last size open"])
        place = same_placement("weights", a, b, w)
    return tensor(d.irreps_out, place), {"descriptor": d, "shared_weights": w is None and attrs["mode"] != "full"}


@op("conv", Param("x", "value"), Param("b", "value"), Param("weights", "value", None, keyword_only=True),
    Param("mode", "choice", "uvw", choices=("uvw", "uvu", "full"), keyword_only=True),
    Param("filter", "rep", None, keyword_only=True), out="defines",
    doc="Message passing, scatter_sum(tensor_product(x[gather_index], b, ...), scatter_index), as one layer "
        "(made by the message-passing fusion pass, never written in a spec).")
def _conv(g, ins, attrs):
    """The composition of the three rules it fuses, so the verifier re-derives it from them."""
    edge_rows, _ = OPS["gather"].infer(g, {"x": ins["x"]}, {"index": attrs["gather_index"]})
    tp_ins = {"a": edge_rows, "b": ins["b"], **({"weights": ins["weights"]} if "weights" in ins else {})}
    messages, derived = OPS["tensor_product"].infer(g, tp_ins, attrs)
    out, _ = OPS["scatter_sum"].infer(g, {"x": messages}, {"index": attrs["scatter_index"]})
    return out, derived


# -- nonlinearities -----------------------------------------------------------------------------
def _pointwise(name):
    def infer(g, ins, attrs):
        x = ins["x"]
        need_tensor(x, "x")
        return tensor(act_output(g, x.rep, name, "x"), x.placement), {}
    return infer


for _name in PARITY:
    op(_name, Param("x", "value"))(_pointwise(_name))


@op("gate", Param("x", "value"), Param("act", "act", "silu", keyword_only=True),
    Param("odd_act", "act", "tanh", keyword_only=True), Param("gate_act", "act", "sigmoid", keyword_only=True),
    out="defines",
    doc="Gated nonlinearity: scalars through act (odd_act on pseudoscalars), each non-scalar irrep scaled by its own gate.")
def _gate(g, ins, attrs):
    x, out = ins["x"], attrs["out"]
    need_tensor(x, "x")
    scalars = Irreps(tuple(m for m in out if m.ir.is_scalar))
    gated = Irreps(tuple(m for m in out if not m.ir.is_scalar))
    if out.simplify() != (scalars + gated).simplify():
        raise TypeRuleError("E0206", f"gate output `{out}` must list its scalars before the gated irreps", "out",
                            "scalars after non-scalars", hints=[f"write -> {arrow_rep(scalars + gated)}"])
    gates = Irreps.of([(gated.num_irreps, g.trivial)]) if gated.num_irreps else Irreps(())
    expected = scalars + gates + gated
    if not same_rep(x.rep, expected):
        n = gated.num_irreps
        raise TypeRuleError("E0206", f"gate -> `{out}` needs input `{expected.simplify()}`, got `{x.rep}`", "x",
                            f"expected {scalars.num_irreps} scalars, {n} gates, then {gated or 'nothing'}",
                            notes=[f"one gate scalar per gated irrep: {gated or 'none'} has {n} irreps, so {n} gates",
                                   "gate scalars sit between the activated scalars and the gated irreps"],
                            hints=[f"produce it with linear(...) -> {arrow_rep(expected.simplify())}"])
    acts = tuple(attrs["act"] if m.ir.is_trivial else attrs["odd_act"] for m in scalars)
    for m, act in zip(scalars, acts):
        act_output(g, Irreps((m,)), act, "act" if m.ir.is_trivial else "odd_act")
    act_output(g, gates, attrs["gate_act"], "gate_act")
    return tensor(out, x.placement), {"scalars": scalars, "gates": gates, "gated": gated, "scalar_acts": acts}


@op("norm_activation", Param("x", "value"), Param("act", "act", "sigmoid", keyword_only=True),
    doc="Scales every irrep copy by act of its norm; equivariant for any representation.")
def _norm_activation(g, ins, attrs):
    x = ins["x"]
    need_tensor(x, "x")
    return x, {}


# -- invariants and geometry ------------------------------------------------------------------------
def _block_scalars(g, rep: Irreps) -> Irreps:
    return Irreps.of([(m.mul, g.trivial) for m in rep]).simplify()


@op("norm", Param("x", "value"), doc="Norm of every irrep copy: invariant scalars.")
def _norm(g, ins, attrs):
    x = ins["x"]
    need_tensor(x, "x", "features of norm")
    return tensor(_block_scalars(g, x.rep), x.placement), {}


@op("dot", Param("a", "value"), Param("b", "value"), doc="Inner product of matching irrep copies.")
def _dot(g, ins, attrs):
    a, b = ins["a"], ins["b"]
    need_tensor(a, "a")
    need_tensor(b, "b")
    if not same_rep(a.rep, b.rep):
        raise TypeRuleError("E0202", f"dot needs equal representations, got `{a.rep}` and `{b.rep}`", "b",
                            f"this is `{b.rep}`")
    return tensor(_block_scalars(g, a.rep), same_placement("b", a, b)), {}


@op("spherical_harmonics", Param("x", "value"), Param("lmax", "int"), Param("normalize", "bool", True, keyword_only=True),
    doc="Real spherical harmonics (e3nn basis, component normalization) of a vector.")
def _sh(g, ins, attrs):
    x = ins["x"]
    need_tensor(x, "x", "the argument of spherical_harmonics")
    vec = Irreps.of([(1, g.vector)])
    if not same_rep(x.rep, vec):
        raise TypeRuleError("E0202", f"spherical_harmonics takes one vector `{vec}`, got `{x.rep}`", "x",
                            f"this is `{x.rep}`", hints=["pass an edge vector such as pos[dst] - pos[src]"])
    if not 0 <= attrs["lmax"] <= 12:
        raise TypeRuleError("E0108", f"lmax = {attrs['lmax']} is outside 0..12", "lmax")
    return tensor(Irreps.harmonics(g, attrs["lmax"]), x.placement), {}


def one_scalar(g):
    """The representation of a single invariant scalar, for either family of group."""
    return family_of(g).scalars(g, 1)


def vector_rep(g):
    """The representation carried by differences of positions."""
    return family_of(g).vector(g)


def _scalars(g, n):
    return family_of(g).scalars(g, n)


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
        return tensor(_scalars(g, n), x.placement), {}
    return infer


op("bessel", Param("x", "value"), Param("n", "int", 8), Param("cutoff", "float"),
   doc="Bessel radial basis sin(k pi d / c) / d (NequIP), n functions.")(_radial("bessel"))
op("gaussian", Param("x", "value"), Param("n", "int", 8), Param("cutoff", "float"),
   doc="Gaussian radial basis with n centres on [0, cutoff].")(_radial("gaussian"))
op("envelope", Param("x", "value"), Param("cutoff", "float"), Param("p", "int", 6, keyword_only=True),
   doc="Smooth polynomial cutoff (NequIP), exactly zero beyond the cutoff.")(_radial("envelope"))


@op("mlp", Param("x", "value"), Param("hidden", "ints*"), Param("act", "act", "silu", keyword_only=True), out="defines",
    doc="Multilayer perceptron on invariant scalars: hidden sizes, output `-> Kx0e` or taken from the tensor product it feeds.")
def _mlp(g, ins, attrs):
    x, out = ins["x"], attrs.get("out")
    need_invariant(x, "x", "the input of an MLP")
    if any(s < 1 for s in attrs["hidden"]):
        raise TypeRuleError("E0108", "MLP sizes must be positive", "hidden")
    if out is None:
        if not attrs.get("open"):
            raise TypeRuleError("E0104", "mlp needs its output: mlp(x, hidden...) -> Kx0e", None)
        return ValueType("tensor", None, x.placement), {}
    if not out.is_invariant() or out.dim == 0:
        raise TypeRuleError("E0305", f"an MLP produces invariant scalars, not `{out}`", "out", "not invariant scalars",
                            hints=[f"write -> {max(out.num_irreps, 1)}x{g.trivial}"])
    return tensor(Irreps.of([(out.dim, g.trivial)]), x.placement), {}


@op("concat", Param("xs", "values*"), doc="Concatenation of features (direct sum of representations).")
def _concat(g, ins, attrs):
    xs = ins["xs"]
    if not xs:
        raise TypeRuleError("E0104", "concat needs at least one value", None)
    for i, x in enumerate(xs):
        need_tensor(x, f"xs.{i}")
    place = same_placement(f"xs.{len(xs) - 1}", *xs)
    rep = Irreps(())
    for x in xs:
        rep = rep + x.rep
    return tensor(rep, place), {}


@op("grad", Param("y", "value"), Param("x", "value"),
    doc="Gradient of a scalar with respect to an input: -grad(energy, pos) gives forces.")
def _grad(g, ins, attrs):
    y, x = ins["y"], ins["x"]
    need_tensor(y, "y")
    if len(y.rep) != 1 or y.rep[0].mul != 1 or not y.rep[0].ir.is_scalar:
        raise TypeRuleError("E0603", f"grad differentiates a single scalar, got `{y.rep}`", "y",
                            f"this is `{y.rep}`", hints=["reduce to one scalar first, e.g. sum_nodes(linear(h) -> 1x0e)"])
    p = y.rep[0].ir.p
    if x.kind == "point":
        rep = Irreps.of([(1, _with_parity(g, g.vector, p))])
    elif x.kind == "tensor" and x.rep is not None:
        rep = Irreps.of([(m.mul, _with_parity(g, m.ir, p)) for m in x.rep])
    else:
        raise TypeRuleError("E0603", "grad differentiates with respect to positions or features", "x",
                            f"this is a {x.kind}")
    return tensor(rep, x.placement), {}


def _with_parity(g, ir, p):
    return type(ir)(ir.l, ir.p * p) if g.has_reflections else ir


# -- arithmetic -------------------------------------------------------------------------------------
_POINT_HINT = "differences of positions are vectors: pos[dst] - pos[src]"


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
                            notes=["the sum of two points is not translation equivariant"], hints=[_POINT_HINT])
    if "point" in kinds:
        other, where = (b, "b") if a.kind == "point" else (a, "a")
        need_tensor(other, where)
        if not same_rep(other.rep, vec):
            raise TypeRuleError("E0402", f"a position can only move by a vector `{vec}`, got `{other.rep}`", where,
                                f"this is `{other.rep}`", hints=[_POINT_HINT])
        if a.kind == "tensor" and sym == "-":
            raise TypeRuleError("E0402", "vector - position is not equivariant", "b", "a point", hints=[_POINT_HINT])
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
    bad = [str(m) for m in x.rep if not m.ir.is_trivial]
    if bad:
        raise TypeRuleError("E0303", f"adding a constant to `{x.rep}` is not equivariant", "x",
                            f"not invariant: {', '.join(bad)}",
                            notes=["a constant is fixed by the group; only invariant channels may be shifted"])
    return x, {}


def _no_point(x: ValueType, what: str) -> None:
    if x.kind == "point":
        raise TypeRuleError("E0402", f"a position cannot be {what}", "x", "a point",
                            notes=["scaling or negating a point does not commute with translations"],
                            hints=[_POINT_HINT])


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


def _product_rep(g, a: Irreps, b: Irreps, sym: str, where: str) -> Irreps:
    if len(a) == 1 and a[0].mul == 1 and a[0].ir.is_scalar:
        return Irreps.of([(m.mul, _with_parity(g, m.ir, a[0].ir.p)) for m in b])
    if len(b) == 1 and b[0].mul == 1 and b[0].ir.is_scalar:
        return Irreps.of([(m.mul, _with_parity(g, m.ir, b[0].ir.p)) for m in a])
    if a.is_scalar() and b.is_scalar() and a.dim == b.dim:
        return Irreps.of([(1, _with_parity(g, x, y.p)) for x, y in zip(_channels(a), _channels(b))]).simplify()
    raise TypeRuleError("E0304", f"`{sym}` of `{a}` and `{b}` is not equivariant", where,
                        "elementwise products need scalars on one side",
                        notes=["allowed: one scalar times anything, or scalars times scalars of equal size"],
                        hints=["use tensor_product(a, b) -> R for products of non-scalar features"])


@op("mul", Param("a", "value"), Param("b", "value"))
def _mul(g, ins, attrs):
    a, b = ins["a"], ins["b"]
    need_tensor(a, "a")
    need_tensor(b, "b")
    return tensor(_product_rep(g, a.rep, b.rep, "*", "b"), same_placement("b", a, b)), {}


@op("div", Param("a", "value"), Param("b", "value"))
def _div(g, ins, attrs):
    a, b = ins["a"], ins["b"]
    need_tensor(a, "a")
    need_tensor(b, "b")
    if not b.rep.is_scalar():
        raise TypeRuleError("E0304", f"division by non-scalar `{b.rep}`", "b", "not a scalar")
    return tensor(_product_rep(g, a.rep, b.rep, "/", "b"), same_placement("b", a, b)), {}


@op("pow", Param("x", "value"), Param("k", "float"))
def _pow(g, ins, attrs):
    x, k = ins["x"], attrs["k"]
    need_tensor(x, "x")
    if x.rep.is_invariant():
        return x, {}
    if x.rep.is_scalar() and float(k).is_integer():
        return tensor(Irreps.of([(m.mul, _with_parity(g, g.trivial, m.ir.p ** int(k))) for m in x.rep]), x.placement), {}
    raise TypeRuleError("E0304", f"`**` on `{x.rep}` is not equivariant", "x", "powers act on scalars only",
                        hints=["take a power of a norm instead"])


def suggest(name: str, known) -> list[str]:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return [f"did you mean `{close[0]}`?"] if close else []
