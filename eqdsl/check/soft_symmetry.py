"""What a `soft group` must satisfy: it acts on the model's inputs and outputs.

A soft group G' acts through the same coordinates as the model's group G: positions by g p, and a value
of representation R (written for G) by R's own construction evaluated at g (scalars trivially, V by g,
sums, tensor products, duals and powers accordingly; O(3)/SO(3) irreps by their Wigner matrices).  That
construction must make sense for the elements of G': the check evaluates it at a few of them, the
reflections included (an SO(3) irrep has no matrix for a reflection; a finite group's regular
representation none for a rotation outside the group).
"""
from __future__ import annotations

from ..reps.family import family_of


def point_dim(group) -> int:
    return family_of(group).point_dim(group)


def probe_elements(group) -> list:
    """A few elements of `group` in its defining representation, its generators of reflections included."""
    import numpy as np

    rng = np.random.default_rng(0)
    family = family_of(group)
    elements = [family.sample(group, rng) for _ in range(3)]
    if group.rep_family == "irreps":
        if group.has_reflections:
            elements.append(-np.eye(3))
    else:
        elements += [np.asarray(h, dtype=float) for h in group.discrete_generators]
    return elements


def cannot_act(exact, elements: list, vtype) -> str | None:
    """Why the soft group's `elements` (``probe_elements``) have no action on a value of type `vtype` (a type
    of the model over `exact`), or None."""
    if vtype.kind in ("graph", "point"):
        return None
    if vtype.placement == "grid":
        return "images are not moved by soft groups"
    family = family_of(exact)
    for g in elements:
        try:
            family.action(vtype.rep, g)
        except (ValueError, KeyError, IndexError, NotImplementedError) as err:
            return f"no matrix for an element of the soft group ({err})"
    return None
