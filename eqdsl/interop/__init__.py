"""Models of other packages as eqdsl modules with the same weights (eqdsl.interop.nequip.from_nequip).

An importer reads the source model's structure, writes the eqdsl spec that builds the same function,
compiles it, and copies the weights over, folding each package's normalisation constants into them.
A model using something the spec cannot say is refused with `UnsupportedModel`, naming the feature:
never a silently different model.
"""
from __future__ import annotations


class UnsupportedModel(ValueError):
    """The source model uses a feature eqdsl cannot express (the message names it)."""
