"""``TritonTensorProduct``: the reference ``TensorProduct``'s drop-in on the generated kernels, per row
(``per_row``) or fused with message passing (``fused``)."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from eqdsl.reps.tp import TensorProductDescriptor

from . import autotune, fused
from .autotune import Config
from .launch import LaunchChooser
from .per_row import tuned_forward


class TritonTensorProduct(torch.nn.Module):
    """Drop-in for ``backends.reference.TensorProduct`` running generated Triton kernels.

    Launch configuration (``autotune.Config``): ``block_b`` (rows per program, a power of
    two), ``block_c`` (largest channel tile, a power of two), ``num_warps`` and ``num_stages``
    (None: Triton's default).  They do not change results beyond float rounding.  How they are
    chosen (``tune``, ``tune_mode``, ``tune_candidates``, ``tuner``): see ``launch.LaunchChooser``;
    by default they are autotuned on CUDA, per problem, and cached on disk.  Passing any of
    ``block_b`` / ``block_c`` / ``num_warps`` / ``num_stages`` fixes them.

    After a call, ``config`` is the configuration it used and ``tune_report`` a dict saying
    where it came from ("source": "explicit" / "default" / "tuned" / "disk" / "memory"), with,
    for tuned configs, every candidate's time, ``tune_s`` (seconds timing) and ``compile_s``
    (seconds compiling), as recorded when the problem was tuned.

    ``conv(x1_nodes, src, x2, weight, dst, num_nodes)``: the fused message-passing convolution
    (``fused``), with its own tuned configuration per problem.
    """

    def __init__(self, desc: TensorProductDescriptor, shared_weights: bool = True, *,
                 block_b: Optional[int] = None, block_c: Optional[int] = None, num_warps: Optional[int] = None,
                 num_stages: Optional[int] = None, tune: Union[bool, str] = "auto", tune_mode: str = "auto",
                 tune_candidates: Optional[Sequence[Config]] = None, tuner: Optional[autotune.Tuner] = None):
        super().__init__()
        # the reference's validation, so both backends accept exactly the same descriptors
        from ..reference.tensor_product import _check_path

        for p in desc.paths:
            _check_path(desc, p)
        self.desc = desc
        self.shared_weights = shared_weights
        self.weight_numel = desc.weight_numel
        self.chooser = LaunchChooser(desc, shared_weights, block_b=block_b, block_c=block_c, num_warps=num_warps,
                                    num_stages=num_stages, tune=tune, tune_mode=tune_mode,
                                    tune_candidates=tune_candidates, tuner=tuner)
        if shared_weights and self.weight_numel > 0:
            self.weight = torch.nn.Parameter(torch.randn(self.weight_numel))
        else:
            self.weight = None

    # the choice of launch configuration, and that of the last call
    tune = property(lambda self: self.chooser.tune)
    tune_mode = property(lambda self: self.chooser.tune_mode)
    tune_candidates = property(lambda self: self.chooser.tune_candidates)
    config = property(lambda self: self.chooser.config)
    tune_report = property(lambda self: self.chooser.report)
    block_b = property(lambda self: self.chooser.config.block_b)
    block_c = property(lambda self: self.chooser.config.block_c)
    num_warps = property(lambda self: self.chooser.config.num_warps)
    num_stages = property(lambda self: self.chooser.config.num_stages)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        return tuned_forward(self, self.chooser, x1, x2, weight)

    def conv(self, x1_nodes: torch.Tensor, src: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor],
             dst: torch.Tensor, num_nodes: int) -> torch.Tensor:
        return fused.tuned_conv(self, self.chooser, x1_nodes, src, x2, weight, dst, num_nodes)

    def extra_repr(self) -> str:
        return f"{self.desc}, shared_weights={self.shared_weights}, backend=triton, {self.chooser.describe()}"
