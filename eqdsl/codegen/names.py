"""Names in generated modules: readable, unique, and never a spec's raw text.

Spec names reaching here were validated by the checker (identifiers, no Python keywords, none of the
module's own names, E0110); these classes only make them unique and derive constants from them.
"""
from __future__ import annotations

import re


# What a generated module defines or imports itself: no local or constant may take these.
MODULE_NAMES = frozenset({"self", "torch", "rt", "rt_grad", "rg", "rc", "tpd", "G", "GROUPS", "Irreps", "parse_rep",
                          "group_from_recipe", "TensorProductLayer", "Dict", "Optional", "annotations",
                          "src", "dst", "num_nodes", "num_edges", "batch", "num_graphs", "create_graph", "backend",
                          "check_inputs"})


class LocalNames:
    """Variable names of one forward(): the spec's name where it has one (`h`, then `h_2`, `h_3` for the
    values later statements bind to it), the op's name numbered otherwise (`bessel_1`)."""

    def __init__(self, taken=()):
        self.used = set(MODULE_NAMES) | set(taken)
        self.counts: dict[str, int] = {}

    def fresh(self, base: str, numbered: bool = False) -> str:
        k = self.counts.get(base, 0)
        while True:
            k += 1
            name = f"{base}_{k}" if numbered or k > 1 else base
            if name not in self.used:
                break
        self.counts[base] = k
        self.used.add(name)
        return name


class RepConstants:
    """The representations of a generated module as module-level constants, each built once:
    `HIDDEN = Irreps.parse('32x0e+32x1o+32x2e', G)` for `rep Hidden = ...`, `IRREPS_4x0e_2x1o` (or `IRREPS_3`, `REP_3`)
    for one the spec does not name."""

    def __init__(self, family, taken=()):
        self.family = family  # the group's RepFamily: how generated code rebuilds a rep, and names it
        self.taken = set(MODULE_NAMES) | set(taken)
        self.by_text: dict[str, str] = {}
        self.lines: list[str] = []

    def constant(self, rep, spec_name: str | None = None) -> str:
        text = str(rep)
        name = self.by_text.get(text)
        if name is not None:
            return name
        name = self._unique(self._base(text, spec_name))
        self.by_text[text] = name
        self.lines.append(f"{name} = {self.family.source_parse}({text!r}, G)")
        return name

    def _base(self, text: str, spec_name: str | None) -> str:
        if spec_name and spec_name.isascii() and spec_name.isidentifier():
            return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", spec_name).upper()  # GateIn -> GATE_IN
        prefix = self.family.constant_prefix
        described = f"{prefix}_" + text.replace("+", "_") if self.family.names_constants_by_text else ""
        if described.isidentifier() and len(described) <= 40:
            return described
        return prefix

    def _unique(self, base: str) -> str:
        if base != self.family.constant_prefix and base not in self.taken:
            name = base
        else:  # taken, or no better name: BASE_1, BASE_2, ...
            k = 1
            while f"{base}_{k}" in self.taken:
                k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name
