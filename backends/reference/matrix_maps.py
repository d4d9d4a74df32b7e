"""Reference runtime for matrix groups (EMLP-style reps of ``eqdsl.reps.matrix_reps``).

Features are tensors [..., rep.size] in the coordinate order of ``eqdsl.reps.matrix_reps``
(a ``Sum`` stacks its terms in order).  The *blocks* of a rep are the terms of a
``Sum``, or the rep itself when it is not a Sum (see :func:`rep_blocks`).

Equivariant maps are spanned by bases the solver computes in float64
(``eqdsl.reps.solve``).  Those bases live in buffers re-derived from the float64
solution whenever a module is moved to float64, so ``model.double()`` after a
float32 construction is exactly equivariant (to ~1e-15), not to float32 round-off.
The basis buffers are not persistent: they are a function of the reps, not state.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from eqdsl.reps.matrix_properties import blocks as rep_blocks  # the terms of a Sum, or [rep] itself
from eqdsl.reps.matrix_reps import Rep, Tensor, Trivial
from eqdsl.reps.solve import NoEquivariantMap, bilinear_basis, invariant_basis, solve

from ._blocks import safe_sqrt
from .activations import resolve
from .exact import ExactBuffers
from .typed import TypedMap

__all__ = [
    "EquivariantLinear", "Bilinear", "InvariantForm", "GeneralGate",
    "invariant_forms", "block_norm", "group_pool", "apply_rep", "rep_blocks",
]


def _runs(sizes: Sequence[int], keys: Sequence | None = None) -> list[tuple[int, int, int, object]]:
    """Maximal runs of consecutive blocks with equal (size, key): (offset, count, size, key).

    Lets per-block ops run as one reshape per run instead of one op per block
    (``32*V`` is a single [..., 32, d] view).
    """
    keys = [None] * len(sizes) if keys is None else list(keys)
    runs, offset, i = [], 0, 0
    while i < len(sizes):
        j = i
        while j < len(sizes) and sizes[j] == sizes[i] and keys[j] == keys[i]:
            j += 1
        runs.append((offset, j - i, int(sizes[i]), keys[i]))
        offset += (j - i) * int(sizes[i])
        i = j
    return runs


def _run_view(x: torch.Tensor, offset: int, count: int, size: int) -> torch.Tensor:
    return x[..., offset:offset + count * size].reshape(x.shape[:-1] + (count, size))


def _check_sizes(x: torch.Tensor, sizes: Sequence[int], what: str) -> None:
    if any(int(s) < 1 for s in sizes):
        raise ValueError(f"{what}: block sizes must be positive, got {list(sizes)}")
    if sum(int(s) for s in sizes) != x.shape[-1]:
        raise ValueError(f"{what}: blocks {list(sizes)} sum to {sum(sizes)}, features have {x.shape[-1]}")


def _linear_basis(types_in, t_out) -> np.ndarray:
    return solve(types_in[0], t_out, allow_empty=True).basis


def _bilinear_basis(types_in, t_out) -> np.ndarray:
    ta, tb = types_in
    B = solve(Tensor(ta, tb), t_out, allow_empty=True).basis
    return B.reshape(B.shape[0], t_out.size, ta.size, tb.size)


class EquivariantLinear(ExactBuffers):
    """x [..., in] -> x @ W^T with W equivariant: per pair of block types, weights [m_out, m_in, n] on a solved basis.

    ``bias=True`` adds a learnable vector in the span of the invariant vectors of
    ``rep_out`` (zero-initialized); ValueError if ``rep_out`` has none.
    """

    def __init__(self, rep_in: Rep, rep_out: Rep, bias: bool = False):
        super().__init__()
        self.rep_in, self.rep_out = rep_in, rep_out
        self.map = TypedMap([rep_in], rep_out, _linear_basis)
        if self.map.num_pieces == 0:
            raise NoEquivariantMap(rep_in, rep_out)
        if bias:
            inv = invariant_basis(rep_out, allow_empty=True)
            if inv.shape[0] == 0:
                raise ValueError(f"bias needs invariant vectors in the output `{rep_out}` of "
                                 f"{rep_out.group.name}, and it has none; use bias=False")
            self._exact_buffer("bias_basis", inv)
            self.bias = torch.nn.Parameter(torch.zeros(inv.shape[0]))
        else:
            self.bias = None

    def weight_matrix(self) -> torch.Tensor:
        """The current equivariant matrix W [out, in]."""
        return self.map.dense()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.map.unsort(self.map.sort(x, 1) @ self.map.dense_sorted().T)
        if self.bias is not None:
            y = y + self.bias @ self.bias_basis
        return y

    def extra_repr(self) -> str:
        return f"{self.rep_in} -> {self.rep_out} ({self.rep_in.group.name}), {self.map.num_basis} weights"


class Bilinear(torch.nn.Module):
    """(a [..., A], b [..., A']) -> y [..., out], y_o = sum_ij W[o, i, j] a_i b_j, W in the equivariant span."""

    def __init__(self, rep_a: Rep, rep_b: Rep, rep_out: Rep):
        super().__init__()
        self.rep_a, self.rep_b, self.rep_out = rep_a, rep_b, rep_out
        self.map = TypedMap([rep_a, rep_b], rep_out, _bilinear_basis)
        if self.map.num_pieces == 0:
            raise NoEquivariantMap(Tensor(rep_a, rep_b), rep_out)

    def weight_tensor(self) -> torch.Tensor:
        """The current equivariant bilinear map W [out, A, A']."""
        return self.map.dense()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        W = self.map.dense_sorted()
        a, b = self.map.sort(a, 1), self.map.sort(b, 2)
        no, na, nb = W.shape
        # contract the larger input with W first: the intermediate is [..., out, min(A, A')], never [..., A, A']
        if na <= nb:
            t = (b @ W.reshape(no * na, nb).T).unflatten(-1, (no, na))
            return self.map.unsort((t @ a.unsqueeze(-1)).squeeze(-1))
        t = (a @ W.transpose(1, 2).reshape(no * nb, na).T).unflatten(-1, (no, nb))
        return self.map.unsort((t @ b.unsqueeze(-1)).squeeze(-1))

    def extra_repr(self) -> str:
        return (f"{self.rep_a} x {self.rep_b} -> {self.rep_out} ({self.rep_out.group.name}), "
                f"{self.map.num_basis} weights")


def _normalize_form(F: np.ndarray) -> np.ndarray:
    F = F / np.abs(F).max()
    F[np.abs(F) < 1e-12] = 0.0  # solver round-off: exact zeros read better in generated code
    diag = np.flatnonzero(np.abs(np.diag(F)) > 1e-8)
    # sign: first nonzero diagonal entry positive; antisymmetric forms (zero diagonal): first nonzero entry
    pivot = F[diag[0], diag[0]] if len(diag) else F.flat[np.flatnonzero(F)[0]]
    return F if pivot > 0 else -F


def invariant_forms(rep: Rep) -> list[np.ndarray]:
    """The invariant bilinear form F (a^T F b invariant) of each block of ``rep``, one per block.

    Normalized to max |F| = 1 with the first nonzero diagonal entry positive
    (identity for SO(n), diag(1, -1, -1, -1) for the Lorentz group's V).
    ValueError when a block has no invariant form or more than one.
    """
    G = rep.group
    solved: dict[Rep, np.ndarray] = {}
    forms = []
    for t in rep_blocks(rep):
        if t not in solved:
            B = bilinear_basis(t, t, Trivial(G), allow_empty=True)
            if B.shape[0] != 1:
                raise ValueError(f"block `{t}` of `{rep}` has {B.shape[0]} invariant bilinear forms under "
                                 f"{G.name}; an invariant form needs exactly 1")
            solved[t] = _normalize_form(B[0, 0])
        forms.append(solved[t].copy())
    return forms


class InvariantForm(ExactBuffers):
    """(a, b) [..., rep.size] -> [..., num_blocks]: a_t^T F_t b_t per block t (see invariant_forms)."""

    def __init__(self, rep: Rep):
        super().__init__()
        self.rep = rep
        blocks = rep_blocks(rep)
        forms = invariant_forms(rep)
        # equal consecutive blocks share one form buffer and one einsum
        self._runs = _runs([t.size for t in blocks], blocks)
        k = 0
        for r, (_, count, _, _) in enumerate(self._runs):
            self._exact_buffer(f"form_{r}", forms[k])
            k += count

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        outs = []
        for r, (offset, count, size, _) in enumerate(self._runs):
            F = getattr(self, f"form_{r}")
            outs.append(torch.einsum("...ci,ij,...cj->...c", _run_view(a, offset, count, size), F,
                                     _run_view(b, offset, count, size)))
        return torch.cat(outs, dim=-1)

    def extra_repr(self) -> str:
        return f"{self.rep} ({self.rep.group.name})"


class GeneralGate(torch.nn.Module):
    """[scalars | one gate per gated block | gated blocks] -> [acts(scalars) | gate_act(gate_k) * block_k].

    Activations by name; as in ``gate.Gate`` they are rescaled to unit second
    moment (normalize2mom) unless ``normalize=False``.  Scalars and gates must be
    invariant for the result to be equivariant (the compiler checks that).
    """

    def __init__(self, num_scalars: int, gated_sizes: list[int], acts: list[str], gate_act: str,
                 normalize: bool = True):
        super().__init__()
        acts = [acts] * num_scalars if isinstance(acts, str) else list(acts)
        if len(acts) != num_scalars:
            raise ValueError(f"GeneralGate: {num_scalars} scalars but {len(acts)} activations")
        if any(int(s) < 1 for s in gated_sizes):
            raise ValueError(f"GeneralGate: gated block sizes must be positive, got {list(gated_sizes)}")
        self.num_scalars, self.gated_sizes = int(num_scalars), [int(s) for s in gated_sizes]
        self.act_names, self.gate_act_name = acts, gate_act
        # consecutive scalars with the same activation go through one call
        self._scalar_runs = [(o, c) for o, c, _, _ in _runs([1] * len(acts), acts)]
        self.acts = torch.nn.ModuleList([resolve(acts[o], normalize) for o, _ in self._scalar_runs])
        self.gate_act = resolve(gate_act, normalize)
        # gate of each gated component, so gating is one gather and one product
        index = torch.repeat_interleave(torch.arange(len(self.gated_sizes)),
                                        torch.tensor(self.gated_sizes, dtype=torch.long))
        self.register_buffer("gate_index", index, persistent=False)
        self.dim_in = self.num_scalars + len(self.gated_sizes) + sum(self.gated_sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.dim_in:
            raise ValueError(f"GeneralGate expects {self.dim_in} features, got {x.shape[-1]}")
        ns, ng = self.num_scalars, len(self.gated_sizes)
        outs = [act(x[..., o:o + c]) for (o, c), act in zip(self._scalar_runs, self.acts)]
        if ng:
            gates = self.gate_act(x[..., ns:ns + ng])
            outs.append(x[..., ns + ng:] * gates[..., self.gate_index])
        return torch.cat(outs, dim=-1) if outs else x[..., :0]

    def extra_repr(self) -> str:
        return f"scalars={self.num_scalars}, gated={self.gated_sizes}, gate_act={self.gate_act_name}"


def block_norm(x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Euclidean norm of each consecutive block, [..., sum(sizes)] -> [..., len(sizes)]; value and gradient 0 at 0."""
    _check_sizes(x, sizes, "block_norm")
    if not sizes:
        return x.new_zeros(x.shape[:-1] + (0,))
    sq = [(v * v).sum(-1) for v in (_run_view(x, o, c, s) for o, c, s, _ in _runs(sizes))]
    return safe_sqrt(torch.cat(sq, dim=-1))


def group_pool(x: torch.Tensor, sizes: list[int], reduce: str) -> torch.Tensor:
    """Max or mean of each consecutive block's components: [..., sum(sizes)] -> [..., len(sizes)].

    Invariant on permutation (regular, orbit) blocks, whose group elements only permute components.
    """
    if reduce not in ("max", "mean"):
        raise ValueError(f"group_pool: reduce must be 'max' or 'mean', got {reduce!r}")
    _check_sizes(x, sizes, "group_pool")
    if not sizes:
        return x.new_zeros(x.shape[:-1] + (0,))
    views = (_run_view(x, o, c, s) for o, c, s, _ in _runs(sizes))
    return torch.cat([v.amax(-1) if reduce == "max" else v.mean(-1) for v in views], dim=-1)


def apply_rep(x: torch.Tensor, rho) -> torch.Tensor:
    """rho acting on features: x [..., n] -> x @ rho^T (rho an [n, n] matrix, cast to x's dtype/device)."""
    rho = torch.as_tensor(rho, dtype=x.dtype, device=x.device)
    return x @ rho.transpose(-1, -2)
