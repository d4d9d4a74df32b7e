"""CP low-rank tensor products (Tensor Decomposition Networks, 2025): each path's Clebsch-Gordan table replaced by
its rank-R CP approximation, C[i, j, k] ~ sum_r U[i, r] V[j, r] W[k, r].

A path then costs R (d1 + d2 + d3) per pair of channels instead of the table's entries: x1 and x2 are projected
on the R columns of U and V, multiplied, weighted as the path's mode asks, and mapped out through W.  The
factors are fitted once per (l1, l2, l3) by alternating least squares (seeded, best of a few starts); a rank at
or above the table's CP rank reproduces the exact product, a lower one is only approximately equivariant.
``residuals`` are the relative Frobenius errors |C - C_R| / |C| per path, from which ``error_bound`` bounds the
equivariance error of a call: the exact product is equivariant, so |f(gx) - g f(x)| <= |f(gx) - f_exact(gx)| +
|f(x) - f_exact(x)| (what `eqc check` reports beside the measured error).
"""
from __future__ import annotations

import functools
from typing import Optional

import numpy as np
import torch

from eqdsl.reps.irreps import Irreps
from eqdsl.reps.so3 import wigner_3j

from ._blocks import channels_of, irreps_layout
from .exact import ExactBuffers
from .tensor_product import TensorProduct, flat_call


def _khatri_rao(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[:, None, :] * b[None, :, :]).reshape(-1, a.shape[1])


@functools.lru_cache(maxsize=256)
def cp_factors(l1: int, l2: int, l3: int, rank: int):
    """(U [d1, R], V [d2, R], W [d3, R], relative residual) of the CP fit of wigner_3j(l1, l2, l3)."""
    return cp_decompose(np.asarray(wigner_3j(l1, l2, l3), dtype=np.float64), rank)


def cp_decompose(T: np.ndarray, rank: int, starts: int = 4, iterations: int = 500):
    """(U [I, R], V [J, R], W [K, R], relative residual) of the best of `starts` seeded ALS fits of T [I, J, K]."""
    I, J, K = T.shape
    norm = np.linalg.norm(T)
    t1, t2, t3 = T.reshape(I, -1), T.transpose(1, 0, 2).reshape(J, -1), T.transpose(2, 0, 1).reshape(K, -1)
    best = None
    for start in range(starts):
        rng = np.random.default_rng(start)
        U, V, W = (rng.normal(size=(n, rank)) for n in (I, J, K))
        for _ in range(iterations):
            U = t1 @ _khatri_rao(V, W) @ np.linalg.pinv((V.T @ V) * (W.T @ W))
            V = t2 @ _khatri_rao(U, W) @ np.linalg.pinv((U.T @ U) * (W.T @ W))
            W = t3 @ _khatri_rao(U, V) @ np.linalg.pinv((U.T @ U) * (V.T @ V))
        residual = float(np.linalg.norm(np.einsum("ir,jr,kr->ijk", U, V, W) - T) / norm)
        if best is None or residual < best[3]:
            best = (U, V, W, residual)
        if residual < 1e-12:
            break
    return best


class LowRankProduct(TensorProduct):
    """tensor_product(a, b, mode = uvu | uvw, rank = R, approximate = true): the descriptor's paths with rank-R
    CP tables (the same weights and layout as the exact product)."""

    GROUPED = False  # path by path, on the factors

    def __init__(self, desc, rank: int, shared_weights: bool = True):
        super().__init__(desc, shared_weights)
        self.rank = rank
        self.residuals = []
        self.factor_names = []
        for p in desc.paths:
            ls = (desc.irreps_in1[p.i_in1].ir.l, desc.irreps_in2[p.i_in2].ir.l, desc.irreps_out[p.i_out].ir.l)
            U, V, W, residual = cp_factors(*ls, rank)
            name = "cp_{}_{}_{}".format(*ls)
            if not hasattr(self, name + "_u"):
                for part, f in zip("uvw", (U, V, W)):
                    self._exact_buffer(f"{name}_{part}", f, dtype=torch.float64)
            self.factor_names.append(name)
            self.residuals.append(residual)

    def exact(self, x1: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The exact product with the same weights (the Clebsch-Gordan tables)."""
        lead, x1, x2, w_all = flat_call(self, x1, x2, weight)
        return self.sum_paths(x1, x2, w_all, self.cg_path).reshape(lead + (self.desc.irreps_out.dim,))

    def per_path(self, x1: torch.Tensor, x2: torch.Tensor, w_all: Optional[torch.Tensor]) -> torch.Tensor:
        return self.sum_paths(x1, x2, w_all, self.cp_path)

    def cp_path(self, i: int, p, a: torch.Tensor, b: torch.Tensor, w: Optional[torch.Tensor]) -> torch.Tensor:
        """Path i through its CP factors: x1 and x2 on R columns, multiplied, weighted, mapped out."""
        z = "" if self.shared_weights else "z"
        U, V, W = (getattr(self, f"{self.factor_names[i]}_{part}").to(a.dtype) for part in "uvw")
        ar = torch.einsum("zui,ir->zur", a, U)
        br = torch.einsum("zvj,jr->zvr", b, V)
        if p.mode == "uvw":
            y = torch.einsum(f"{z}uvw,zur,zvr->zwr", w, ar, br)
        elif p.mode == "uvu":
            y = ar * (torch.einsum(f"{z}uv,zvr->zur", w, br) if w is not None else br.sum(1, keepdim=True))
        else:
            raise ValueError(f"low-rank products are uvu or uvw, not {p.mode}")
        return torch.einsum("zur,kr->zuk", y, W)

    def extra_repr(self) -> str:
        return f"{self.desc}, rank={self.rank}, largest residual={max(self.residuals, default=0.0):.1e}"


class SharedPathProduct(ExactBuffers):
    """tensor_product(a, b, mode = uvu, share_paths = true [, rank = R, approximate = true]): path-weight sharing
    (Tensor Decomposition Networks): one weight per channel for all paths, so that a channel's product is one
    table T = sum_p path_weight_p C_p over the whole [da, db, do] of one channel (a and the output: C channels of
    the same irreps, b one channel).  With a rank, T itself is CP-decomposed: R (da + db + do) per channel, O(L^4)
    for R ~ L^2, instead of every path's table.  Calls take what TensorProduct's take (``flat_call``)."""

    def __init__(self, desc, rank: int = 0, shared_weights: bool = True):
        super().__init__()
        self.desc, self.rank, self.shared_weights = desc, rank, shared_weights
        self.channels = desc.irreps_in1[0].mul
        one_channel = [Irreps.of([(1, m.ir) for m in irreps]).slices()
                       for irreps in (desc.irreps_in1, desc.irreps_in2, desc.irreps_out)]
        T = np.zeros(tuple(sl[-1].stop for sl in one_channel))
        for p in desc.paths:
            ia, ib, io = one_channel[0][p.i_in1], one_channel[1][p.i_in2], one_channel[2][p.i_out]
            ls = (desc.irreps_in1[p.i_in1].ir.l, desc.irreps_in2[p.i_in2].ir.l, desc.irreps_out[p.i_out].ir.l)
            T[ia, ib, io] += p.path_weight * np.asarray(wigner_3j(*ls))
        self._exact_buffer("table", T, dtype=torch.float64)
        self.a_ls, self.o_ls = [m.ir.l for m in desc.irreps_in1], [m.ir.l for m in desc.irreps_out]
        self.residuals = [0.0]
        if rank:
            U, V, W, residual = cp_decompose(T, rank)
            for part, f in zip("uvw", (U, V, W)):
                self._exact_buffer(f"cp_{part}", f, dtype=torch.float64)
            self.residuals = [residual]
        self.weight_numel = self.channels
        self.weight = torch.nn.Parameter(torch.randn(self.channels)) if shared_weights else None

    def _call(self, x1, x2, weight, factored: bool) -> torch.Tensor:
        lead, x1, x2, w = flat_call(self, x1, x2, weight)
        xa = channels_of(x1, self.a_ls, self.channels)  # [rows, C, da]
        if factored:
            ar = xa @ self.cp_u.to(x1.dtype)                   # [rows, C, R]
            br = (x2 @ self.cp_v.to(x1.dtype))[:, None, :]     # [rows, 1, R]
            y = (ar * br) @ self.cp_w.to(x1.dtype).T          # [rows, C, do]
        else:
            y = torch.einsum("zui,zj,ijk->zuk", xa, x2, self.table.to(x1.dtype))
        y = y * w.reshape(-1, self.channels, 1)
        return irreps_layout(y, self.o_ls).reshape(lead + (self.desc.irreps_out.dim,))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._call(x1, x2, weight, factored=bool(self.rank))

    def exact(self, x1: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._call(x1, x2, weight, factored=False)

    def conv(self, x1_nodes, src, x2, weight, dst, num_nodes: int) -> torch.Tensor:
        from .graph_ops import gather, scatter
        return scatter(self.forward(gather(x1_nodes, src), x2, weight), dst, num_nodes, "sum")

    def extra_repr(self) -> str:
        return f"{self.desc}, shared paths, rank={self.rank or 'exact'}"
