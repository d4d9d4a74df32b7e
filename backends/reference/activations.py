"""Pointwise activations by name, and e3nn's second-moment normalization.

Which activation keeps which parity is the compiler's business; this file only
supplies functions.

normalize2mom(f) returns c*f with c = E[f(z)^2]^(-1/2), z ~ N(0, 1), so that
activations keep unit second moments.  Two ways to get c:

* ``method="e3nn"`` (default): the Monte-Carlo estimate e3nn uses — the mean
  over 10^6 float64 standard normals drawn from ``torch.Generator`` seeded 0,
  with c snapped to 1 when |c - 1| < 1e-4.  Bit-for-bit e3nn's constant, so
  models and weights ported from e3nn/NequIP/MACE give the same numbers.  The
  sample is drawn on first use (never at import) and the constants are cached.
* ``method="quadrature"``: Gauss-Hermite quadrature, the exact integral up to
  ~1e-12 for smooth f; differs from e3nn's estimate by ~1e-3 relative.

"identity" is never rescaled (c = 1): e3nn expresses "no activation" as None,
which it does not normalize either.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Union

import numpy as np
import torch
import torch.nn.functional as F


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


def square(x: torch.Tensor) -> torch.Tensor:
    return x * x


def shifted_softplus(x: torch.Tensor) -> torch.Tensor:
    """SchNet's ssp: softplus(x) - log 2, zero at zero."""
    return F.softplus(x) - math.log(2.0)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "silu": F.silu,
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
    "softplus": F.softplus,
    "ssp": shifted_softplus,
    "abs": torch.abs,
    "identity": identity,
    "sin": torch.sin,
    "cos": torch.cos,
    "square": square,
    "exp": torch.exp,
}

Act = Union[str, Callable[[torch.Tensor], torch.Tensor]]


def get_activation(act: Act) -> Callable[[torch.Tensor], torch.Tensor]:
    """A name from ACTIVATIONS, or any elementwise callable (returned unchanged)."""
    if isinstance(act, str):
        try:
            return ACTIVATIONS[act]
        except KeyError:
            raise ValueError(f"unknown activation `{act}`; known: {', '.join(sorted(ACTIVATIONS))}") from None
    if act is None:
        return identity
    if not callable(act):
        raise TypeError(f"activation must be a name or a callable, got {act!r}")
    return act


def _e3nn_sample() -> torch.Tensor:
    # regenerated per new activation (~10 ms) rather than keeping 8 MB alive; the constants are cached
    gen = torch.Generator(device="cpu").manual_seed(0)
    return torch.randn(1_000_000, generator=gen, dtype=torch.float64)


@functools.lru_cache(maxsize=None)
def second_moment_scale(fn: Callable, method: str = "e3nn") -> float:
    """c = E[fn(z)^2]^(-1/2) for z ~ N(0,1); see the module docstring for the methods."""
    if fn is identity:
        return 1.0
    with torch.no_grad():
        if method == "e3nn":
            c = fn(_e3nn_sample()).pow(2).mean().pow(-0.5).item()
            return 1.0 if abs(c - 1.0) < 1e-4 else c
        if method == "quadrature":
            # probabilists' Hermite nodes: weight exp(-z^2/2), total mass sqrt(2 pi)
            z, w = np.polynomial.hermite_e.hermegauss(150)
            f = fn(torch.from_numpy(z)).double().numpy()
            return float((w * f * f).sum() / math.sqrt(2 * math.pi)) ** -0.5
    raise ValueError(f"unknown normalize2mom method `{method}` (use 'e3nn' or 'quadrature')")


class Scaled(torch.nn.Module):
    """x -> cst * fn(x); cst is a Python float, so it is a constant under torch.compile."""

    def __init__(self, fn: Callable, cst: float):
        super().__init__()
        self.fn = fn
        self.cst = float(cst)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fn(x)
        return y if self.cst == 1.0 else y * self.cst

    def extra_repr(self) -> str:
        return f"{getattr(self.fn, '__name__', self.fn)}, cst={self.cst:.6g}"


def normalize2mom(act: Act, method: str = "e3nn") -> Scaled:
    """The activation rescaled to unit second moment under N(0,1) inputs."""
    fn = get_activation(act)
    return Scaled(fn, second_moment_scale(fn, method))


def resolve(act: Act, normalize: bool, method: str = "e3nn") -> Scaled:
    """get_activation, optionally followed by normalize2mom; always a Module for uniform handling."""
    return normalize2mom(act, method) if normalize else Scaled(get_activation(act), 1.0)
