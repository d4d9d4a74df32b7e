"""The Gaunt tensor product at run time (Luo, Chen and Zhang, 2024): three algorithms, the same numbers.

Channel u of each input is a function on the sphere, f(s) = sum_{l,m} x_{lm} Y_{lm}(s) (component-normalised
real harmonics in e3nn's basis; a's degrees first scaled by their weights).  The product's coefficient on
Y_{l3 m3} is the mean over the sphere of f_a f_b Y_{l3 m3}, then scaled by the output weights:

- ``dense``: the Gaunt coefficients G[i, j, k] = mean_s Y_i Y_j Y_k as a table, one contraction (O(L^6));
- ``grid``: f_a and f_b at the nodes of a product quadrature (Gauss-Legendre in the polar angle, uniform
  in the azimuth) exact for degree La + Lb + Lo, multiplied, projected back (O(L^4));
- ``fourier``: with the polar axis e3nn's y, s(theta, phi) = (sin t sin p, cos t, sin t cos p) makes every
  Y_{lm} a 2D trigonometric polynomial whose phi frequencies are +-|m|; the coefficients of f_a and f_b
  (grouped by |m|: O(L^3)), their product through 2D FFTs of side P = 2(La + Lb) + 1 (no aliasing),
  and the projection back, again grouped by |m| (O(L^3) + O(L^2 log L)).

All three are exact up to rounding (tests compare them to 1e-12 in float64).  The tables are built once per
layout in float64 (numpy) and kept as float64-exact buffers.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ._blocks import channels_of, irreps_layout
from .exact import ExactBuffers
from .sh import spherical_harmonics


def _offsets(ls) -> list[int]:
    out, i = [], 0
    for l in ls:
        out.append(i)
        i += 2 * l + 1
    return out


def _harmonics(ls, points: np.ndarray) -> np.ndarray:
    """[..., sum (2l+1)] the component-normalised harmonics of the degrees `ls` at unit vectors `points`."""
    top = max(ls)
    y = spherical_harmonics(top, torch.as_tensor(points, dtype=torch.float64)).numpy()
    return np.concatenate([y[..., l * l:(l + 1) ** 2] for l in ls], axis=-1)


def quadrature(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """(points [S, 3], weights [S] summing to 1): the mean over the sphere, exact for polynomials of `degree`."""
    return product_grid(degree // 2 + 1, degree + 1)


def product_grid(n_theta: int, n_phi: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre rings in cos(theta) about e3nn's polar axis y times uniform azimuths, with the weights of
    the mean over the sphere (exact up to degree min(2 n_theta - 1, n_phi - 1))."""
    z, w = np.polynomial.legendre.leggauss(n_theta)
    phi = 2.0 * math.pi * np.arange(n_phi) / n_phi
    r = np.sqrt(1.0 - z * z)
    pts = np.stack([np.outer(r, np.sin(phi)), np.outer(z, np.ones(n_phi)), np.outer(r, np.cos(phi))], axis=-1)
    return pts.reshape(-1, 3), (np.outer(w / 2.0, np.ones(n_phi) / n_phi)).reshape(-1)


@functools.lru_cache(maxsize=64)
def gaunt_table(la: tuple, lb: tuple, lo: tuple) -> np.ndarray:
    """[da, db, do] G = mean_s Y_a Y_b Y_o (exact quadrature)."""
    pts, q = quadrature(max(la) + max(lb) + max(lo))
    ya, yb, yo = _harmonics(la, pts), _harmonics(lb, pts), _harmonics(lo, pts)
    g = np.einsum("s,si,sj,sk->ijk", q, ya, yb, yo)
    g[np.abs(g) < 1e-14] = 0.0
    return g


def _torus(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """s(theta, phi) with e3nn's polar axis y, on the whole torus [0, 2 pi)^2 (which covers the sphere twice)."""
    st = np.sin(theta)
    return np.stack([st * np.sin(phi), np.cos(theta) * np.ones_like(phi), st * np.cos(phi)], axis=-1)


def _by_order(ls) -> tuple[np.ndarray, int]:
    """Indices [K, n] of the basis functions with |m| = k (K = max l + 1), padded with -1, and n."""
    groups = [[] for _ in range(max(ls) + 1)]
    for off, l in zip(_offsets(ls), ls):
        for m in range(-l, l + 1):
            groups[abs(m)].append(off + m + l)
    n = max(len(g) for g in groups)
    return np.array([g + [-1] * (n - len(g)) for g in groups]), n


@functools.lru_cache(maxsize=64)
def fourier_tables(la: tuple, lb: tuple, lo: tuple):
    """The tables of the Fourier algorithm, each grouped by |m| = k:
    to_a [K, n, P, 2], to_b (the same for b): the theta-frequency u (index mod P) coefficients at phi-frequencies
    +k and -k of each basis function; back [K, n, P, 2]: mean over the sphere of e^{i(u t + v p)} Y for v = +-k;
    the index tables and P."""
    P = 2 * (max(la) + max(lb)) + 1

    def to_fourier(ls):
        L = max(ls)
        N = 2 * L + 1
        t = 2.0 * math.pi * np.arange(N) / N
        T, F = np.meshgrid(t, t, indexing="ij")
        c = np.fft.fft2(np.moveaxis(_harmonics(ls, _torus(T, F)), -1, 0)) / (N * N)  # [d, N(u), N(v)]
        idx, n = _by_order(ls)
        table = np.zeros((len(idx), n, P, 2), dtype=np.complex128)
        for k, row in enumerate(idx):
            for i, j in enumerate(row):
                if j < 0:
                    continue
                for u in range(-L, L + 1):
                    table[k, i, u % P, 0] = c[j, u % N, k % N]
                    if k:
                        table[k, i, u % P, 1] = c[j, u % N, -k % N]
        return table, idx

    to_a, idx_a = to_fourier(la)
    to_b, idx_b = to_fourier(lb)
    # back: (1/4 pi) int_0^pi int_0^2pi e^{i(u t + v p)} Y(t, p) sin t dp dt, Gauss-Legendre in t
    n_t = 3 * P + 30
    x, w = np.polynomial.legendre.leggauss(n_t)
    t = (x + 1.0) * math.pi / 2.0
    wt = w * math.pi / 2.0
    n_p = 2 * P + 2 * max(lo) + 1
    p = 2.0 * math.pi * np.arange(n_p) / n_p
    T, F = np.meshgrid(t, p, indexing="ij")
    y = _harmonics(lo, _torus(T, F))  # [n_t, n_p, do]
    u = np.array([(i if i <= P // 2 else i - P) for i in range(P)])
    idx_o, n_o = _by_order(lo)
    back = np.zeros((len(idx_o), n_o, P, 2), dtype=np.complex128)
    eu = np.exp(1j * np.outer(t, u)) * (wt * np.sin(t))[:, None]  # [n_t, P]
    for k, row in enumerate(idx_o):
        for sign_i, v in enumerate((k, -k) if k else (0,)):
            ev = np.exp(1j * v * p) * (2.0 * math.pi / n_p)  # [n_p]
            for i, j in enumerate(row):
                if j >= 0:
                    back[k, i, :, sign_i] = np.einsum("tp,p,tu->u", y[..., j], ev, eu) / (4.0 * math.pi)
    return to_a, idx_a, to_b, idx_b, back, idx_o, P


class GauntProduct(ExactBuffers):
    """tensor_product(a, b, mode = gaunt, algorithm = ...) -> R: a [rows, C * da] (mul-major: copy u of each degree
    contiguous, as every irreps layout here), b [rows, Cb * db] with Cb = 1 or C, weights [rows, C (na + no)]
    (or shared parameters), out [rows, C * do]."""

    def __init__(self, la, lb, lo, channels: int, b_channels: int, algorithm: str, shared_weights: bool):
        super().__init__()
        self.la, self.lb, self.lo = tuple(la), tuple(lb), tuple(lo)
        self.channels, self.b_channels, self.algorithm = channels, b_channels, algorithm
        self.da, self.db, self.do = (sum(2 * l + 1 for l in ls) for ls in (self.la, self.lb, self.lo))
        # each degree's weight spread over its 2l+1 components
        self.register_buffer("degree_of_a", torch.tensor([i for i, l in enumerate(self.la) for _ in range(2 * l + 1)]),
                             persistent=False)
        self.register_buffer("degree_of_out", torch.tensor([i for i, l in enumerate(self.lo) for _ in range(2 * l + 1)]),
                             persistent=False)
        self.weight = torch.nn.Parameter(torch.randn(channels * (len(self.la) + len(self.lo)))) if shared_weights else None
        if algorithm == "dense":
            self._exact_buffer("table", gaunt_table(self.la, self.lb, self.lo))
        elif algorithm == "grid":
            pts, q = quadrature(max(self.la) + max(self.lb) + max(self.lo))
            self._exact_buffer("ya", _harmonics(self.la, pts))
            self._exact_buffer("yb", _harmonics(self.lb, pts))
            self._exact_buffer("yo", _harmonics(self.lo, pts) * q[:, None])
        elif algorithm == "fourier":
            to_a, idx_a, to_b, idx_b, back, idx_o, self.P = fourier_tables(self.la, self.lb, self.lo)
            for name, table in (("to_a", to_a), ("to_b", to_b), ("back", back)):
                # real and imaginary parts as float64-exact buffers: complex tensors follow the module's dtype
                self._exact_buffer(name + "_re", table.real)
                self._exact_buffer(name + "_im", table.imag)
            # index tables, built once: where each |m| group reads its components (padding -1 -> the zero column
            # past the end) and the phi-frequency columns +k then -k (mod P) each group fills
            for name, idx, d in (("a", idx_a, self.da), ("b", idx_b, self.db), ("o", idx_o, self.do)):
                self.register_buffer(f"slots_{name}", torch.as_tensor(idx % (d + 1)), persistent=False)
                K = idx.shape[0]
                self.register_buffer(f"v_{name}", torch.as_tensor(np.concatenate([np.arange(K), -np.arange(K) % self.P])),
                                     persistent=False)
        else:
            raise ValueError(f"unknown Gaunt algorithm {algorithm!r} (dense, grid or fourier)")

    def _split(self, w: torch.Tensor):
        """Per-row weights [rows or 1, C, da] for a's components and [rows or 1, C, do] for the output's."""
        w = w.reshape(-1, self.channels, len(self.la) + len(self.lo))
        wa, wo = w[..., :len(self.la)], w[..., len(self.la):]
        return wa.index_select(-1, self.degree_of_a), wo.index_select(-1, self.degree_of_out)

    def forward(self, a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        rows = a.shape[0]
        w = self.weight if weights is None else weights
        wa, wo = self._split(w)
        xa = channels_of(a, self.la, self.channels) * wa  # [rows, C, da]
        xb = channels_of(b, self.lb, self.b_channels)     # [rows, Cb, db]
        out = getattr(self, "_" + self.algorithm)(xa, xb) * wo  # [rows, C, do]
        return irreps_layout(out, self.lo).reshape(rows, -1)

    def _dense(self, xa, xb):
        return torch.einsum("rci,rcj,ijk->rck", xa, xb.expand(-1, xa.shape[1], -1), self.table.to(xa.dtype))

    def _grid(self, xa, xb):
        fa = xa @ self.ya.to(xa.dtype).T  # [rows, C, S]
        fb = xb @ self.yb.to(xa.dtype).T  # [rows, Cb, S]
        return (fa * fb) @ self.yo.to(xa.dtype)

    def _coefficients(self, x, re, im, slots, v_index):
        """[rows, C, P, P] complex coefficients (u, v indexed mod P) of the functions x [rows, C, d]."""
        P, K = self.P, slots.shape[0]
        padded = torch.cat([x, x.new_zeros(x.shape[:-1] + (1,))], dim=-1)
        grouped = padded[..., slots]  # [rows, C, K, n]; padding reads the zero column
        table = torch.complex(re.to(x.dtype), im.to(x.dtype))  # [K, n, P, 2]
        vals = torch.einsum("rckn,knuw->rcuwk", grouped.to(table.dtype), table)  # [rows, C, P, 2, K]
        coeff = vals.new_zeros(x.shape[:2] + (P, P))
        # the +0 and -0 columns: the table's second entry is zero for k = 0, so adding both is right
        return coeff.index_add(-1, v_index, vals.reshape(x.shape[:2] + (P, 2 * K)))

    def _fourier(self, xa, xb):
        ca = self._coefficients(xa, self.to_a_re, self.to_a_im, self.slots_a, self.v_a)
        cb = self._coefficients(xb, self.to_b_re, self.to_b_im, self.slots_b, self.v_b)
        samples = torch.fft.ifft2(ca, norm="forward") * torch.fft.ifft2(cb, norm="forward")  # values on the P x P torus
        cg = torch.fft.fft2(samples, norm="forward")  # the product's coefficients, [rows, C, P, P]
        K = self.slots_o.shape[0]
        cols = cg.index_select(-1, self.v_o).reshape(cg.shape[:3] + (2, K))  # [rows, C, P(u), 2, K]
        back = torch.complex(self.back_re.to(xa.dtype), self.back_im.to(xa.dtype))  # [K, n, P, 2]
        grouped = torch.einsum("rcuwk,knuw->rckn", cols, back).real  # [rows, C, K, n]
        out = xa.new_zeros(xa.shape[:2] + (self.do + 1,))
        # padding lands in the extra column, dropped below
        return out.index_add(-1, self.slots_o.reshape(-1), grouped.reshape(xa.shape[:2] + (-1,)))[..., :self.do]

    def extra_repr(self) -> str:
        return f"la={self.la}, lb={self.lb}, lo={self.lo}, channels={self.channels}, algorithm={self.algorithm!r}"
