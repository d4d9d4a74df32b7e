"""Whether the two vectors of orthonormalize(a, b) can determine a rotation at all.

Gram-Schmidt needs a and b not parallel.  They are parallel whatever the input when both are scalar
multiples of one vector: each is reached from a common value only through maps that multiply a single copy
of the vector by a constant (linear maps, scaling, negation), and that value holds one copy of the vector's
irrep, or came by such maps from one that does.
"""
from __future__ import annotations

# Ops that map their input "x" linearly copy by copy, with weights shared by all rows (Schur: within an irrep).
_SCALING = {"linear", "scale", "neg"}


def _copies(ir_model, node: str, irrep) -> int:
    rep = ir_model.node(node)["type"].rep
    return sum(m.mul for m in rep if m.ir == irrep) if rep is not None else 0


def _chain(ir_model, node: str) -> list:
    """`node` and the values above it reached through constant linear maps, nearest first."""
    chain = [node]
    while True:
        d = ir_model.node(node)
        ports = dict(ir_model.inputs_of(node))
        if d["op"] not in _SCALING or set(ports) != {"x"} or d["attrs"].get("approximate") or d["attrs"].get("bias"):
            return chain
        node = ports["x"]
        chain.append(node)


def always_parallel(ir_model, a: str, b: str) -> str | None:
    """The value both vectors are constant multiples of (its id), or None."""
    irrep = ir_model.node(a)["type"].rep[0].ir
    if ir_model.node(b)["type"].rep[0].ir != irrep:
        return None
    up_a, up_b = _chain(ir_model, a), set(_chain(ir_model, b))
    for i, node in enumerate(up_a):
        # a common value: both are constant multiples of its copies, which hold no more directions than
        # the fewest copies met above it
        if node in up_b and min(_copies(ir_model, n, irrep) for n in up_a[i:]) <= 1:
            return node
    return None
