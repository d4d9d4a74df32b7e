"""What the checker carries while it walks a spec: name scopes, the model being built, and the
exception that unwinds an expression once its error is reported."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.graph import ModelIR


class Failed(Exception):
    """Unwinds an expression after its error was reported."""


@dataclass
class Scope:
    names: dict = field(default_factory=dict)
    parent: "Scope | None" = None

    """Names visible at one point of a spec: a block's or model's own, then the spec's globals."""

    def lookup(self, name: str):
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def visible(self) -> set:
        out, scope = set(), self
        while scope is not None:
            out |= set(scope.names)
            scope = scope.parent
        return out


@dataclass
class ModelContext:
    """The model being lowered: its IR and where in it (block call, repeat iteration) the checker is."""
    ir: ModelIR
    has_graph: bool = False
    scope_label: str = ""
    inline_stack: list = field(default_factory=list)
    open_mlps: dict = field(default_factory=dict)  # node id -> span of an MLP whose size is still open
    support: object = None  # matrix groups that decompose: vanishing.SupportTracker, the irreps values carry


def scope_items(scope: Scope):
    """Every (name, value) visible from `scope`, innermost first."""
    while scope is not None:
        yield from scope.names.items()
        scope = scope.parent
