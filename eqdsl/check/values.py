"""What an expression evaluates to while checking: a compile-time value or a node of the graph."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.types import ValueType


@dataclass(frozen=True)
class Static:
    """A compile-time number or boolean (literal, const or model parameter)."""
    value: object
    param: str | None = None  # the model parameter it came from, if any
    power: float = 1.0        # value is param ** power (`avg_neighbors ** 0.5` stays a parameter's value)


@dataclass(frozen=True)
class RepValue:
    """A declared or written representation: ``Irreps`` for O3/SO3, ``matrix_reps.Rep`` for matrix groups."""
    rep: object


@dataclass(frozen=True)
class Node:
    id: str
    type: ValueType


@dataclass(frozen=True)
class EdgeIndex:
    which: str  # "src" or "dst"


@dataclass(frozen=True)
class Block:
    decl: object  # ast.BlockDecl


class Poison:
    """The value of an expression that already produced an error: silences follow-up errors."""


POISON = Poison()
