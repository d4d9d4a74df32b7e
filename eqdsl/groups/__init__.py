"""Symmetry groups known to the compiler, by the name a spec uses after `group`."""
from .o3 import O3, SO3, O3Group, O3Irrep, SO3Group, SO3Irrep

GROUPS = {"O3": O3, "SO3": SO3}

__all__ = ["GROUPS", "O3", "SO3", "O3Group", "SO3Group", "O3Irrep", "SO3Irrep"]
