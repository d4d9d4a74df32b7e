"""A group as plain data (a "recipe"), so generated modules can rebuild the group they were compiled for.

* ``("irreps", "O3")``: the irreps-based groups O3 and SO3;
* ``("builtin", "D4")``: a built-in matrix group, by the name ``builtin_group`` reads;
* ``("matrix", name, compact, lie, discrete)``: a group declared by its generators
  (nested lists of floats; repr() of floats round-trips exactly).

Recipes contain only strings, booleans and floats, so writing one into generated
source with repr() cannot inject code.
"""
from __future__ import annotations

from .o3 import O3, SO3

_IRREPS = {"O3": O3, "SO3": SO3}


def recipe_of(group) -> tuple:
    if group.rep_family == "irreps":
        return ("irreps", group.name)
    import numpy as np  # matrix groups only: O3 specs compile without numpy

    from .builtin import builtin_group
    try:
        if builtin_group(group.name) == group:
            return ("builtin", group.name)
    except ValueError:
        pass
    return ("matrix", group.name, group.compact,
            [np.asarray(m, dtype=float).tolist() for m in group.lie_generators],
            [np.asarray(m, dtype=float).tolist() for m in group.discrete_generators])


_CACHE: dict = {}


def group_from_recipe(recipe):
    """The group a recipe describes (built once per process: bases and element lists are cached on it)."""
    key = repr(recipe)
    if key in _CACHE:
        return _CACHE[key]
    kind = recipe[0]
    if kind == "irreps":
        group = _IRREPS[recipe[1]]
    elif kind == "builtin":
        from .builtin import builtin_group
        group = builtin_group(recipe[1])
    elif kind == "matrix":
        from .matrix import MatrixGroup
        _, name, compact, lie, discrete = recipe
        dim = len((lie or discrete)[0]) if (lie or discrete) else None
        group = MatrixGroup(name, lie, discrete, compact=compact, dim=dim)
    else:
        raise ValueError(f"unknown group recipe {recipe!r}")
    _CACHE[key] = group
    return group
