"""Gradients inside a model's forward, e.g. forces = -grad(energy, pos)."""
from __future__ import annotations

import torch


def grad(y: torch.Tensor, x: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """d(sum y)/dx; zeros where y does not depend on x.  create_graph=True allows training on it."""
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=create_graph, allow_unused=True)
    return torch.zeros_like(x) if g is None else g
