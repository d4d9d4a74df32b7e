"""Radial bases and smooth cutoff envelopes on distances d [...] -> [..., n]."""
from __future__ import annotations

import math
from typing import Optional

import torch


def bessel_basis(d: torch.Tensor, n: int, cutoff: float, prefactor: Optional[float] = None) -> torch.Tensor:
    """prefactor * sin(k pi d / c) / d for k = 1..n; at d = 0 the limit prefactor * k pi / c.

    Default prefactor sqrt(2/c) (e3nn's 'bessel' in soft_one_hot_linspace, DimeNet).
    NequIP's BesselBasis uses 2/c: pass ``prefactor=2/cutoff`` to match it.
    """
    pref = math.sqrt(2.0 / cutoff) if prefactor is None else float(prefactor)
    k = torch.arange(1, n + 1, dtype=d.dtype, device=d.device) * (math.pi / cutoff)
    x = d.unsqueeze(-1)
    nz = x != 0
    xs = torch.where(nz, x, torch.ones_like(x))  # double where: no 0/0 in value or gradient
    return pref * torch.where(nz, torch.sin(k * xs) / xs, k.expand_as(k * xs))


def gaussian_basis(d: torch.Tensor, n: int, cutoff: float) -> torch.Tensor:
    """exp(-((d - mu_k) / step)^2) / 1.12 with mu_k = linspace(0, cutoff, n), step = cutoff / (n - 1).

    Exactly e3nn's ``soft_one_hot_linspace(d, 0, cutoff, n, 'gaussian', cutoff=False)``
    (1.12 is e3nn's constant bringing the summed second moment to ~1).
    """
    if n < 2:
        raise ValueError("gaussian_basis needs n >= 2 (the width is the centre spacing)")
    mu = torch.linspace(0.0, cutoff, n, dtype=d.dtype, device=d.device)
    step = cutoff / (n - 1)
    return torch.exp(-(((d.unsqueeze(-1) - mu) / step) ** 2)) / 1.12


def _cubic_bspline(u: torch.Tensor) -> torch.Tensor:
    """The uniform cubic B-spline on [0, 4] (C2, piecewise cubic), zero outside."""
    u1, u2, u3 = u - 1.0, u - 2.0, u - 3.0
    pieces = torch.where(u < 1.0, u ** 3,
             torch.where(u < 2.0, -3.0 * u1 ** 3 + 3.0 * u1 ** 2 + 3.0 * u1 + 1.0,
             torch.where(u < 3.0, 3.0 * u2 ** 3 - 6.0 * u2 ** 2 + 4.0, (1.0 - u3) ** 3)))
    inside = (u >= 0.0) & (u < 4.0)
    return torch.where(inside, pieces / 6.0, torch.zeros_like(u))


def spline_basis(d: torch.Tensor, n: int, cutoff: float) -> torch.Tensor:
    """n uniform cubic B-splines B(d / h - k), k = -3 .. n - 4, h = cutoff / n.

    The last one ends at the cutoff, so every function is exactly zero there and beyond with zero first
    and second derivatives (no envelope needed); on [0, cutoff - 3h] they sum to one.  Learned
    combinations of them (a following linear or mlp) are smooth radial functions, as splines replace the
    radial MLP in Facet.
    """
    if n < 1:
        raise ValueError("spline_basis needs n >= 1")
    h = cutoff / n
    k = torch.arange(-3, n - 3, dtype=d.dtype, device=d.device)
    x = torch.clamp(d, max=cutoff).unsqueeze(-1)  # beyond the cutoff every function is 0: keep u bounded
    return _cubic_bspline(x / h - k)


def polynomial_cutoff(d: torch.Tensor, cutoff: float, p: float = 6.0) -> torch.Tensor:
    """NequIP's envelope: 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2), x = d/c.

    1 at d = 0, and value, first and second derivatives vanish at d = c; exactly 0 beyond.
    """
    p = float(p)
    inside = d < cutoff
    x = torch.where(inside, d / cutoff, torch.zeros_like(d))  # keep huge d out of the powers (inf * 0 grads)
    env = (1.0 - (p + 1.0) * (p + 2.0) / 2.0 * x ** p + p * (p + 2.0) * x ** (p + 1.0)
           - p * (p + 1.0) / 2.0 * x ** (p + 2.0))
    return torch.where(inside, env, torch.zeros_like(env))


def radial_embedding(d: torch.Tensor, n: int, cutoff: float, basis: str = "bessel",
                     envelope_p: Optional[float] = 6.0) -> torch.Tensor:
    """basis(d) [..., n], times polynomial_cutoff(d, cutoff, envelope_p) unless envelope_p is None."""
    if basis == "bessel":
        out = bessel_basis(d, n, cutoff)
    elif basis == "gaussian":
        out = gaussian_basis(d, n, cutoff)
    else:
        raise ValueError(f"unknown radial basis `{basis}` (use 'bessel' or 'gaussian')")
    if envelope_p is not None:
        out = out * polynomial_cutoff(d, cutoff, envelope_p).unsqueeze(-1)
    return out
