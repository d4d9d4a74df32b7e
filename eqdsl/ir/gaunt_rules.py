"""Typing of the Gaunt tensor product (Luo, Chen and Zhang, 2024, "Enabling Efficient Equivariant Operations in
the Fourier Basis via Gaunt Tensor Products"): `tensor_product(a, b, mode = gaunt, algorithm = ...) -> R`.

Channel u of a and of b (or b's one channel) are read as functions on the sphere, f(s) = sum_l w_l x_l . Y_l(s)
(component-normalised harmonics, a learned weight per channel and degree of a), multiplied pointwise and
projected back onto the degrees of R, each with its own weight per channel.  Its paths are those of
Clebsch-Gordan products with l1 + l2 + l3 even, each with the Gaunt coefficient as its fixed weight: the
product of two functions is symmetric, so the antisymmetric paths (the cross product 1o x 1o -> 1e, every
path with l1 + l2 + l3 odd) are out of its reach.  Under O(3) a function on the sphere has parity (-1)^l;
each input may carry one overall parity sigma (all its irreps p = sigma (-1)^l), and the output has
sigma_a sigma_b (-1)^l.

The algorithms compute the same numbers (tests compare them): `dense` (the Gaunt coefficients as a sparse
table), `grid` (values on a product quadrature on the sphere, exact for the band limit), `fourier` (the 2D
Fourier coefficients of the functions, their product through an FFT, O(L^3)); `auto` takes the one the cost
model (cost.py) rates cheapest.
"""
from __future__ import annotations

from ..reps.irreps import Irreps
from . import cost
from .type_rules import TypeRuleError

ALGORITHMS = cost.GAUNT_ALGORITHMS
CODE = "E0211"
SPHERE_CODE = "E0212"


def _degrees(g, rep, port: str, channels: set, layer: str = "a Gaunt product") -> tuple[tuple[int, ...], int, int]:
    """(degrees, channels, parity sigma) of an input or output of `layer`: C channels of distinct degrees, one
    overall parity."""
    muls = {m.mul for m in rep}
    ls = [m.ir.l for m in rep]
    if len(muls) != 1 or len(set(ls)) != len(ls) or not muls & channels:
        want = " or ".join(str(c) for c in sorted(channels))
        raise TypeRuleError("E0208", f"{layer} takes channels of distinct degrees, got `{rep}`", port,
                            "blocks of different multiplicity, a degree twice, or other channels",
                            notes=[f"each of the {want} channels is one function on the sphere: one copy of each degree, "
                                   "e.g. 16x0e + 16x1o + 16x2e"],
                            hints=["map to that layout first: linear(x) -> (16x0e + 16x1o + 16x2e)"])
    sigmas = {getattr(m.ir, "p", 1) * (-1) ** m.ir.l for m in rep} if g.has_reflections else {1}
    if len(sigmas) != 1:
        gaunt_product = layer == "a Gaunt product"
        raise TypeRuleError(CODE if gaunt_product else SPHERE_CODE,
                            f"`{rep}` is not one function on the sphere under reflections", port, "parities of both kinds",
                            notes=["a function on the sphere has parity (-1)^l (0e, 1o, 2e, ...)" +
                                   ("; an input may carry one overall sign (0o, 1e, 2o, ...), not a mix" if gaunt_product
                                    else "")],
                            hints=["use mode = uvu or uvw, whose paths take any parities" if gaunt_product else
                                   "use gate(...) or norm_activation(...) for these features"])
    return tuple(sorted(ls)), next(iter(muls)), next(iter(sigmas))


def reachable(la, lb, lmax: int | None = None) -> list[int]:
    """Output degrees with a symmetric path: |l1 - l2| <= l3 <= l1 + l2 and l1 + l2 + l3 even."""
    top = max(la) + max(lb) if lmax is None else lmax
    return [l3 for l3 in range(top + 1)
            if any(abs(l1 - l2) <= l3 <= l1 + l2 and (l1 + l2 + l3) % 2 == 0 for l1 in la for l2 in lb)]


def _cg_reachable(la, lb, l3: int) -> bool:
    return any(abs(l1 - l2) <= l3 <= l1 + l2 for l1 in la for l2 in lb)


def gaunt(g, a, b, w, attrs):
    """The output type and derived attributes of a Gaunt product."""
    out, keep = attrs.get("out"), attrs.get("filter")
    if out is not None and keep is not None:
        raise TypeRuleError("E0104", "give either `-> R` or `filter = R`, not both", "filter")
    la, channels, sa = _degrees(g, a.rep, "a", {m.mul for m in a.rep})
    lb, b_channels, sb = _degrees(g, b.rep, "b", {1, channels})
    sigma = sa * sb
    reach = reachable(la, lb)
    if out is None:
        if keep is None:
            raise TypeRuleError("E0104", "a Gaunt product needs its output: `tensor_product(..., mode = gaunt) -> R`",
                                None, "output representation missing")
        wanted = sorted({m.ir for m in keep}, key=lambda ir: ir.l)
        kept = [ir for ir in wanted if ir.l in reach and (not g.has_reflections or ir.p == sigma * (-1) ** ir.l)]
        if not kept:
            raise TypeRuleError(CODE, "this Gaunt product produces nothing with this filter", "filter", "no symmetric path",
                                notes=[f"degrees with a symmetric path: {', '.join(map(str, reach))}"])
        out = Irreps.of([(channels, ir) for ir in kept])
    lo, out_channels, so = _degrees(g, out, "out", {channels})
    for m in out:
        l3 = m.ir.l
        parity_ok = not g.has_reflections or m.ir.p == sigma * (-1) ** l3
        if l3 in reach and parity_ok:
            continue
        cg = _cg_reachable(la, lb, l3)
        why = ("only antisymmetric paths (l1 + l2 + l3 odd, like the cross product 1o x 1o -> 1e) give it"
               if cg else "no path reaches this degree")
        raise TypeRuleError(CODE, f"a Gaunt product cannot produce `{m}` from `{a.rep} (x) {b.rep}`", "out", why,
                            notes=["the Gaunt product multiplies two functions on the sphere: it is symmetric, so its paths "
                                   "have l1 + l2 + l3 even, and its output parity is sigma_a sigma_b (-1)^l",
                                   f"degrees it reaches here: {', '.join(map(str, reach))}"],
                            hints=["use mode = uvu (channelwise) or uvw: Clebsch-Gordan products have every path"]
                            if cg else [])
    plan = {"la": la, "lb": lb, "lo": lo, "channels": channels, "b_channels": b_channels}
    numel = channels * (len(la) + len(lo))
    if w is not None:
        if w.is_open:
            raise TypeRuleError("E0205", "the weights' size was not resolved", "weights")
        if w.rep.dim != numel:
            raise TypeRuleError("E0205", f"the Gaunt product needs {numel} weights, got `{w.rep}`", "weights",
                                f"{w.rep.dim} values",
                                notes=[f"one per channel and degree of a ({channels} x {len(la)}) and of the output "
                                       f"({channels} x {len(lo)})"],
                                hints=[f"produce {numel}x0e, e.g. mlp(..., {numel}), or leave the MLP's last size open"])
    algorithm = attrs.get("algorithm", "auto")
    if algorithm == "auto":
        algorithm = cost.cheapest_gaunt(plan)
    return out, {**plan, "algorithm": algorithm, "weight_numel": numel, "shared_weights": w is None}


def weight_numel(g, a, b, attrs) -> int | None:
    """The number of weights a Gaunt product's `weights =` takes, or None where its inputs are malformed."""
    try:
        la, channels, _ = _degrees(g, a, "a", {m.mul for m in a})
        out = attrs.get("out")
        if out is not None:
            lo = _degrees(g, out, "out", {channels})[0]
        else:
            return None
    except TypeRuleError:
        return None
    return channels * (len(la) + len(lo))


# -- sphere_mlp (Facet, 2025) ---------------------------------------------------------------------------------

def _natural(g, rep, port: str) -> tuple[tuple[int, ...], int]:
    """(degrees, channels) of features read as functions on the sphere by a pointwise nonlinear layer: they must
    have parity (-1)^l (a nonlinearity of a function of odd overall parity has none)."""
    ls, channels, sigma = _degrees(g, rep, port, {m.mul for m in rep}, layer="sphere_mlp")
    if sigma != 1:
        raise TypeRuleError(SPHERE_CODE, f"`{rep}` is not a function on the sphere of parity (-1)^l", port,
                            "odd overall parity",
                            notes=["a pointwise nonlinearity of values on the sphere commutes with reflections only for "
                                   "features of parity (-1)^l (0e, 1o, 2e, ...)"],
                            hints=["use gate(...) or norm_activation(...) for these features"])
    return ls, channels


def sphere_mlp(g, ins, attrs):
    """sphere_mlp(x, hidden..., act, grid = N, approximate = true) -> R: x's channels evaluated on a grid of the
    sphere, an MLP across channels at every point, projected back onto R's degrees."""
    x, out = ins["x"], attrs["out"]
    la, c_in = _natural(g, x.rep, "x")
    lo, c_out = _natural(g, out, "out")
    if any(s < 1 for s in attrs["hidden"]):
        raise TypeRuleError("E0108", "MLP sizes must be positive", "hidden")
    if attrs["grid"] < 2:
        raise TypeRuleError("E0108", "the grid needs at least 2 rings", "grid")
    if not attrs.get("approximate"):
        raise TypeRuleError("E0804", f"a sphere grid of {attrs['grid']} rings is only approximately equivariant", None,
                            "not declared approximate",
                            notes=["a nonlinearity makes functions of every degree, which no finite grid integrates "
                                   "exactly: the layer is equivariant up to the grid's resolution, and eqc check "
                                   "reports the error"],
                            hints=[f"declare it: sphere_mlp(..., grid = {attrs['grid']}, approximate = true)"])
    return out, {"la": la, "lo": lo, "channels": c_in, "out_channels": c_out}
