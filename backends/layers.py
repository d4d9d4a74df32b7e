"""MACE's layers in generated modules with a choice of backend (``choice``: "reference", "triton",
"auto"), like ``tensor_product.TensorProductLayer``: the reference layers' parameters, buffers and
state dicts unchanged, so weights move between backends as they are.

``SelectedLinearLayer``: ``linear(x, by = s)`` over irreps, on Triton a tensor product of x with
the selector's scalars (``triton.selected_linear``).  ``SymmetricContractionLayer``: the symmetric
contraction, on Triton its own generated kernels (``triton.contraction``).  Both run forward,
backward and every higher derivative on the kernels, the selector's gradient included.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from . import choice
from .reference.linear import Linear, SelectedLinear
from .reference.symmetric_contraction import SymmetricContraction


class SelectedLinearLayer(SelectedLinear):
    def __init__(self, group, maps: Sequence[Linear], backend: str = "auto"):
        if not all(isinstance(m, Linear) for m in maps):
            raise TypeError("SelectedLinearLayer takes irreps maps (reference.Linear); "
                            "matrix-group maps run on reference.SelectedLinear")
        super().__init__(maps)
        self.trivial = group.trivial
        self.backend = choice.checked(backend)

    def forward(self, x: torch.Tensor, selector: torch.Tensor) -> torch.Tensor:
        if not choice.uses_triton(self.backend, x):
            return super().forward(x, selector)
        return choice.triton_module("selected_linear").selected_linear(self, x, selector)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, backend={self.backend}"


class SymmetricContractionLayer(SymmetricContraction):
    def __init__(self, group, irreps_in, irreps_out, correlation: int, selectors: int = 0, backend: str = "auto"):
        super().__init__(group, irreps_in, irreps_out, correlation, selectors)
        self.backend = choice.checked(backend)

    def forward(self, x: torch.Tensor, selector: Optional[torch.Tensor] = None) -> torch.Tensor:
        if not choice.uses_triton(self.backend, x):
            return super().forward(x, selector)
        return choice.triton_module("contraction").symmetric_contraction(self, x, selector)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, backend={self.backend}"
