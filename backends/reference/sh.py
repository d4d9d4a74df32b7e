"""Real spherical harmonics in e3nn's basis with 'component' normalization (|Y^l|^2 = 2l+1).

Generic in l by coupling: Y^0 = 1, Y^1 = sqrt(3) r, and
Y^{l+1}_k = a_l sum_{ij} C^{l,1,l+1}_{ijk} Y^l_i Y^1_j  with C = wigner_3j.
The coupled product is an equivariant degree-(l+1) polynomial into an
irreducible space, hence proportional to Y^{l+1}; a_l fixes the scale and the
sign by e3nn's convention that on the polar axis e_y, Y^l = sqrt(2l+1) e_(m=0).
With ``normalize=False`` Y^l is the homogeneous polynomial |r|^l Y^l(r/|r|).

At r = 0 with ``normalize=True``: Y^0 = 1, Y^{l>0} = 0, and gradients are
finite (r/|r| is taken as r there, through a double where).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from eqdsl.reps.so3 import wigner_3j

from .exact import ExactBuffers


@functools.lru_cache(maxsize=None)
def _coupling(l: int) -> np.ndarray:
    """a_l * wigner_3j(l, 1, l+1), [2l+1, 3, 2l+3]."""
    c = np.asarray(wigner_3j(l, 1, l + 1), dtype=np.float64)
    # on e_y: Y^l = sqrt(2l+1) e_l, Y^1 = sqrt(3) e_1, so the product lands on index l+1 of C[l, 1, :]
    z = math.sqrt(3 * (2 * l + 1)) * c[l, 1, l + 1]
    assert abs(z) > 1e-8, "the coupled product must not vanish on the polar axis"
    return c * (math.sqrt(2 * l + 3) / z)


def _unit(vec: torch.Tensor) -> torch.Tensor:
    r2 = (vec * vec).sum(-1, keepdim=True)
    pos = r2 > 0
    r = torch.where(pos, torch.sqrt(torch.where(pos, r2, torch.ones_like(r2))), torch.ones_like(r2))
    return vec / r


def _sh(vec: torch.Tensor, couplings: list[torch.Tensor], lmax: int, normalize: bool) -> torch.Tensor:
    if vec.shape[-1] != 3:
        raise ValueError(f"spherical_harmonics needs [..., 3] vectors, got {tuple(vec.shape)}")
    u = _unit(vec) if normalize else vec
    ys = [torch.ones_like(u[..., :1])]
    if lmax >= 1:
        y1 = math.sqrt(3.0) * u
        ys.append(y1)
        y = y1
        for c in couplings:
            y = torch.einsum("...i,...j,ijk->...k", y, y1, c.to(u.dtype))
            ys.append(y)
    return torch.cat(ys, dim=-1)


class SphericalHarmonics(ExactBuffers):
    """vec [..., 3] -> [Y^0 | Y^1 | ... | Y^lmax], [..., (lmax+1)^2]; coupling tensors are buffers."""

    def __init__(self, lmax: int, normalize: bool = True):
        super().__init__()
        if lmax < 0:
            raise ValueError(f"lmax must be >= 0, got {lmax}")
        self.lmax, self.normalize = lmax, normalize
        self.names = []
        for l in range(1, lmax):
            # float64 and not persistent, as the 3j buffers in tensor_product.py; exact again after .float().double()
            self._exact_buffer(f"c{l}", _coupling(l), dtype=torch.float64)
            self.names.append(f"c{l}")

    def forward(self, vec: torch.Tensor) -> torch.Tensor:
        return _sh(vec, [getattr(self, n) for n in self.names], self.lmax, self.normalize)

    def extra_repr(self) -> str:
        return f"lmax={self.lmax}, normalize={self.normalize}"


def spherical_harmonics(lmax: int, vec: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Functional form of SphericalHarmonics (builds the constants per call; modules should use the class)."""
    if lmax < 0:
        raise ValueError(f"lmax must be >= 0, got {lmax}")
    cs = [torch.as_tensor(_coupling(l), dtype=vec.dtype, device=vec.device) for l in range(1, lmax)]
    return _sh(vec, cs, lmax, normalize)
