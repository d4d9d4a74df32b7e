"""How groups with irreps (O3, SO3) answer the typing rules' questions: selection rules, Schur's
lemma between copies of the same irrep, parities of pointwise functions.  Pure algebra, no numpy.

``RULES`` implements ``type_rules.FamilyRules``; the ops only this family has (tensor products,
spherical harmonics, dot, grad) keep their rule here under their own name.
"""
from __future__ import annotations

from ..reps import tp as tpd
from ..reps.irreps import Irreps
from . import gaunt_rules
from .activations import PARITY
from .type_rules import FamilyRules, TypeRuleError, need_tensor, same_placement
from .types import ValueType, same_rep, tensor


def _fmt(irs) -> str:
    return ", ".join(str(i) for i in irs) if irs else "nothing"


def arrow_rep(rep: Irreps) -> str:
    """A representation as written after `->`: sums need parentheses."""
    return f"({' + '.join(str(m) for m in rep)})" if len(rep) > 1 else str(rep)


def _nearest(wanted, candidates):
    same_l = [c for c in candidates if c.l == wanted.l]
    if same_l:
        return same_l[0]
    return min(candidates, key=lambda c: abs(c.l - wanted.l)) if candidates else None


def _channels(rep: Irreps) -> list:
    return [ir for mul, ir in rep for _ in range(mul)]


def _with_parity(g, ir, p):
    return type(ir)(ir.l, ir.p * p) if g.has_reflections else ir


def _block_scalars(g, rep: Irreps) -> Irreps:
    return Irreps.of([(m.mul, g.trivial) for m in rep]).simplify()


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


def shared_path_channels(a: Irreps, b: Irreps, out: Irreps, mode: str) -> int:
    """The channel count C of a product with path-weight sharing (its weight count), or the layout error."""
    if mode != "uvu":
        raise TypeRuleError("E0104", f"path-weight sharing is for channelwise (uvu) products, not {mode}", "share_paths",
                            hints=["use mode = uvu with share_paths = true"])
    muls = {m.mul for m in a} | {m.mul for m in out}
    if len(muls) != 1 or any(m.mul != 1 for m in b):
        raise TypeRuleError("E0208", "path-weight sharing needs C channels of a and of the output and one channel of b",
                            "share_paths", f"`{a}` (x) `{b}` -> `{out}`",
                            notes=["one weight per channel multiplies every path of that channel: each channel must "
                                   "hold one copy of each irrep, e.g. 16x0e + 16x1o times 1x0e + 1x1o"])
    return next(iter(muls))


MAX_CORRELATION = 4  # Sym^5 bases of l <= 3 features would take minutes to build
# Product bases with more entries than this (d^nu (2L+1)) are refused: their construction grows past
# minutes and gigabytes (l <= 3 features at correlation 4: 196608 entries for 1o, 64 s and 4 GB).
MAX_PRODUCT_ENTRIES = 60_000


def _symmetric_reach(g, irs: tuple, nu: int):
    """The irreps some Sym^k(V), k <= nu, contains, up to l = nu * max l of V."""
    from ..reps.symmetric_power import basis_size
    top = nu * max(ir.l for ir in irs)
    candidates = set(irs)
    frontier = set(irs)
    for _ in range(nu - 1):
        frontier = {c for a in frontier for b in irs for c in g.product(a, b) if c.l <= top}
        candidates |= frontier
    return [ir for ir in candidates if any(basis_size(g, irs, ir, k) for k in range(1, nu + 1))]


def _selection_label(g, a: Irreps, b: Irreps, ir) -> str:
    for x in a:
        for y in b:
            if x.ir.l + y.ir.l >= ir.l >= abs(x.ir.l - y.ir.l):
                return f"parity: {g.selection_note(x.ir, y.ir)}"
    top = max(x.ir.l for x in a) + max(y.ir.l for y in b) if len(a) and len(b) else 0
    return f"l = {ir.l} is out of reach: at most {top} here"


class IrrepsRules(FamilyRules):
    def need_invariant(self, t: ValueType, where: str, what: str, code: str = "E0305") -> None:
        need_tensor(t, where)
        bad = [str(x) for x in t.rep if not x.ir.is_trivial]
        if bad:
            raise TypeRuleError(code, f"{what} must be invariant scalars, got `{t.rep}`", where,
                                f"not invariant: {', '.join(bad)}",
                                hints=["make them invariant first, e.g. with norm(...) or dot(...)"])

    def check_max(self, x: ValueType, what: str) -> None:
        bad = [str(m) for m in x.rep if not m.ir.is_trivial]
        if bad:
            raise TypeRuleError("E0503", f"{what} over `{x.rep}` is not equivariant", "x",
                                f"not invariant: {', '.join(bad)}",
                                notes=["a componentwise maximum does not commute with rotations or reflections"],
                                hints=["use sum or mean, or take max over invariant scalars only"])

    def linear_map(self, g, rep_in: Irreps, rep_out: Irreps) -> dict:
        have = rep_in.irreps_set()
        for mul, ir in rep_out:
            if ir not in have:
                near = _nearest(ir, have)
                raise TypeRuleError(
                    "E0201", f"linear map cannot produce `{mul}x{ir}` from `{rep_in}`", "out",
                    f"no `{ir}` in the input",
                    notes=["Schur's lemma: an equivariant linear map only connects copies of the same irrep",
                           f"input irreps: {_fmt(have)}"],
                    hints=([f"did you mean `{mul}x{near}`?"] if near is not None else [])
                    + ["create new irreps with a tensor product first"])
        return {}

    def check_bias(self, g, rep_out: Irreps, attrs: dict) -> None:
        if attrs.get("bias") and not any(m.ir.is_trivial for m in rep_out):
            raise TypeRuleError("E0201", "bias needs an invariant output channel", "bias",
                                f"`{rep_out}` has no invariant scalars", hints=["drop `bias = true`"])

    def pointwise(self, g, rep: Irreps, act: str, where: str) -> Irreps:
        return act_output(g, rep, act, where)

    def gate(self, g, rep_in: Irreps, out: Irreps, attrs: dict) -> dict:
        scalars = Irreps(tuple(m for m in out if m.ir.is_scalar))
        gated = Irreps(tuple(m for m in out if not m.ir.is_scalar))
        if out.simplify() != (scalars + gated).simplify():
            raise TypeRuleError("E0206", f"gate output `{out}` must list its scalars before the gated irreps", "out",
                                "scalars after non-scalars", hints=[f"write -> {arrow_rep(scalars + gated)}"])
        gates = Irreps.of([(gated.num_irreps, g.trivial)]) if gated.num_irreps else Irreps(())
        expected = scalars + gates + gated
        if not same_rep(rep_in, expected):
            n = gated.num_irreps
            raise TypeRuleError("E0206", f"gate -> `{out}` needs input `{expected.simplify()}`, got `{rep_in}`", "x",
                                f"expected {scalars.num_irreps} scalars, {n} gates, then {gated or 'nothing'}",
                                notes=[f"one gate scalar per gated irrep: {gated or 'none'} has {n} irreps, so {n} gates",
                                       "gate scalars sit between the activated scalars and the gated irreps"],
                                hints=[f"produce it with linear(...) -> {arrow_rep(expected.simplify())}"])
        acts = tuple(attrs["act"] if m.ir.is_trivial else attrs["odd_act"] for m in scalars)
        for m, act in zip(scalars, acts):
            act_output(g, Irreps((m,)), act, "act" if m.ir.is_trivial else "odd_act")
        act_output(g, gates, attrs["gate_act"], "gate_act")
        return {"scalars": scalars, "gates": gates, "gated": gated, "scalar_acts": acts}

    def norm(self, g, rep: Irreps) -> tuple:
        return _block_scalars(g, rep), {}

    def mlp_output(self, g, x: ValueType, out, attrs: dict) -> tuple:
        if out is None:
            if not attrs.get("open"):
                raise TypeRuleError("E0104", "mlp needs its output: mlp(x, hidden...) -> Kx0e", None)
            return ValueType("tensor", None, x.placement), {}
        if not out.is_invariant() or out.dim == 0:
            raise TypeRuleError("E0305", f"an MLP produces invariant scalars, not `{out}`", "out", "not invariant scalars",
                                hints=[f"write -> {max(out.num_irreps, 1)}x{g.trivial}"])
        return tensor(Irreps.of([(out.dim, g.trivial)]), x.placement), {}

    def check_shiftable(self, x: ValueType) -> None:
        bad = [str(m) for m in x.rep if not m.ir.is_trivial]
        if bad:
            raise TypeRuleError("E0303", f"adding a constant to `{x.rep}` is not equivariant", "x",
                                f"not invariant: {', '.join(bad)}",
                                notes=["a constant is fixed by the group; only invariant channels may be shifted"])

    def product(self, g, a: Irreps, b: Irreps, sym: str, where: str) -> Irreps:
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

    def check_divisor(self, b: ValueType) -> None:
        if not b.rep.is_scalar():
            raise TypeRuleError("E0304", f"division by non-scalar `{b.rep}`", "b", "not a scalar")

    def power(self, g, x: ValueType, k: float) -> ValueType:
        if x.rep.is_invariant():
            return x
        if x.rep.is_scalar() and float(k).is_integer():
            return tensor(Irreps.of([(m.mul, _with_parity(g, g.trivial, m.ir.p ** int(k))) for m in x.rep]), x.placement)
        raise TypeRuleError("E0304", f"`**` on `{x.rep}` is not equivariant", "x", "powers act on scalars only",
                            hints=["take a power of a norm instead"])

    # -- the ops only irreps groups have ---------------------------------------------------------------
    def tensor_product(self, g, ins, attrs):
        a, b, w = ins["a"], ins["b"], ins.get("weights")
        need_tensor(a, "a")
        need_tensor(b, "b")
        place = same_placement("b", a, b)
        if attrs["mode"] == "gaunt":
            if w is not None and not w.is_open:
                self.need_invariant(w, "weights", "tensor-product weights", code="E0205")
                place = same_placement("weights", a, b, w)
            out, derived = gaunt_rules.gaunt(g, a, b, w, attrs)
            return tensor(out, place), derived
        rank = attrs.get("rank", 0)
        if rank:
            if attrs["mode"] not in ("uvu", "uvw"):
                raise TypeRuleError("E0104", f"a {attrs['mode']} product has no low-rank form", "rank",
                                    hints=["use mode = uvu or uvw with rank = R"])
            if rank < 1:
                raise TypeRuleError("E0108", "the rank must be at least 1", "rank")
            if not attrs.get("approximate"):
                raise TypeRuleError("E0213", f"a rank-{rank} product is only approximately equivariant", "rank",
                                    "not declared approximate",
                                    notes=["each path's Clebsch-Gordan table is replaced by its rank-R CP approximation: "
                                           "exact only at or above the table's CP rank"],
                                    hints=[f"declare it: tensor_product(..., rank = {rank}, approximate = true)"])
        if attrs.get("algorithm", "auto") != "auto":
            raise TypeRuleError("E0104", f"`algorithm = {attrs['algorithm']}` chooses how a Gaunt product is computed",
                                "algorithm", f"a {attrs['mode']} product has one algorithm",
                                hints=["drop it, or use mode = gaunt"])
        d = tp_descriptor(g, a.rep, b.rep, attrs)
        numel = d.weight_numel
        if attrs.get("share_paths"):
            numel = shared_path_channels(a.rep, b.rep, d.irreps_out, attrs["mode"])
        if w is not None:
            if attrs["mode"] == "full":
                raise TypeRuleError("E0205", "a full tensor product has no weights", "weights", "remove this")
            if w.is_open:
                raise TypeRuleError("E0205", "the weights' size was not resolved", "weights")
            self.need_invariant(w, "weights", "tensor-product weights", code="E0205")
            if w.rep.dim != numel:
                raise TypeRuleError("E0205", f"the tensor product needs {numel} weights, got `{w.rep}`",
                                    "weights", f"{w.rep.dim} values",
                                    notes=[f"{d}" + (" with one weight per channel for all paths" if numel != d.weight_numel
                                                     else "")],
                                    hints=[f"produce {numel}x0e, e.g. mlp(..., {numel}), or leave the MLP's last size open"])
            place = same_placement("weights", a, b, w)
        return tensor(d.irreps_out, place), {"descriptor": d, "shared_weights": w is None and attrs["mode"] != "full",
                                              "weight_numel": numel}

    def sphere_mlp(self, g, ins, attrs):
        need_tensor(ins["x"], "x")
        out, derived = gaunt_rules.sphere_mlp(g, ins, attrs)
        return tensor(out, ins["x"].placement), derived

    def symmetric_contraction(self, g, ins, attrs):
        x, out, by, nu = ins["x"], attrs["out"], ins.get("by"), attrs["correlation"]
        need_tensor(x, "x")
        if not 1 <= nu <= MAX_CORRELATION:
            raise TypeRuleError("E0108", f"correlation = {nu} is outside 1..{MAX_CORRELATION}", "correlation",
                                "the body order of the product basis")
        channels = {m.mul for m in x.rep}
        irs = tuple(m.ir for m in x.rep)
        if len(channels) != 1 or len(set(irs)) != len(irs) or not irs:
            raise TypeRuleError("E0208", f"a symmetric contraction takes C channels of distinct irreps, got `{x.rep}`",
                                "x", "blocks of different multiplicity, or an irrep twice",
                                notes=["each channel is one copy of every irrep of the input, e.g. 16x0e + 16x1o + 16x2e"],
                                hints=["map to that layout first: linear(x) -> (16x0e + 16x1o + 16x2e)"])
        (c,) = channels
        d = sum(ir.dim for ir in irs)
        for mul, ir in out:
            if d ** nu * ir.dim > MAX_PRODUCT_ENTRIES:
                raise TypeRuleError("E0108", f"the product basis of correlation {nu} from `{x.rep}` to `{ir}` has "
                                    f"{d ** nu * ir.dim} entries ({d}^{nu} x {ir.dim}), more than the "
                                    f"{MAX_PRODUCT_ENTRIES} the compiler builds", "correlation", "too large",
                                    hints=["lower the correlation, or the highest l of the contracted features"])
        counts = []
        from ..reps.symmetric_power import basis_size  # numpy: only for models that contract
        for mul, ir in out:
            if mul != c:
                raise TypeRuleError("E0208", f"symmetric contraction keeps the {c} channels of its input, not `{mul}x{ir}`",
                                    "out", f"{mul} channels", hints=[f"use {c}x{ir}"])
            per_order = tuple(basis_size(g, irs, ir, k) for k in range(1, nu + 1))
            if not any(per_order):
                reach = sorted({r for r in _symmetric_reach(g, irs, nu)})
                raise TypeRuleError("E0203", f"a symmetric contraction of correlation {nu} cannot produce `{ir}` from "
                                    f"`{x.rep}`", "out", f"no `{ir}` in Sym^k of one channel for k <= {nu}",
                                    notes=[f"reachable here: {_fmt(reach)}"])
            counts.append(per_order)
        derived = {"channels": c, "basis_sizes": tuple(counts)}
        place = x.placement
        if by is not None:
            place, derived["selectors"] = self.selector(x, by, "a contraction's")
        return tensor(out, place), derived

    def dot(self, g, ins, attrs):
        a, b = ins["a"], ins["b"]
        need_tensor(a, "a")
        need_tensor(b, "b")
        if not same_rep(a.rep, b.rep):
            raise TypeRuleError("E0202", f"dot needs equal representations, got `{a.rep}` and `{b.rep}`", "b",
                                f"this is `{b.rep}`")
        return tensor(_block_scalars(g, a.rep), same_placement("b", a, b)), {}

    def spherical_harmonics(self, g, ins, attrs):
        x = ins["x"]
        need_tensor(x, "x", "the argument of spherical_harmonics")
        vec = Irreps.of([(1, g.vector)])
        if not same_rep(x.rep, vec):
            raise TypeRuleError("E0202", f"spherical_harmonics takes one vector `{vec}`, got `{x.rep}`", "x",
                                f"this is `{x.rep}`", hints=["pass an edge vector such as pos[dst] - pos[src]"])
        if not 0 <= attrs["lmax"] <= 12:
            raise TypeRuleError("E0108", f"lmax = {attrs['lmax']} is outside 0..12", "lmax")
        return tensor(Irreps.harmonics(g, attrs["lmax"]), x.placement), {}

    def grad(self, g, ins, attrs):
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

    def orthonormalize(self, g, ins, attrs):
        """Two vectors give the columns c1 = a / |a|, c2 (b made orthogonal to c1), c3 = c1 x c2: for O(3) c3
        is a pseudovector when a and b are vectors (its parity is the product of theirs)."""
        xs = ins["xs"]
        if len(xs) != 2:
            raise TypeRuleError("E0801", f"orthonormalize needs two vectors in 3D, got {len(xs)}",
                                "xs.2" if len(xs) > 2 else None, "orthonormalize(a, b)",
                                hints=["pass two vectors, not parallel to each other"])
        a, b = xs
        irs = []
        for where, v in (("xs.0", a), ("xs.1", b)):
            need_tensor(v, where, "a vector of orthonormalize")
            if len(v.rep) != 1 or v.rep[0].mul != 1 or v.rep[0].ir.l != 1:
                raise TypeRuleError("E0801", f"orthonormalize takes single vectors, got `{v.rep}`", where,
                                    f"this is `{v.rep}`",
                                    hints=[f"map it to one vector first: linear(...) -> 1x{g.vector}"])
            irs.append(v.rep[0].ir)
        third = next(ir for ir in g.product(irs[0], irs[1]) if ir.l == 1)
        columns = Irreps.of([(1, irs[0]), (1, irs[1]), (1, third)])
        return ValueType("rotation", columns, same_placement("xs.1", a, b)), {}


RULES = IrrepsRules()
