"""Triton backend: fused tensor products generated per descriptor (see ``codegen`` and README.md).

``TritonTensorProduct(desc, shared_weights)`` is a drop-in for the reference
``TensorProduct``: same constructor, same ``forward(x1, x2, weight=None)``
semantics (e3nn ``mul_ir`` layout, leading dimensions broadcast, per-row or
shared weights), same ``state_dict`` (a single ``weight`` entry when shared),
so weights move between the two unchanged.

Gradients: forward, backward and all higher derivatives run the generated
kernels.  Every kernel is a partial derivative of the multilinear form
T(x1, x2, g, W) (see ``codegen``), so the backward of a kernel is again a kernel
of the same family; ``_TPOp.backward`` calls ``_TPOp.apply`` and double
backward (forces training: -dE/dpos, then dLoss/dparams) is exact, with no
fallback to the reference.

Devices: CUDA tensors, or CPU tensors when Triton's interpreter is on.
``TRITON_INTERPRET=1`` must be set before the process first imports triton
(Triton creates its own library functions at import, interpreted or not) and
stay set; a mismatch raises ``TritonModeError``.  CPU tensors without the
interpreter raise ``TritonUnavailable``; nothing falls back to the reference
silently.

Message passing: ``conv`` (module ``fused``) computes
``scatter_sum(tp(x1_nodes[src], x2, w), dst)`` with one fused forward kernel (x1 gathered inside it,
each destination's messages summed over its piece of the edges sorted by dst, ``segments``, and stored
once: no atomics); its backward and every higher derivative run the same fused family.

MACE's layers: ``contraction`` (the symmetric contraction's own generated kernels, a family closed
under differentiation like the tensor product's) and ``selected_linear`` (``linear(x, by = s)`` as a
tensor product with the selector); see README.md.

Launch configuration: ``block_b``, ``block_c``, ``num_warps`` (and ``num_stages``) are
autotuned per problem on CUDA (``autotune``; ``tune="auto"``, the default), cached on disk;
explicit values, ``tune=False``, the CPU and the interpreter use fixed ones.
"""
from __future__ import annotations

from . import autotune, codegen, fused, kernel_cache, per_row, precompile  # noqa: F401  (submodules as attributes)
from .autotune import DEFAULT_CONFIG, Config
from .kernel_cache import TritonModeError, TritonUnavailable
from .fused import conv, tuned_conv
from .launch import LaunchChooser
from .module import TritonTensorProduct
from .per_row import tensor_product, triton_available, tuned_forward

__all__ = ["TritonTensorProduct", "TritonUnavailable", "TritonModeError", "triton_available", "tensor_product",
           "conv", "tuned_conv", "tuned_forward", "Config", "DEFAULT_CONFIG", "LaunchChooser"]
