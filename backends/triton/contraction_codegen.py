"""Triton source generator for MACE's symmetric contraction (``reference.SymmetricContraction``).

Per row b and channel c the contraction is a polynomial in the channel's components a = A[b, c, :]:

    y[b, c, i, m] = sum_k sum_eta Wsel[b, eta, c] sum_{j1..jk} U^(i,k)[eta, j1, ..., jk, m] a_j1 ... a_jk,
    Wsel[b, eta, c] = sum_kk S[b, kk] W[kk, eta, c]       (W[0, eta, c] without a selector)

with U the symmetric product basis (exact constants) and W every (output block i, order k)'s weights
concatenated along eta.  Everything forward and backward computes is a derivative of one scalar form,

    Phi(A; V_1..V_p; G, W, S) = sum_{b,c,i,m} G[b,c,i,m] * (the p-th derivative of y[b,c,i,m] in a,
                                                            in the directions V_1, ..., V_p),

linear in G, W, S and in each V_q, and a symmetric polynomial in A.  An *operation* ``(target, p)``
writes the gradient of Phi by one slot from the others: target "y" the output (no G; p = 0 is the
forward), "w" the weights, "s" the selector, "x" the gradient by A, i.e. the (p+1)-th derivative with
its last direction left open.  The derivative of an operation by any of its inputs is again an
operation: by G, W or S the same p with that slot as target; by A one more open direction, (x, p'),
where p' counts the incoming gradient as a direction when the target was "x"; by V_q the open
direction takes V_q's place, (x, p' - 1).  So forward, backward and every higher derivative (forces,
and training on them) run generated kernels (``contraction.py`` holds the autograd function).

Since U is symmetric in its k slots, the p-th derivative is k!/(k-p)! times U contracted with
V_1..V_p in its first slots and a in the rest; per sorted index tuple t (the only entries stored),
the distinct orderings of t give which components meet which direction.  Entries |U| < 1e-12 are
structural zeros and produce no code; the others are literals (``repr``, exact in float64).

Kernels: one per operation, one program per block of BLOCK_B rows, looping over channel tiles of
BLOCK_C lanes (the channel count and every offset are literals).  Layout: A, V_q and the gradient by
A are [rows, C * d] in e3nn's mul_ir order (block (c, m) of irrep block l at offset + c (2l+1) + m);
y and G [rows, sum_i C M_i] likewise; W [K, NTOT, C] (channels innermost); S [rows, K].  The weight
gradient is written as one partial sum per program ([programs, K, NTOT, C]), summed by the caller
(deterministic, no atomics).  numpy only: generating a source needs neither torch nor triton.
"""
from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import permutations

import numpy as np

from .codegen import _triton_version
from .emit import _fmt

CONTRACTION_CODEGEN_VERSION = 1
TARGETS = ("y", "x", "w", "s")
DTYPES = ("float32", "float64")
BASIS_EPS = 1e-12  # |U| below this is a structural zero (the bases are exact to about 1e-15)


@dataclass(frozen=True)
class ContractionForm:
    """What the kernels of one contraction depend on: channels, the per-channel irreps dims in A,
    the output irreps dims, the selector columns (0: shared weights), and per output block the orders k
    with their weight offsets and nonzero basis entries ((eta, sorted t, m, U) with eta local)."""
    channels: int
    in_dims: tuple[int, ...]
    out_dims: tuple[int, ...]
    selectors: int
    # per output block: ((k, weight offset in NTOT, n_k, ((eta, t, m, coef), ...)), ...)
    blocks: tuple

    @staticmethod
    def from_bases(channels: int, in_dims, out_dims, selectors: int, bases) -> "ContractionForm":
        """`bases[i]`: ((k, U [n, d, ..., d, M] as numpy), ...) for output block i, in weight order."""
        blocks, start = [], 0
        for per_block in bases:
            orders = []
            for k, u in per_block:
                u = np.asarray(u, dtype=np.float64)
                n = u.shape[0]
                entries = []
                for idx in zip(*np.nonzero(np.abs(u) >= BASIS_EPS)):
                    eta, t, m = int(idx[0]), tuple(int(j) for j in idx[1:-1]), int(idx[-1])
                    if list(t) == sorted(t):
                        entries.append((eta, t, m, float(u[idx])))
                orders.append((k, start, n, tuple(entries)))
                start += n
            blocks.append(tuple(orders))
        return ContractionForm(channels, tuple(in_dims), tuple(out_dims), selectors, tuple(blocks))

    @property
    def d(self) -> int:
        return sum(self.in_dims)

    @property
    def ntot(self) -> int:
        return sum(n for blk in self.blocks for _, _, n, _ in blk)

    @property
    def max_order(self) -> int:
        return max(k for blk in self.blocks for k, _, _, _ in blk)

    def text(self) -> str:
        lines = [f"channels {self.channels}", f"in_dims {self.in_dims}", f"out_dims {self.out_dims}",
                 f"selectors {self.selectors}"]
        for i, blk in enumerate(self.blocks):
            for k, start, n, entries in blk:
                lines.append(f"block {i} order {k} weights {start}+{n}: "
                             + " ".join(f"{e}/{','.join(map(str, t))}/{m}/{c!r}" for e, t, m, c in entries))
        return "\n".join(lines)

    def component(self, j: int) -> tuple[int, int]:
        """(offset of component j's first channel in a row, stride between channels) in mul_ir order."""
        start = 0
        for dim in self.in_dims:
            if j < dim:
                return self.channels * start + j, dim
            j -= dim
            start += dim
        raise IndexError(j)

    def out_offsets(self) -> list[int]:
        out, start = [], 0
        for dim in self.out_dims:
            out.append(start)
            start += self.channels * dim
        return out


@dataclass(frozen=True)
class ContractionKey:
    form: ContractionForm
    dtype: str
    target: str  # one of TARGETS
    p: int  # directions V_1..V_p (the open one of target "x" not counted)
    block_c: int = 16

    prefix = "sc"  # source files: <cache>/sc_<hash>.py
    generator = "contraction_codegen"

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.target == "s" and not self.form.selectors:
            raise ValueError("target 's' needs a selector")
        if self.block_c < 1 or self.block_c & (self.block_c - 1):
            raise ValueError(f"block_c must be a power of two, got {self.block_c}")

    def canonical(self) -> str:
        form = hashlib.sha256(self.form.text().encode()).hexdigest()
        return "\n".join([f"eqdsl-triton-contraction v{CONTRACTION_CODEGEN_VERSION}", f"triton {_triton_version()}",
                          f"dtype {self.dtype}", f"operation {self.target} {self.p}", f"block_c {self.block_c}",
                          f"max_monomials {MAX_MONOMIALS_PER_KERNEL}",
                          f"channels {self.form.channels} in_dims {self.form.in_dims} out_dims {self.form.out_dims} "
                          f"selectors {self.form.selectors}", f"form sha256 {form}"]) + "\n"

    def digest(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()

    def source(self) -> str:
        return generate(self)


def slots(target: str, p: int, selectors: int) -> tuple[str, ...]:
    """The inputs of operation (target, p), in kernel-argument order."""
    return (("A",) + tuple(f"V{q}" for q in range(p)) + (("G",) if target != "y" else ())
            + (("W",) if target != "w" else ()) + (("S",) if selectors and target != "s" else ()))


def _entries(k: int, entries, lead: int) -> dict:
    """(eta, m) -> {(leading components, sorted rest): coefficient} for the derivative with `lead`
    distinguished slots: k!/(k-lead)! U over the distinct orderings of each stored tuple."""
    out: dict = defaultdict(Counter)
    scale = math.factorial(k) // math.factorial(k - lead)
    for eta, t, m, coef in entries:
        for sigma in set(permutations(t)):
            out[(eta, m)][(sigma[:lead], tuple(sorted(sigma[lead:])))] += coef * scale
    return out


def _horner(rest: dict) -> str:
    """sum over sorted tuples r of c_r * prod_{j in r} a_j, nested by leading index (Horner's scheme):
    a_i * (a_j * (...) + ...) + ...; no product of two components is formed outside its nest, so no
    such product is shared between polynomials (and kept live across the kernel)."""
    here = rest.get((), 0.0)
    children = defaultdict(dict)
    for r, c in rest.items():
        if r:
            children[r[0]][r[1:]] = c
    parts = [_fmt(here)] if here else []
    for j, sub in sorted(children.items()):
        inner = _horner(sub)
        parts.append(f"a{j} * ({inner})" if "+" in inner else f"a{j} * {inner}")
    return " + ".join(parts) if parts else "0.0"


def _monomials(lead: list[str], rest: dict) -> str:
    """prod(lead) * (the rest's polynomial in a)."""
    inner = _horner(rest)
    if not lead:
        return inner
    return " * ".join(lead) + (f" * ({inner})" if inner != "1.0" else "")


class _Emitter:
    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, depth: int, text: str = "") -> None:
        self.lines.append("    " * depth + text if text else "")


MAX_MONOMIALS_PER_KERNEL = 800  # above this, sm_90 kernels of MACE's size (16 channels, L = 3) spilled


def _work(form: ContractionForm, target: str, p: int) -> list:
    """(output block, order, weight offset, n, {(eta, m): {(lead, rest): coefficient}}) for every order the
    operation reaches, with `lead` = p distinguished slots (p + 1 for "x": the open one last)."""
    lead = p + (1 if target == "x" else 0)
    return [(i, k, start, n, _entries(k, entries, lead))
            for i, blk in enumerate(form.blocks) for k, start, n, entries in blk if k >= lead]


def _unit(target: str, p: int, i: int, start: int, eta: int, m: int, lead_t: tuple):
    """What part of the output a monomial writes: an output component (i, m) for "y", a weight for "w",
    a component of A for "x"; for "s" the weight whose terms it sums into the selector's gradient."""
    return {"y": (i, m), "w": start + eta, "x": lead_t[p] if target == "x" else None, "s": start + eta}[target]


def parts(form: ContractionForm, target: str, p: int) -> list[list]:
    """How an operation splits into kernels, each writing its own units of the output (``_unit``) in order,
    with at most MAX_MONOMIALS_PER_KERNEL monomials where a unit allows: Triton's compile time grows faster
    than a kernel's size, and a large kernel keeps more values live than the registers hold.  The
    selector's gradient ("s") sums over every weight: each of its kernels writes its own partial sum
    ([kernels, N, K], summed by the caller)."""
    if target == "y":
        units = [(i, m) for i, dim in enumerate(form.out_dims) for m in range(dim)]
    elif target in ("w", "s"):
        units = list(range(form.ntot))
    else:
        units = list(range(form.d))
    count = dict.fromkeys(units, 0)
    for i, k, start, n, ents in _work(form, target, p):
        for (eta, m), terms in ents.items():
            for lead_t, _ in terms:
                count[_unit(target, p, i, start, eta, m, lead_t)] += 1
    out, size = [[]], 0
    for u in units:
        if out[-1] and size + count[u] > MAX_MONOMIALS_PER_KERNEL:
            out.append([])
            size = 0
        out[-1].append(u)
        size += count[u]
    return out


def generate(key: ContractionKey) -> str:
    """The Triton source of one operation of one contraction (see the module docstring): one kernel per
    part (``parts``), listed in ``KERNELS``."""
    f, target, p = key.form, key.target, key.p
    e = _Emitter()
    e(0, f'"""Generated by eqdsl.backends.triton.{key.generator} -- do not edit.')
    e(0)
    for line in key.canonical().splitlines():
        e(0, line)
    e(0, '"""')
    e(0, "import triton")
    e(0, "import triton.language as tl")
    names = []
    for n, units in enumerate(parts(f, target, p)):
        names.append(f"sc_{target}_{p}__{n}")
        _kernel(e, key, names[-1], units, n)
    e(0)
    e(0)
    e(0, f"KERNELS = {names!r}  # launched in turn, each writing its own part of the output")
    return "\n".join(e.lines) + "\n"


def _kernel(e: _Emitter, key: ContractionKey, name: str, units: list, part: int) -> None:
    """One kernel of an operation, the `part`-th: the monomials writing `units` (see ``_unit``), every unit
    stored."""
    f, target, p = key.form, key.target, key.p
    mine = set(units)
    dt = f"tl.{key.dtype}"
    kk_cols = max(f.selectors, 1)
    args = list(slots(target, p, f.selectors))
    e(0)
    e(0)
    e(0, '@triton.jit(do_not_specialize=["N"])')
    e(0, f"def {name}({', '.join(args)}, OUT, N, BLOCK_B: tl.constexpr):")
    what = {"y": "output components (block, m)", "w": "weights", "x": "components of the gradient by A",
            "s": "the selector's gradient from weights"}[target] + f" {units[0]}..{units[-1]}"
    e(1, f'"""Operation ({target}, {p}), {what}: one program per BLOCK_B rows, channel tiles of {key.block_c}."""')
    e(1, "rb = tl.program_id(0)")
    e(1, "rows1 = (rb * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)")
    e(1, "rows = rows1[:, None]")
    e(1, "rmask = rows < N")
    din, dout = f.channels * f.d, f.channels * sum(f.out_dims)
    if "S" in args:
        e(1, "# the selector's columns, one [BLOCK_B, 1] vector each")
        for kk in range(f.selectors):
            e(1, f"s{kk} = tl.load(S + rows * {f.selectors} + {kk}, mask=rmask, other=0.0)")
    if target == "s":
        for kk in range(f.selectors):
            e(1, f"acc_s{kk} = tl.zeros([BLOCK_B], dtype={dt})")
    # what this kernel reads: per (output block, order) the monomials writing its units
    work = []
    for i, k, start, n, ents in _work(f, target, p):
        ents = {(eta, m): {lr: c for lr, c in terms.items() if _unit(target, p, i, start, eta, m, lr[0]) in mine}
                for (eta, m), terms in ents.items()}
        work.append((i, k, start, n, {em: terms for em, terms in ents.items() if terms}))
    used_a, used_v = set(), set()
    for *_, ents in work:
        for terms in ents.values():
            for (lead_t, rest) in terms:
                used_a.update(rest)
                used_v.update((q, j) for q, j in enumerate(lead_t[:p]))

    def names_v(lead_t):
        return [f"v{q}_{j}" for q, j in enumerate(lead_t[:p])]

    def poly(terms, open_j=None):
        by_lead = defaultdict(dict)
        for (lead_t, rest), coef in terms.items():
            if open_j is None or lead_t[p] == open_j:
                by_lead[lead_t[:p]][rest] = coef
        return " + ".join(_monomials(names_v(lt), rest) for lt, rest in sorted(by_lead.items()))

    e(1, f"for c0 in range(0, {f.channels}, {key.block_c}):")
    e(2, f"cols1 = c0 + tl.arange(0, {key.block_c})")
    e(2, "cols = cols1[None, :]")
    e(2, f"cmask = cols < {f.channels}")
    e(2, "mask = rmask & cmask")
    for j in sorted(used_a):
        off, stride = f.component(j)
        e(2, f"a{j} = tl.load(A + rows * {din} + {off} + cols * {stride}, mask=mask, other=0.0)")
    for q, j in sorted(used_v):
        off, stride = f.component(j)
        e(2, f"v{q}_{j} = tl.load(V{q} + rows * {din} + {off} + cols * {stride}, mask=mask, other=0.0)")
    outs = f.out_offsets()
    if "G" in args:
        for i in sorted({w[0] for w in work if w[4]}):
            for m in range(f.out_dims[i]):
                e(2, f"g{i}_{m} = tl.load(G + rows * {dout} + {outs[i] + m} + cols * {f.out_dims[i]}, "
                     "mask=mask, other=0.0)")
    if target == "y":
        for i, m in units:
            e(2, f"y{i}_{m} = tl.zeros([BLOCK_B, {key.block_c}], dtype={dt})")
    if target == "x":
        for j in units:
            e(2, f"z{j} = tl.zeros([BLOCK_B, {key.block_c}], dtype={dt})")
    written_w = set()
    for i, k, start, n, ents in work:
        e(2, f"# output block {i}, order {k}: weights {start}..{start + n - 1}")
        for eta in range(n):
            per_m = {m: terms for (et, m), terms in ents.items() if et == eta}
            if not per_m:
                continue
            w = start + eta
            if target != "w":
                for kk in range(kk_cols):
                    e(2, f"w{kk} = tl.load(W + {(kk * f.ntot + w) * f.channels} + cols, mask=cmask, other=0.0)")
                if target != "s":
                    e(2, "wsel = " + (" + ".join(f"s{kk} * w{kk}" for kk in range(f.selectors)) if f.selectors else "w0"))
            if target == "y":
                for m, terms in sorted(per_m.items()):
                    e(2, f"y{i}_{m} += wsel * ({poly(terms)})")
            elif target == "x":
                for m, terms in sorted(per_m.items()):
                    e(2, f"wg = wsel * g{i}_{m}")
                    for j in sorted({lt[p] for lt, _ in terms}):
                        e(2, f"z{j} += wg * ({poly(terms, j)})")
            else:  # "w" and "s": G contracted with the polynomial first
                e(2, "val = " + " + ".join(f"g{i}_{m} * ({poly(terms)})" for m, terms in sorted(per_m.items())))
                if target == "w":
                    written_w.add(w)
                    for kk in range(kk_cols):
                        sv = f"s{kk} * val" if f.selectors else "val"
                        e(2, f"tl.store(OUT + (rb * {kk_cols * f.ntot} + {kk * f.ntot + w}) * {f.channels} + cols1, "
                             f"tl.sum({sv}, axis=0), mask=cols1 < {f.channels})")
                else:
                    for kk in range(f.selectors):
                        e(2, f"acc_s{kk} += tl.sum(w{kk} * val, axis=1)")
    if target == "y":
        e(2, "# every output component is written (zeros where no term reaches)")
        for i, m in units:
            e(2, f"tl.store(OUT + rows * {dout} + {outs[i] + m} + cols * {f.out_dims[i]}, y{i}_{m}, mask=mask)")
    elif target == "x":
        for j in units:
            off, stride = f.component(j)
            e(2, f"tl.store(OUT + rows * {din} + {off} + cols * {stride}, z{j}, mask=mask)")
    elif target == "w":
        missing = [w for w in units if w not in written_w]
        if missing:
            e(2, "# weights no term of this operation reaches: zeros")
            e(2, f"zero = tl.zeros([{key.block_c}], dtype={dt})")
            for w in missing:
                for kk in range(kk_cols):
                    e(2, f"tl.store(OUT + (rb * {kk_cols * f.ntot} + {kk * f.ntot + w}) * {f.channels} + cols1, "
                         f"zero, mask=cols1 < {f.channels})")
    if target == "s":
        for kk in range(f.selectors):
            e(1, f"tl.store(OUT + {part} * N * {f.selectors} + rows1 * {f.selectors} + {kk}, acc_s{kk}, "
                 "mask=rows1 < N)")
