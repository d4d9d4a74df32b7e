"""What the importers share in writing a spec (eqdsl.interop.nequip.nequip_spec, eqdsl.interop.mace.mace_spec)."""
from __future__ import annotations


class RepNames:
    """The spec's `rep` declarations: one name per representation, in order of first use; a name already
    given to another representation gets a number (Features, Features2, ...)."""

    def __init__(self):
        self._names: dict[str, str] = {}  # irreps -> rep name

    def __call__(self, irreps: str, name: str) -> str:
        if irreps not in self._names:
            taken, candidate, k = set(self._names.values()), name, 2
            while candidate in taken:
                candidate, k = f"{name}{k}", k + 1
            self._names[irreps] = candidate
        return self._names[irreps]

    def items(self):
        return self._names.items()


def spelled(irreps) -> str:
    """An e3nn Irreps as the spec writes it (`16x0e+16x1o`: the same spelling in e3nn and eqdsl)."""
    return "+".join(str(m) for m in irreps)
