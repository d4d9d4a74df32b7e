"""Which irreps each value of a model over a matrix group can carry, and the blocks that are therefore always zero.

The type rules judge one layer at a time: `linear(h) -> det` is allowed when h's representation
`V**2` contains det.  But h may fill only part of `V**2` (D4: `linear(scalar) -> V**2` reaches only
its invariant part), and then that `det` is zero for every input and every weight.  So the checker
follows, per block of every value, a set of irreps that contains everything the block can carry
(its *support*):

* inputs, nonlinear functions, MLPs, constants: every irrep of their representation;
* equivariant linear maps (linear, conv2d with the irreps of its kernel's window): the irreps of
  each output block that the input carries (Schur's lemma); a bias adds the invariant part;
* bilinear maps: the irreps of each output block found in products of the carried irreps;
* sums: the union; concat, scaling, gathering, sums and means over nodes or pixels: unchanged;
* norm, inner, max pooling over the group, gates, products with scalars: zero exactly where their
  inputs are; the mean over the group: the invariant part.

Over-approximating keeps it sound: a block is reported only when its support is empty, i.e. when
it is zero whatever the inputs and weights.  That happens first at a linear, bilinear or conv2d
map or a mean over the group, where the error is reported; everything
downstream of a zero block inherits it silently.  Tracked for the groups whose representations
decompose (``irrep_sets``); for the others nothing is tracked and nothing is reported.
"""
from __future__ import annotations

from ..reps import matrix_properties
from ..reps.matrix_reps import Trivial
from ..ir.matrix_rules import blocks_text
from .irrep_sets import Undecomposable, irrep_sets
from ..ir.type_rules import TypeRuleError

_EMPTY = frozenset()
# Ops whose every output block carries what the same block of their input "x" carries.
_SAME_AS_INPUT = {"scale", "neg", "gather", "scatter_sum", "scatter_mean", "sum_nodes", "mean_nodes", "sum_edges",
                  "mean_edges", "avg_pool2d"}
# Ops that map their input by an equivariant linear map (support: carried irreps of each output block).
_LINEAR = {"linear", "conv2d", "bilinear"}
# Ops whose value is, at every point, a sum of equivariant linear images of their inputs' sources (see `sources`).
_LINEAR_IN_SOURCES = {"linear", "add", "sub", "scale", "neg", "concat"}
_CONST = "const"  # the source of the invariant constant a bias adds
CODE = "E0210"


def _union(support) -> frozenset:
    return frozenset().union(*support)


def ports_of(ir, node: str) -> dict:
    return dict(ir.inputs_of(node))


class SupportTracker:
    """Visits the nodes of one model in creation order; ``visit`` returns the error of a block it finds zero."""

    def __init__(self, sets, ir):
        self.sets, self.ir = sets, ir
        self.support: dict[str, tuple] = {}
        # The values each value is linear in, pointwise: bilinear(x, linear(x)) only sees x (x) x, a symmetric
        # tensor (D4: its det part, x1 y2 - x2 y1, is zero). Nodes missing here are their own source.
        self.sources: dict[str, frozenset] = {}

    @classmethod
    def for_group(cls, group, ir) -> "SupportTracker | None":
        sets = irrep_sets(group)
        return cls(sets, ir) if sets is not None else None

    # -- supports ---------------------------------------------------------------------------------
    def full(self, vtype) -> tuple | None:
        """Everything a value of this type can carry: per block, all of its irreps (None: not features)."""
        if vtype.kind != "tensor" or vtype.rep is None:
            return None
        return tuple(self.sets.of(b) for b in matrix_properties.blocks(vtype.rep))

    def of(self, node: str) -> tuple | None:
        if node not in self.support:  # inputs (created outside the rules) carry everything
            self.support[node] = self.full(self.ir.node(node)["type"])
        return self.support[node]

    def visit(self, node: str, op: str, ports: dict, attrs: dict) -> TypeRuleError | None:
        if self.sets is None:
            return None
        if op in _LINEAR_IN_SOURCES and all(self.of(src) is not None for src in ports.values()):  # not positions
            self.sources[node] = frozenset().union(*(self.sources_of(src) for src in ports.values()),
                                                   [_CONST] if attrs.get("bias") else [])
        try:
            self.support[node], error = self._rule(node, op, ports, attrs)
        except Undecomposable:
            self.sets = None  # a representation this group cannot decompose: stop tracking this model
            self.support.clear()
            return None
        return error

    def sources_of(self, node: str) -> frozenset:
        return self.sources.get(node, frozenset([node]))

    def _source_products(self, u: str, v: str) -> frozenset:
        """Irreps of u (x) v for the values of two sources; for one source u (x) u is a symmetric tensor."""
        if u != v:
            return self.sets.products(self._carried(u), self._carried(v))
        mult = self._multiplicities(u)
        irreps, out = list(mult), set()
        for i, s in enumerate(irreps):  # Sym^2(m s) = m Sym^2(s) + C(m, 2) s (x) s; cross terms s (x) t
            out |= self.sets.symmetric_square(s) if mult[s] == 1 else self.sets.product(s, s)
            for t in irreps[i + 1:]:
                out |= self.sets.product(s, t)
        return frozenset(out)

    def _carried(self, source: str) -> frozenset:
        return frozenset([self.sets.scalar]) if source == _CONST else _union(self.of(source))

    def _multiplicities(self, source: str) -> dict:
        """Copies of each carried irrep in a source's representation (an upper bound on those it fills)."""
        if source == _CONST:
            return {self.sets.scalar: 1}
        mult: dict = {}
        for block, carried in zip(matrix_properties.blocks(self.ir.node(source)["type"].rep), self.of(source)):
            for ir, m in self.sets.counts(block).items():
                if ir in carried:
                    mult[ir] = mult.get(ir, 0) + m
        return mult

    def _rule(self, node, op, ports, attrs):
        full = self.full(self.ir.node(node)["type"])
        ins = {port: self.of(src) for port, src in ports.items()}
        if full is None or any(s is None for s in ins.values()):
            return full, None  # positions, or a value this tracker knows nothing of
        x = ins.get("x")
        if attrs.get("approximate") and op == "linear":
            return full, None  # its unconstrained path reaches every block
        if op in _LINEAR:
            return self._linear_map(node, op, ins, attrs, full)
        if op in _SAME_AS_INPUT or (op in ("global_pool",) and attrs.get("reduce") == "mean"):
            return x, None
        if op in ("add", "sub"):
            return tuple(p | q for p, q in zip(ins["a"], ins["b"])), None
        if op == "concat":
            return tuple(b for i in range(attrs["xs"]) for b in ins[f"xs.{i}"]), None
        if op == "gate":
            n, m = attrs["num_scalars"], len(attrs["gated_sizes"])
            return full[:n] + x[n + m:], None  # each gated block times its (invariant) gate
        scalar = frozenset([self.sets.scalar])
        if op == "norm":
            return tuple(scalar if b else _EMPTY for b in x), None
        if op == "inner":  # a block with one invariant form holds one irrep: it carries all of it or nothing
            return tuple(scalar if p and q else _EMPTY for p, q in zip(ins["a"], ins["b"])), None
        if op == "group_pool":
            if attrs["reduce"] == "max":
                return tuple(scalar if b else _EMPTY for b in x), None
            out = tuple(b & scalar for b in x)
            return out, self._mean_error(node, ins, out)
        if op == "mul":
            return self._product(node, ins), None
        if op == "div" and all(ins["b"]) and len(ins["a"]) == len(full):
            return ins["a"], None
        return full, None  # nonlinear functions, MLPs, constants: anything their representation holds

    def _product(self, node, ins):
        """Elementwise products (matrix_rules.MatrixRules.product): one scalar times anything, or scalars times
        scalars; zero where a factor is."""
        a, b = ins["a"], ins["b"]
        ports = ports_of(self.ir, node)
        rep_a, rep_b = (self.ir.node(ports[p])["type"].rep for p in ("a", "b"))
        if rep_a.size == 1 and matrix_properties.is_scalars(rep_a):
            return b if a[0] else tuple(_EMPTY for _ in b)
        if rep_b.size == 1 and matrix_properties.is_scalars(rep_b):
            return a if b[0] else tuple(_EMPTY for _ in a)
        return tuple(p & q for p, q in zip(a, b))  # scalars by scalars: {scalar} where both are nonzero

    def _linear_map(self, node, op, ins, attrs, full):
        sets = self.sets
        if op == "bilinear":
            feeds = sets.products(_union(ins["a"]), _union(ins["b"])) & self._shared_products(ports_of(self.ir, node))
            silent = not _union(ins["a"]) or not _union(ins["b"])
        else:
            feeds = _union(ins["x"])
            silent = not feeds
            if op == "conv2d":  # the kernel sees a window of pixels: the window's permutation rep times the input
                from ..reps.grid import kernel_rep
                window = kernel_rep(sets.group, attrs["kernel"], Trivial(sets.group), approximate=attrs["sampled"])
                feeds = sets.products(sets.of(window), feeds)
        out = tuple(f & feeds for f in full)
        if attrs.get("bias"):
            out = tuple(o | (f & {sets.scalar}) for o, f in zip(out, full))
        zero = [i for i, o in enumerate(out) if not o]
        if not zero or silent:  # an input that is zero already was reported where it became zero
            return out, None
        return out, self._map_error(node, op, ins, attrs, zero, feeds)

    def _shared_products(self, inputs: dict) -> frozenset:
        return frozenset().union(*(self._source_products(u, v) for u in self.sources_of(inputs["a"])
                                   for v in self.sources_of(inputs["b"])))

    # -- errors -------------------------------------------------------------------------------------
    def _map_error(self, node, op, ins, attrs, zero, feeds) -> TypeRuleError:
        sets, rep = self.sets, self.ir.node(node)["type"].rep
        blocks = blocks_text(rep, zero)
        hints = []
        inputs = ports_of(self.ir, node)
        first = matrix_properties.blocks(rep)[zero[0]]
        needed = sets.of(first)
        if op == "bilinear":
            a, b = inputs["a"], inputs["b"]
            why = (f"the products of {self._name(a)} (carrying {sets.text(_union(ins['a']))}) and {self._name(b)} "
                   f"(carrying {sets.text(_union(ins['b']))}) contain only {sets.text(feeds)}")
            typed = (f"the product of `{self._rep(a)}` and `{self._rep(b)}` contains "
                     f"{sets.text(needed & sets.products(_union(self.full_of(a)), _union(self.full_of(b))))}")
            chain = self._chain(a) + self._chain(b)
            shared = sorted(self.sources_of(a) & self.sources_of(b) - {_CONST})
            if feeds != sets.products(_union(ins["a"]), _union(ins["b"])) and shared:
                squares = ", ".join(f"{self._name(u, plain=True)} (x) {self._name(u, plain=True)}" for u in shared)
                chain.append(f"both are linear in {', '.join(self._name(u) for u in shared)}, so the map sees only the "
                             f"symmetric tensor{'s' if len(shared) > 1 else ''} {squares}, which hold{'' if len(shared) > 1 else 's'} "
                             f"{sets.text(self._shared_products(inputs) & sets.products(_union(ins['a']), _union(ins['b'])))}")
                hints.append("a bilinear map of a value with itself keeps only its symmetric part: pair it with "
                             "other features to reach the rest")
        else:
            x = inputs["x"]
            why = f"the input {self._name(x)} carries only {sets.text(_union(ins['x']))}"
            typed = f"`{self._rep(x)}` contains {sets.text(needed & _union(self.full_of(x)))}"
            if op == "conv2d" and feeds != _union(ins["x"]):
                why += f", which a {attrs['kernel']}x{attrs['kernel']} kernel takes only to {sets.text(feeds)}"
                typed = f"a kernel on `{self._rep(x)}` reaches {sets.text(needed)}"
            chain = self._chain(x)
        return TypeRuleError(
            CODE, f"{blocks} is always zero here: {why}", "out", "no carried irrep reaches this",
            notes=list(dict.fromkeys(chain)) + [
                f"irreps in `{first}`: {sets.text(needed)}",
                f"the types allow this layer ({typed}), but not what reaches it: Schur's lemma leaves nothing "
                "for this block"],
            hints=[f"drop {blocks} from the output, or feed this layer features that carry "
                   f"{sets.text(needed)} (new irreps come from bilinear(a, b) -> R)"] + hints)

    def _mean_error(self, node, ins, out) -> TypeRuleError | None:
        zero = [i for i, (o, b) in enumerate(zip(out, ins["x"])) if not o and b]
        if not zero:
            return None
        x = ports_of(self.ir, node)["x"]
        return TypeRuleError(
            CODE, f"the mean over the group of {self._name(x)} is always zero: it carries only "
                  f"{self.sets.text(ins['x'][zero[0]])}, no invariant part", "x", "no invariant part",
            notes=self._chain(x) + ["the mean over a regular or permutation block is its invariant part"],
            hints=["use group_pool(x, reduce = max), or norm(x)"])

    # -- explanations -----------------------------------------------------------------------------
    def _rep(self, node: str):
        return self.ir.node(node)["type"].rep

    def full_of(self, node: str) -> tuple:
        return self.full(self.ir.node(node)["type"])

    def _name(self, node: str, plain: bool = False) -> str:
        nd = self.ir.node(node)
        name = nd["name"] or f"{nd['op']}(...)"
        return name if plain else f"`{name}`"

    def _what(self, node: str) -> str:
        """How a value was made, as written: `input scalar`, `linear(x) -> V**2`."""
        nd = self.ir.node(node)
        if nd["op"] == "input":
            return f"input `{nd['type'].rep}`"
        args = ", ".join(self._name(src, plain=True) for _, src in self.ir.inputs_of(node))
        out = nd["attrs"].get("out")
        return f"`{nd['op']}({args})" + (f" -> {out}`" if out is not None else "`")

    def _chain(self, node: str, limit: int = 3) -> list[str]:
        """Notes tracing why a value carries only part of its representation, back to where that starts."""
        notes = []
        while node is not None and len(notes) < limit:
            nd, have = self.ir.node(node), self.of(node)
            where = f"line {nd['span'].line}: " if nd["span"] is not None else ""
            carried, everything = _union(have), _union(self.full_of(node))
            if carried == everything:
                notes.append(f"{self._name(node)} ({where}{self._what(node)}) carries {self.sets.text(carried)}")
                break
            notes.append(f"{self._name(node)} ({where}{self._what(node)}) carries only {self.sets.text(carried)} "
                         f"of the irreps in `{nd['type'].rep}` ({self.sets.text(everything)})")
            node = self._narrowing_input(node)
        return notes

    def _narrowing_input(self, node: str) -> str | None:
        """The input to follow back: the first that carries less than its representation, else the first."""
        fed = [src for _, src in self.ir.inputs_of(node) if self.of(src) is not None]
        narrowed = [s for s in fed if _union(self.of(s)) != _union(self.full_of(s))]
        return (narrowed or fed or [None])[0]
