"""Every diagnostic code, with the explanation `eqc explain CODE` prints."""
from __future__ import annotations

CODES: dict[str, tuple[str, str]] = {
    # syntax
    "E0001": ("unexpected token", "The parser met a token that cannot continue the statement. Statements end at a newline; "
              "newlines inside (...) and [...] are ignored, so break long calls inside parentheses."),
    "E0002": ("unexpected character", "A character that is not part of the language (outside comments). Strings use double "
              "quotes and only appear in `import`."),
    "E0003": ("unexpected end of file", "The file ends in the middle of a statement or block."),
    "E0004": ("unbalanced brackets", "An opening (, [ or { without its closing partner, or a closing one with no opener."),
    "E0005": ("not a text file", "Specs are UTF-8 text; the file holds binary or undecodable bytes."),
    # names and structure
    "E0101": ("unknown name", "A name is used before it is defined or is misspelled. Constants, reps and blocks are "
              "declared at the top level; values are bound by `input`, `name = ...` and `output`."),
    "E0102": ("duplicate definition", "A name is defined twice in the same scope, shadows a top-level declaration, or uses a "
              "reserved name (src, dst, position, graph)."),
    "E0103": ("unknown layer or function", "The called name is neither a built-in layer nor a declared block."),
    "E0104": ("wrong arguments", "Too many or too few arguments, an unknown or repeated keyword, or a layer that needs its "
              "output representation (`linear(x) -> R`, `gate(x) -> R`)."),
    "E0105": ("recursive block", "Blocks are inlined at compile time, so a block may not call itself directly or "
              "indirectly. Use `repeat N { ... }` for a fixed number of layers."),
    "E0106": ("import cycle", "Two or more spec files import each other."),
    "E0107": ("cannot read file", "The spec or an imported file cannot be read. Import paths are relative to the importing file."),
    "E0108": ("invalid argument value", "An argument has the right kind but a value outside what the layer accepts "
              "(an unknown mode or activation, a non-positive size, an unknown placement)."),
    "E0110": ("name unusable in Python", "Model and input names become a Python class and forward() arguments: they "
              "cannot be Python keywords or names the generated module uses itself (self, batch, num_graphs, torch, rt)."),
    "E0109": ("unknown, malformed or conflicting group", "The group is unknown, its generators are malformed (not square, "
              "of different sizes, singular, or generating too many elements), or it differs between a spec and its imports. "
              "Built-in groups: O3, SO3, Cn, Dn, Sn, Lorentz, cyclic(n), dihedral(n), symmetric(n), SO(n), O(n), lorentz(), "
              "SL(n), GL(n), Sp(n), SU2(); any other group: matrix_group(lie = [...], discrete = [...])."),
    # representations
    "E0201": ("Schur's lemma", "An equivariant linear map only connects copies of the same irrep: an output irrep with no "
              "copy in the input would be a silent zero block, so it is an error. Create new irreps with a tensor product."),
    "E0202": ("representation mismatch", "Both sides of +, -, dot(...) and similar must carry the same representation."),
    "E0203": ("tensor-product selection rule", "A symmetric contraction of correlation nu reaches an irrep L only if the "
              "symmetric power Sym^k(V) of one channel's irreps V contains L for some k <= nu (Sym^2(1o) = 0e + 2e, no 1e). "
              "For O(3), l1 (x) l2 contains l with |l1-l2| <= l <= l1+l2 and parity p1*p2. "
              "A requested output no pair of inputs can reach is an error naming the reachable irreps."),
    "E0204": ("declared type differs", "The representation declared with `-> R`, in an output or on a block parameter differs "
              "from the inferred one."),
    "E0205": ("tensor-product weights", "Weights must be invariant scalars (0e) whose count equals the tensor product's "
              "weight count; an MLP whose last size is left open takes it from the tensor product it feeds."),
    "E0206": ("gate arity", "gate(x) -> S + V needs input S + N gates + V, where N is the number of irreps in V: one "
              "invariant gate scalar per gated irrep."),
    "E0207": ("value or representation expected", "A representation was used where features are expected, or the reverse, "
              "or a compile-time constant was expected."),
    "E0208": ("channelwise multiplicity", "A channelwise (uvu) tensor product keeps the channels of its first input, so "
              "each output block's multiplicity must equal that of an input block reaching it. A symmetric "
              "contraction works channel by channel too: its input is C channels of distinct irreps (one block "
              "Cx l per irrep) and every output block has those C channels."),
    "E0211": ("Gaunt product selection rule", "The Gaunt product (`mode = gaunt`) multiplies two functions on the "
              "sphere channel by channel: it is symmetric, so its paths have |l1 - l2| <= l3 <= l1 + l2 with l1 + l2 "
              "+ l3 even, and the antisymmetric paths of Clebsch-Gordan products (the cross product 1o x 1o -> 1e, "
              "1o x 1o -> 1o under SO3) are out of its reach. Under O(3) each input is one function times an overall "
              "parity (all irreps 0e, 1o, 2e, ... or all 0o, 1e, 2o, ...), and the output's parity is their product "
              "times (-1)^l. Use mode = uvu or uvw for the other paths."),
    "E0212": ("sphere_mlp features", "sphere_mlp(x, hidden..., grid = N, approximate = true) -> R applies an MLP to "
              "x's values on a grid of the sphere: x and R are channels of distinct degrees (16x0e + 16x1o + 16x2e) "
              "of parity (-1)^l, the parity of functions on the sphere, which a pointwise nonlinearity keeps."),
    "E0213": ("low-rank product not declared approximate", "tensor_product(..., mode = uvu | uvw, rank = R) replaces "
              "every path's Clebsch-Gordan table by its rank-R CP approximation (Tensor Decomposition Networks): "
              "cheaper, and exact only at or above the table's CP rank. Declare it with `approximate = true`; eqc "
              "check reports each such layer's measured equivariance error beside its bound."),
    "E0209": ("invalid irrep", "An irreps literal that the group does not have: O(3) irreps carry parity (1o, 2e), "
              "SO(3) irreps do not (1x1, 16x2)."),
    "E0210": ("block always zero", "For matrix groups whose representations decompose into irreps (SO(2), O(2), Cn, "
              "Dn and finite groups up to order 240), the checker follows which irreps each value can actually carry, "
              "not just its representation. A layer whose types are fine can still get an input that carries none of "
              "the irreps an output block needs (D4: linear(scalar) -> V**2 fills only the invariant part of V**2, so "
              "a following linear(...) -> det is zero for every input and every weight); such a block is an error, "
              "reported where it first becomes zero, with the chain of layers that narrowed its input. Other groups "
              "(SO(n) with n > 2, Lorentz, SL(n), larger finite groups) are not tracked."),
    # nonlinearities and equivariance
    "E0301": ("pointwise function on non-scalars", "A pointwise function applied to l > 0 features does not commute with "
              "rotations. Use gate(...) or norm_activation(...). For matrix groups, pointwise functions are allowed on scalars and "
              "on permutation representations (regular, or the defining representation of S_n), which the group only permutes."),
    "E0302": ("parity of a nonlinearity", "On pseudoscalars (0o) only odd functions (tanh, sin, identity) keep parity; even "
              "ones (abs, cos, square) give invariants; others break reflection equivariance."),
    "E0303": ("constant added to non-invariant features", "Only invariant channels may be shifted by a constant."),
    "E0304": ("non-equivariant product", "Elementwise products need a single scalar on one side or scalars of equal size on "
              "both; products of non-scalar features are tensor products."),
    "E0305": ("MLP on non-invariant input", "MLPs mix channels with arbitrary weights and nonlinearities, so they take "
              "invariant scalars only (0e) and give invariant scalars."),
    "E0306": ("no invariant norm or inner product", "norm(...) and norm_activation(...) need a representation the group "
              "acts on by orthogonal matrices (not true for the Lorentz group or SL(n)); inner(a, b) needs exactly one "
              "invariant bilinear form per block (the Minkowski metric for Lorentz four-vectors)."),
    "E0307": ("group pooling on a non-permutation field", "group_pool takes the max or mean over the components of "
              "regular or permutation representations, which the group only permutes; on other fields it is not invariant."),
    "E0308": ("no action on the pixel grid", "Images (@grid values) and conv2d need a group that maps the square pixel "
              "grid to itself: C2, C4, D1, D2 or D4 (rotations by 90 degrees and reflections). Rotations by other "
              "angles move pixels off the grid, so exact equivariance is impossible there: for other finite groups "
              "of the plane (C8, D8, SO(2), O(2), ...) write conv2d(..., approximate = true) to use band-limited "
              "kernels sampled on rings, exact under the grid's own symmetries and approximate under the rest (eqc "
              "check reports both). Other groups (not acting on the plane) are not supported on images."),
    # geometry
    "E0401": ("position used as a feature", "Positions are points: they move under translations, so only their differences "
              "are vectors. Use pos[dst] - pos[src]."),
    "E0402": ("invalid arithmetic on positions", "point - point is a vector and point +/- vector is a point; adding, "
              "scaling or negating points is not translation equivariant."),
    # graph and placement
    "E0501": ("placement mismatch", "Values combined in one operation must live in the same place (@node, @edge, @graph)."),
    "E0502": ("graph misuse", "src/dst need a graph input, only node values are indexed with [src]/[dst], and only with them."),
    "E0503": ("non-symmetric or non-equivariant aggregation", "max over non-invariant features is not equivariant; use "
              "sum or mean."),
    "E0504": ("aggregation from the wrong place", "scatter_* aggregates per-edge values onto nodes; *_nodes/*_edges pool "
              "per-node/per-edge values into graphs."),
    "E0505": ("output placement differs", "An output declared @node/@edge/@graph lives elsewhere."),
    # model structure
    "E0601": ("missing group, model or outputs", "A spec declares one group and at least one model; a model has outputs."),
    "E0602": ("invalid repeat count", "repeat takes a compile-time integer from 0 to 1000 (0 skips the body)."),
    "E0603": ("invalid gradient", "grad(y, x) differentiates a single scalar y with respect to an input x."),
    "E0701": ("frame averaging misuse", "frame(pos) makes each graph's frame from its positions; to_frame(x, f) "
              "expresses positions or features in it (one copy per frame element, typed as invariant scalars) and "
              "from_frame(y, f) -> R averages the copies back. A value still in a frame cannot be an output or be "
              "differentiated, values of two different frames cannot be combined (their copies are not matched up "
              "under the group), and from_frame takes R.dim scalars per copy or values already carrying R."),
    "E0702": ("no frames for this group", "Frame averaging is built for O(3), SO(3) (PCA frames of the centred "
              "points) and the groups of the plane: SO(2), O(2) (PCA frames) and Cn, Dn (the whole group)."),
    "E0703": ("soft symmetry", "`soft group H` declares a symmetry the model should have only approximately "
              "(equivariance_penalty() measures it). H acts through the model's coordinates: it must act on points "
              "of the same dimension as the model's group, differ from it, and act on every input and output "
              "(scalars, positions and representations built from V; an SO(3) irrep has no matrix for a "
              "reflection, a finite group's regular representation none for other elements)."),
    "E0801": ("rotation output misuse", "orthonormalize(...) builds a rotation (Gram-Schmidt, the continuous 6D "
              "representation and its SO(n) form) from n - 1 single vectors in n dimensions: two for O3 (1o or 1e) "
              "and SO3 (1), V for matrix groups; two vectors that are constant multiples of one vector copy never "
              "determine one. A rotation is an output (`: rotation`), neither an input nor features for other layers."),
    "E0802": ("no rotation outputs for this group", "Rotation outputs need a group of rotations and reflections: "
              "O3, SO3, or a matrix group acting orthogonally on R^n (SO(n), O(n), the planar groups, finite "
              "groups of orthogonal matrices)."),
    "E0803": ("orientation-space misuse", "orientations(n = N, approximate = true) is a grid of N directions (the "
              "sphere for O3 and SO3, the circle for SO2 and O2) on which features are functions of (position, "
              "orientation), one copy per direction (PONITA). to_orientations(x, O) puts features on it (irreps of "
              "parity (-1)^l, or in the plane scalars and V), pair_invariants(r, O) takes one vector, "
              "orientation_conv and from_orientations(y, O) -> R take scalars on that grid (one channel per irrep "
              "copy of R). A value still on a grid cannot be an output or be differentiated, and values of two "
              "grids cannot be combined."),
    "E0804": ("grid not declared approximate", "A finite grid of directions (orientations(...), sphere_mlp(...)) is "
              "not mapped to itself by rotations: features on it are equivariant only up to the grid's resolution. "
              "Declare it with `approximate = true`; eqc check reports the error as the grid grows."),
    "E0604": ("statement in the wrong place", "input/output belong at the top level of a model; return ends a block and "
              "nothing may follow it."),
}


# Warnings: the spec compiles, but probably not into what its author meant.
WARNINGS = {
    "W0801": ("rotation as quaternion or angles", "An output named like an orientation (quaternion, angles, "
              "rotation, pose...) with 4 or 3 components. Every representation of rotations in 4 or fewer real "
              "numbers is discontinuous (Zhou et al., 2019), and invariant scalars cannot turn with the input. "
              "`output R : rotation = orthonormalize(a, b)` of two equivariant vectors is continuous and "
              "equivariant."),
}


def explain(code: str) -> str | None:
    code = code.upper()
    if not code[:1] in ("E", "W"):
        code = "E" + code
    known = {**CODES, **WARNINGS}
    if code not in known:
        return None
    title, text = known[code]
    return f"{code}: {title}\n\n{text}"
