"""The product basis of a symmetric contraction (MACE's body-order expansion): the equivariant maps from
the symmetric power Sym^nu(V) of one channel's irreps V = l_1 + l_2 + ... to an irrep L.

A map is a tensor U [d, ..., d (nu slots), 2L+1] (d = dim V) with U(a, ..., a) = the L-component made
from nu copies of a.  Only its part symmetric in the nu slots acts on a (x) ... (x) a, so the basis is
of symmetric tensors: every chain of Clebsch-Gordan couplings (((V (x) V) -> l12) (x) V -> ...) -> L spans
the equivariant maps V^(x)nu -> L; averaged over the permutations of the slots they span the symmetric
ones, and Gram-Schmidt in the order the chains are built keeps an independent set.  Gram-Schmidt (not
an SVD) so that the basis is the same on every machine: weights saved with it mean the same map.

Each basis tensor has squared Frobenius norm 2L+1 (about unit variance per output component for
unit-variance inputs).  numpy only; computed once per (group, V, L, nu).
"""
from __future__ import annotations

import functools
from itertools import permutations

import numpy as np

from .so3 import wigner_3j

TOLERANCE = 1e-9  # relative residual below which a candidate is taken as dependent


def _offsets(irs: tuple) -> list[int]:
    out, start = [], 0
    for ir in irs:
        out.append(start)
        start += ir.dim
    return out


def _independent(candidates: list[np.ndarray], scale: float | None = None) -> np.ndarray:
    """Gram-Schmidt over the flattened candidates, in order (classical, orthogonalised twice: as accurate
    as the modified form, in matrix products): [n, *shape], orthonormal rows.  A residual counts when
    above TOLERANCE * scale (default: the largest candidate's norm): candidates the symmetrisation
    annihilated are rounding noise, however large next to their own norm."""
    if not len(candidates):
        return np.zeros((0,))
    shape = candidates[0].shape
    flat = np.stack([np.asarray(c, dtype=np.float64).reshape(-1) for c in candidates])
    if scale is None:
        scale = float(np.linalg.norm(flat, axis=1).max())
    kept = np.zeros((len(flat), flat.shape[1]))
    n = 0
    for v in flat:
        v = v.copy()
        for _ in range(2):
            v -= kept[:n].T @ (kept[:n] @ v)
        norm = np.linalg.norm(v)
        if norm > TOLERANCE * scale:
            kept[n] = v / norm
            n += 1
    return kept[:n].reshape((n,) + shape)


@functools.lru_cache(maxsize=None)
def _couplings(group, irs: tuple, k: int, lmax_needed: int) -> dict:
    """Equivariant maps V^(x)k -> ir for every irrep ir with l <= lmax_needed: {ir: [n, d^k, dim ir]}."""
    d, offsets = sum(ir.dim for ir in irs), _offsets(irs)
    if k == 1:
        out: dict = {}
        for ir, start in zip(irs, offsets):
            embed = np.zeros((d, ir.dim))
            embed[start:start + ir.dim] = np.eye(ir.dim)
            out.setdefault(ir, []).append(embed)
        return {ir: _independent(v) for ir, v in out.items() if ir.l <= lmax_needed}
    top = max(ir.l for ir in irs)
    prev = _couplings(group, irs, k - 1, lmax_needed + top)
    out = {}
    for ir_a, maps in prev.items():  # maps [n, d^(k-1), dim a]
        for ir_j, start in zip(irs, offsets):
            for ir_c in group.product(ir_a, ir_j):
                if ir_c.l > lmax_needed:
                    continue
                w = wigner_3j(ir_a.l, ir_j.l, ir_c.l) * np.sqrt(ir_c.dim)  # e3nn's component normalisation
                coupled = np.einsum("nDa,ajc->nDjc", maps, w)
                full = np.zeros(coupled.shape[:2] + (d, ir_c.dim))
                full[:, :, start:start + ir_j.dim] = coupled
                out.setdefault(ir_c, []).extend(full.reshape(full.shape[0], -1, ir_c.dim))
    return {ir: _independent(v) for ir, v in out.items()}


@functools.lru_cache(maxsize=None)
def symmetric_basis(group, irs: tuple, out_ir, nu: int) -> np.ndarray:
    """[n, d, ..., d (nu slots), 2L+1]: a basis of the equivariant maps Sym^nu(V) -> out_ir (n may be 0)."""
    if nu < 1:
        raise ValueError(f"correlation order {nu}: it must be at least 1")
    d = sum(ir.dim for ir in irs)
    maps = _couplings(group, irs, nu, out_ir.l).get(out_ir)
    if maps is None or len(maps) == 0:
        return np.zeros((0,) + (d,) * nu + (out_ir.dim,))
    maps = maps.reshape((len(maps),) + (d,) * nu + (out_ir.dim,))
    perms = list(permutations(range(1, nu + 1)))
    symmetric = [sum(np.transpose(m[None], (0, *p, nu + 1))[0] for p in perms) / len(perms) for m in maps]
    basis = _independent(symmetric, scale=1.0)  # the maps before symmetrising are orthonormal
    return basis * np.sqrt(out_ir.dim)


def basis_size(group, irs: tuple, out_ir, nu: int) -> int:
    return int(symmetric_basis(group, irs, out_ir, nu).shape[0])
