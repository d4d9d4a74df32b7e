"""Frame averaging at run time: the frames of each graph, values expressed in them, averages over them.

A graph's frame is a set of K group elements F_1..F_K (``Frames.elements`` [num_graphs, K, d, d] in the
defining representation) with F(gX + t) = g F(X) as sets: the PCA frames (the covariance eigenvectors of
the centred points, every allowed choice of their signs) for O(3), SO(3), O(2) and SO(2); the whole group
for Cn and Dn.  A value expressed in the frame has one copy per element, stored copy-major: row
k * rows + r is row r seen from F_k, so every layer that acts row by row runs unchanged on [K * rows, ...]
and the graph's indices are offset per copy (``Frames.rows``).

PCA frames need distinct eigenvalues.  A graph whose covariance has (nearly) repeated eigenvalues
(symmetric, collinear or too few points) has no unique frame; forward() raises ``FrameError`` for it on the
CPU.  On CUDA and in traced graphs (torch.compile, torch.export), where a data-dependent error cannot be
raised on the host, the check is a ``torch._assert_async`` assertion with the same message (a RuntimeError
when the device next synchronises), as the input checks are.
"""
from __future__ import annotations

import itertools
import math
from typing import Optional

import numpy as np
import torch

from eqdsl.reps.so3 import wigner_3j

from .inputs import checks_on_host


class FrameError(ValueError):
    """A graph whose points have no unique frame."""


def _gap_tolerance(dtype: torch.dtype) -> float:
    """Smallest relative gap between covariance eigenvalues accepted: eigenvectors are accurate to about
    eps / gap, so at this gap frame-averaged values stay equivariant to about sqrt(eps) / 10."""
    return 10.0 * math.sqrt(torch.finfo(dtype).eps)


class Copies:
    """`count` copies of every value, stored copy-major (frames; orientation grids, orientations.py)."""

    def __init__(self, count: int):
        self.count = count

    def rows(self, index: torch.Tensor, n: int) -> torch.Tensor:
        """`index` (into n rows) for values in the frame: copy k reads rows k * n + index."""
        offsets = torch.arange(self.count, device=index.device, dtype=index.dtype) * n
        return (index.unsqueeze(0) + offsets.unsqueeze(1)).reshape(-1)

    def lift(self, x: torch.Tensor) -> torch.Tensor:
        """A value outside the frame as seen from every element: the same rows K times."""
        return x.repeat((self.count,) + (1,) * (x.dim() - 1))


class Frames(Copies):
    """The frames of a batch of graphs: ``elements`` [num_graphs, K, d, d], ``centroid`` [num_graphs, d]."""

    def __init__(self, elements: torch.Tensor, centroid: torch.Tensor):
        super().__init__(elements.shape[1])
        self.elements = elements
        self.centroid = centroid


def _centroids(pos: torch.Tensor, batch: torch.Tensor, num_graphs: int):
    count = pos.new_zeros(num_graphs).index_add(0, batch, pos.new_ones(pos.shape[0])).clamp(min=1)
    return pos.new_zeros(num_graphs, pos.shape[1]).index_add(0, batch, pos) / count[:, None], count


def pca_frames(pos: torch.Tensor, batch: torch.Tensor, num_graphs: int, count: int, where: str = "") -> Frames:
    """PCA frames of every graph's centred points: the covariance's eigenvectors U with every sign choice
    (2^d elements; with count = 2^(d-1), those of determinant +1 only: rotations)."""
    d = pos.shape[1]
    centroid, n = _centroids(pos, batch, num_graphs)
    centred = pos - centroid[batch]
    cov = pos.new_zeros(num_graphs, d, d).index_add(0, batch, centred[:, :, None] * centred[:, None, :]) / n[:, None, None]
    values, vectors = torch.linalg.eigh(cov)
    scale = values[:, -1:].abs().clamp(min=torch.finfo(pos.dtype).tiny)
    gaps = (values[:, 1:] - values[:, :-1]) / scale
    degenerate = (gaps < _gap_tolerance(pos.dtype)).any(dim=1)
    at = f" ({where})" if where else ""
    rule = (f"Frame averaging over PCA frames needs distinct eigenvalues (relative gap at least "
            f"{_gap_tolerance(pos.dtype):.1e} in {pos.dtype}); perturb the structure or use the group's equivariant "
            "layers for it")
    if checks_on_host(degenerate):
        if bool(degenerate.any()):
            g = int(torch.nonzero(degenerate)[0, 0])
            shown = ", ".join(f"{v:.3g}" for v in values[g].tolist())
            raise FrameError(f"graph {g} has no unique frame{at}: its points' covariance has (nearly) repeated "
                             f"eigenvalues ({shown}), as symmetric, collinear or too few points do. {rule}")
    else:
        torch._assert_async(~degenerate.any(), f"a graph has no unique frame{at}: its points' covariance has (nearly) "
                                               f"repeated eigenvalues. {rule}")
    signs = torch.tensor(list(itertools.product((1.0, -1.0), repeat=d)), dtype=pos.dtype, device=pos.device)  # [2^d, d]
    elements = vectors[:, None, :, :] * signs[None, :, None, :]  # U diag(s): columns flipped
    if count == 2 ** d:
        return Frames(elements, centroid)
    if count != 2 ** (d - 1):
        raise ValueError(f"PCA frames in {d} dimensions have {2 ** d} or {2 ** (d - 1)} elements, not {count}")
    proper = torch.linalg.det(elements) > 0  # [G, 2^d]: exactly half of the sign choices
    order = torch.argsort((~proper).to(torch.int8), dim=1, stable=True)[:, :count]
    return Frames(torch.gather(elements, 1, order[:, :, None, None].expand(-1, -1, d, d)), centroid)


def group_frames(pos: torch.Tensor, batch: torch.Tensor, num_graphs: int, elements: torch.Tensor) -> Frames:
    """The whole (finite) group as every graph's frame, centred at the graph's centroid."""
    centroid, _ = _centroids(pos, batch, num_graphs)
    els = elements.to(dtype=pos.dtype, device=pos.device)
    return Frames(els.unsqueeze(0).expand(num_graphs, -1, -1, -1), centroid)


# -- how each representation's matrices at the frame's elements are computed --------------------------------
class _ByElement(torch.nn.Module):
    """An action computed from the frame's elements themselves (``matrices(F)``)."""

    def inverse_matrices(self, F: torch.Tensor) -> torch.Tensor:
        """rho(F)^-1 = rho(F^T): every frame element is orthogonal."""
        return self.matrices(F.transpose(-1, -2))


class IrrepsAction(_ByElement):
    """D(F) of an O(3)/SO(3) irreps representation, block by block: D^l from D^1 = R by coupling,
    D^{l+1} = (2l+3) C (R (x) D^l) C^T with C = wigner_3j(l+1, 1, l) (no Euler angles), times the parity p
    for det F = -1."""

    def __init__(self, irreps):
        super().__init__()
        self.blocks = [(m.mul, m.ir.l, getattr(m.ir, "p", 1)) for m in irreps]
        self.lmax = max((l for _, l, _ in self.blocks), default=0)
        for l in range(1, self.lmax):
            self.register_buffer(f"cg{l}", torch.tensor(np.array(wigner_3j(l + 1, 1, l))), persistent=False)
        self.dim = sum(mul * (2 * l + 1) for mul, l, _ in self.blocks)

    def _chain(self, R: torch.Tensor) -> list:
        ds = [R.new_ones(R.shape[:-2] + (1, 1))]
        if self.lmax >= 1:
            ds.append(R)
        for l in range(1, self.lmax):
            c = getattr(self, f"cg{l}").to(R.dtype)
            ds.append((2 * l + 3) * torch.einsum("aij,...ik,...jm,bkm->...ab", c, R, ds[l], c))
        return ds

    def matrices(self, F: torch.Tensor) -> torch.Tensor:
        """[..., dim, dim] block-diagonal D(F) for orthogonal F [..., 3, 3]."""
        det = torch.linalg.det(F)
        sign = torch.where(det < 0, -1.0, 1.0).to(F.dtype)
        ds = self._chain(F * sign[..., None, None])
        out = F.new_zeros(F.shape[:-2] + (self.dim, self.dim))
        i = 0
        for mul, l, p in self.blocks:
            block = ds[l] * (sign if p < 0 else torch.ones_like(sign))[..., None, None]
            for _ in range(mul):
                out[..., i:i + 2 * l + 1, i:i + 2 * l + 1] = block
                i += 2 * l + 1
        return out


class PlanarAction(_ByElement):
    """rho(F) of a representation of SO(2) or O(2): F = R(theta) H^s (H = diag(1, -1)) gives
    expm(theta drho(J)) rho(H)^s, J the generator of rotations."""

    def __init__(self, rep):
        super().__init__()
        J = np.array([[0.0, -1.0], [1.0, 0.0]])
        self.register_buffer("generator", torch.as_tensor(rep.drho(J)), persistent=False)
        self.has_reflection = any(np.linalg.det(h) < 0 for h in rep.group.discrete_generators)
        H = np.diag([1.0, -1.0])
        self.register_buffer("reflection", torch.as_tensor(rep.rho(H) if self.has_reflection else np.eye(rep.dim)),
                             persistent=False)

    def matrices(self, F: torch.Tensor) -> torch.Tensor:
        det = torch.linalg.det(F)
        H = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=F.dtype, device=F.device)
        R = torch.where(det[..., None, None] < 0, F @ H, F)
        theta = torch.atan2(R[..., 1, 0], R[..., 0, 0])
        out = torch.matrix_exp(theta[..., None, None] * self.generator.to(F.dtype))
        refl = self.reflection.to(F.dtype)
        return torch.where(det[..., None, None] < 0, out @ refl, out)


class FiniteAction(torch.nn.Module):
    """rho(F) of a representation of a finite group whose frame is the whole group: a table, in the order
    of the group's enumerated elements."""

    def __init__(self, rep, elements: np.ndarray):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(np.stack([rep.rho(g) for g in elements])), persistent=False)
        self.register_buffer("inverse_table", torch.as_tensor(np.stack([rep.rho(g.T) for g in elements])),
                             persistent=False)  # rho(g^-1) = rho(g^T): the elements are orthogonal

    def matrices(self, F: torch.Tensor) -> torch.Tensor:
        # the frame's elements are the group's, in its order: copy k is element k (F [G, K, d, d])
        return self.table.to(F.dtype).unsqueeze(0).expand(F.shape[0], -1, -1, -1)

    def inverse_matrices(self, F: torch.Tensor) -> torch.Tensor:
        return self.inverse_table.to(F.dtype).unsqueeze(0).expand(F.shape[0], -1, -1, -1)


def action(group, rep, method: str) -> torch.nn.Module:
    """How `rep`'s matrices at a frame's elements are computed, for the frames `method` makes."""
    if group.rep_family == "irreps":
        return IrrepsAction(rep)
    if method == "group":
        return FiniteAction(rep, group.elements())
    return PlanarAction(rep)


class FrameMaker(torch.nn.Module):
    """frame(pos): PCA frames with `count` elements, or (method "group") the elements of the finite group."""

    def __init__(self, group, method: str, count: int, where: str = ""):
        super().__init__()
        self.method, self.count, self.where = method, count, where
        if method == "group":  # in the order FiniteAction's tables use
            self.register_buffer("elements", torch.tensor(np.array(group.elements())), persistent=False)

    def forward(self, pos: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> Frames:
        if self.method == "group":
            return group_frames(pos, batch, num_graphs, self.elements)
        return pca_frames(pos, batch, num_graphs, self.count, self.where)


def _per_row(per_graph: torch.Tensor, row_graph: Optional[torch.Tensor]) -> torch.Tensor:
    return per_graph if row_graph is None else per_graph.index_select(0, row_graph)


def to_frame(x: torch.Tensor, frames: Frames, act: Optional[torch.nn.Module], row_graph: Optional[torch.Tensor],
             point: bool = False) -> torch.Tensor:
    """x [rows, m] expressed in each element of its graph's frame: rho(F_k)^-1 x, as [K * rows, m].
    Positions (point=True) are centred first and act through F itself.  row_graph: the graph of each row
    (None: the rows are the graphs)."""
    if point:
        x = x - _per_row(frames.centroid, row_graph)
        mats = frames.elements.transpose(-1, -2)  # F^-1 = F^T: every frame element is orthogonal
    else:
        mats = act.inverse_matrices(frames.elements)
    per_row = _per_row(mats, row_graph)  # [rows, K, m, m]
    return torch.einsum("rkij,rj->kri", per_row, x).reshape(-1, x.shape[-1])


def from_frame(y: torch.Tensor, frames: Frames, act: Optional[torch.nn.Module], row_graph: Optional[torch.Tensor],
               rotate: bool) -> torch.Tensor:
    """The average over the frame of rho(F_k) y_k (rotate) or of y_k: y [K * rows, m] -> [rows, m]."""
    copies = y.reshape(frames.count, -1, y.shape[-1])
    if not rotate:
        return copies.mean(dim=0)
    per_row = _per_row(act.matrices(frames.elements), row_graph)  # [rows, K, m, m]
    return torch.einsum("rkij,krj->ri", per_row, copies) / frames.count
