"""The tensor-product layer of generated modules, with an explicit choice of backend (``choice``:
"reference", "triton" or "auto").

The layer owns its weights exactly like the reference TensorProduct, so a state dict moves
between backends unchanged.  On Triton its launch configuration is autotuned per problem on CUDA
(``tune="auto"``, cached on disk; ``tune=False``: the defaults), for the tensor product and the
convolution alike (``backends.triton.launch``).

``conv(x1_nodes, src, x2, weight, dst, num_nodes)`` is message passing, scatter_sum of the
tensor product of gathered x1 rows: on the Triton backend one fused forward kernel
(``backends.triton.fused``), on the reference gather -> forward -> scatter (chunk by chunk where the
product is channelwise, or fully connected with shared weights: ``reference.tensor_product.TensorProduct.conv``).
"""
from __future__ import annotations

from typing import Optional

import torch

from . import choice
from .reference.tensor_product import TensorProduct


class TensorProductLayer(TensorProduct):
    def __init__(self, desc, shared_weights: bool = True, backend: str = "auto", tune="auto", tune_candidates=None):
        super().__init__(desc, shared_weights)
        choice.checked(backend)
        if tune not in (True, False, "auto"):
            raise ValueError(f"tune must be True, False or 'auto', got {tune!r}")
        self.backend = backend
        self.tune = tune  # the Triton launch configuration: autotuned on CUDA unless False
        self.tune_candidates = tune_candidates  # the configs to try (None: all of autotune.CANDIDATES)
        self._chooser = None  # created on the first Triton call (not a module: nothing in the state dict)

    def chooser(self):
        """The Triton launch configuration's chooser (``backends.triton.launch.LaunchChooser``)."""
        if self._chooser is None:
            from .triton.launch import LaunchChooser

            self._chooser = LaunchChooser(self.desc, self.shared_weights, tune=self.tune,
                                          tune_candidates=self.tune_candidates, owner="TensorProductLayer")
        return self._chooser

    def uses_triton(self, x: torch.Tensor) -> bool:
        return choice.uses_triton(self.backend, x)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        if not self.uses_triton(x1):
            return super().forward(x1, x2, weight)
        return choice.triton_module("per_row").tuned_forward(self, self.chooser(), x1, x2, weight)

    def conv(self, x1_nodes: torch.Tensor, src: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor],
             dst: torch.Tensor, num_nodes: int) -> torch.Tensor:
        """Message-passing convolution: ``out[n] = sum_{e: dst[e] == n} TP(x1_nodes[src[e]], x2[e], weight[e])``.

        x1_nodes [N1, d1], src [E] and dst [E] integer indices (any order, repeats allowed; x1 may be gathered
        by either index), x2 [E, d2], weight [E, weight_numel] per edge or None (shared weights / no weights);
        returns [num_nodes, d_out].  The reference backend computes
        ``scatter(forward(gather(x1_nodes, src), x2, weight), dst, num_nodes, "sum")`` (chunk by chunk
        for the grouped descriptors: ``TensorProduct.conv``); the Triton backend
        runs one fused forward kernel (gather and scatter-add inside it; ``backends.triton.fused``) with the
        same backend rules as ``forward``.
        """
        if not self.uses_triton(x1_nodes):
            return super().conv(x1_nodes, src, x2, weight, dst, num_nodes)
        return choice.triton_module("fused").tuned_conv(self, self.chooser(), x1_nodes, src, x2, weight, dst, num_nodes)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, backend={self.backend}"
