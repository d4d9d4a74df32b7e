"""The backend a layer of a generated module runs on, one rule for every layer that has Triton kernels.

backend="reference": plain PyTorch everywhere.
backend="triton":    the generated Triton kernels (CUDA tensors, or the CPU under Triton's
                     interpreter); anything else is an error, never a quiet switch.
backend="auto":      Triton on CUDA tensors, the reference on CPU tensors.  On CUDA without
                     Triton installed this raises instead of falling back.
"""
from __future__ import annotations

import torch

BACKENDS = ("auto", "reference", "triton")


def checked(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


def uses_triton(backend: str, x: torch.Tensor) -> bool:
    return backend == "triton" or (backend == "auto" and x.is_cuda)


def triton_module(name: str):
    """``eqdsl.backends.triton.<name>``, or a RuntimeError saying what to install or choose instead."""
    import importlib

    try:
        return importlib.import_module(f"{__package__}.triton.{name}")
    except ImportError as err:
        raise RuntimeError(f"the Triton backend needs the `triton` package ({err}); "
                           "install it, or build the model with backend='reference'") from None
