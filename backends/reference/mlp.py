"""Scalar MLP (e3nn ``nn.FullyConnectedNet`` semantics).

No biases; weights N(0,1) divided by sqrt(fan_in) in forward; the activation
sits between layers, not after the last, and is normalize2mom-rescaled by
default (as e3nn does), keeping unit second moments through the stack.
``weights[i]`` has shape [sizes[i], sizes[i+1]], the same as e3nn's ``layer{i}.weight``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .activations import Act, resolve


class MLP(torch.nn.Module):
    def __init__(self, sizes: Sequence[int], act: Act = "silu", normalize: bool = True):
        super().__init__()
        self.sizes = [int(s) for s in sizes]
        if len(self.sizes) < 2:
            raise ValueError("MLP needs at least input and output sizes")
        self.weights = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(a, b)) for a, b in zip(self.sizes, self.sizes[1:])])
        self.act = resolve(act, normalize)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            x = x @ (w / math.sqrt(w.shape[0]))
            if i < last:
                x = self.act(x)
        return x

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}"
