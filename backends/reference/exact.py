"""Buffers of exact constants (bases, Clebsch-Gordan tensors) that stay exact in float64."""
from __future__ import annotations

import numpy as np
import torch


class ExactBuffers(torch.nn.Module):
    """Float buffers with a float64 numpy master, restored exactly when the module becomes float64.

    A float32 basis cast to float64 keeps float32 round-off (entries like 1/sqrt(3)), which
    float64 equivariance checks would see; the masters make ``model.double()`` exact.
    """

    def __init__(self):
        super().__init__()
        self._exact: dict[str, np.ndarray] = {}

    def _exact_buffer(self, name: str, array: np.ndarray, dtype: torch.dtype | None = None) -> None:
        """A non-persistent buffer of `array` in `dtype` (default: torch's default dtype)."""
        self._exact[name] = np.array(array, dtype=np.float64)
        self.register_buffer(name, torch.tensor(self._exact[name], dtype=dtype or torch.get_default_dtype()),
                             persistent=False)

    def _replace_exact_buffer(self, name: str, array: np.ndarray) -> None:
        """`_exact_buffer` again under `name`, in the dtype and on the device the old one had (if any)."""
        old = getattr(self, name, None)
        self._exact_buffer(name, array, dtype=old.dtype if old is not None else None)
        if old is not None:
            setattr(self, name, getattr(self, name).to(old.device))

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        for name, arr in self._exact.items():
            buf = getattr(self, name)
            if buf.dtype == torch.float64:
                setattr(self, name, torch.tensor(arr, device=buf.device))
        return out
