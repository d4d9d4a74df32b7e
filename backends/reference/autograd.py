"""Gradients of outputs with respect to inputs (forces, stresses), double-backward safe."""
from __future__ import annotations

import torch


def grad(y: torch.Tensor, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """d(sum y)/dx, shaped like x; zeros when y does not depend on x.

    With ``create_graph`` (the default) the result is itself differentiable, as
    training on forces needs.  The caller makes sure x requires grad.
    """
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=create_graph, allow_unused=True)
    return torch.zeros_like(x) if g is None else g


def forces(energy: torch.Tensor, pos: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """-d(sum energy)/d pos."""
    return -grad(energy, pos, create_graph)
