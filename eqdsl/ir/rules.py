"""The typing rules a group's family supplies, by ``group.rep_family``: ``ops.OPS`` for irreps groups
(O3, SO3), ``matrix_ops.MATRIX_OPS`` for matrix groups (which loads numpy and scipy, so only when
such a group is used).  The checker and the IR verifier look rules up here and nowhere else."""
from __future__ import annotations

import importlib

from .ops import Op

_FAMILY_RULES = {"irreps": ("eqdsl.ir.ops", "OPS"), "matrix": ("eqdsl.ir.matrix_ops", "MATRIX_OPS")}


_LOADED: dict[str, dict[str, Op]] = {}


def rules_for(group) -> dict[str, Op]:
    family = group.rep_family
    rules = _LOADED.get(family)
    if rules is None:
        module, name = _FAMILY_RULES[family]
        rules = _LOADED[family] = getattr(importlib.import_module(module), name)
    return rules
