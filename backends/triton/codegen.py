"""Triton source generator for tensor products, specialized on one ``TensorProductDescriptor``.

Everything a tensor product computes (forward and every derivative) is a
partial derivative of one multilinear form per row z::

    T(x1, x2, g, W) = sum_paths sum_{uvw} sum_{(i,j,k) : C_ijk != 0}  pw C_ijk W[u,v(,w)] x1[u,i] x2[v,j] g[ch_out,k]

with g in the output slot.  Differentiating T by one *slot* gives the kernel
that writes that slot from the other three:

    target "g"  -> the forward output      (from x1, x2, W)
    target "x1" -> grad w.r.t. x1           (from x2, g, W)
    target "x2" -> grad w.r.t. x2           (from x1, g, W)
    target "w"  -> grad w.r.t. the weights  (from x1, x2, g; summed over rows when shared)

Because T is linear in x1, x2 and g (and in W over the weighted paths; an
unweighted path is W-independent), the derivative of a kernel is again one of
these kernels (with the target slot filled by the incoming gradient);
``backends.triton`` uses that to make forward, backward and double backward
out of the same generated family.

What is generated, per (descriptor, dtype, weight mode, channel block):
one Python module with the operations ``tp_target_{g,x1,x2,w}``, plus
``tp_target_{g,x1,x2}_weighted`` restricted to the weighted paths (when some
paths are unweighted T is affine, not linear, in W, and the derivatives of
``tp_target_w`` must not see the unweighted paths; otherwise these are aliases).
Each operation is one ``@triton.jit`` kernel, or several when its unrolled code
would exceed ``max_terms()`` products (see ``_split``); ``KERNELS``
in the module lists them with their programs per row block.  The grid is
(row blocks of ``BLOCK_B`` rows) x (target blocks of the kernel), target blocks
fastest.  For each block of the target slot (an irreps block of the output /
x1 / x2, or one path's weights), the program

* takes ``BLOCK_B`` rows (``rows``: [BLOCK_B, 1]) and tiles the block's
  channels ``c`` in chunks of ``BLOCK_C`` ([1, BLOCK_C]; a runtime loop when
  the multiplicity is larger), holding one accumulator [BLOCK_B, BLOCK_C] per
  component m of the target irrep;
* for every path writing into that block: decodes the path's free channel
  indices from ``c`` (u, v, w, or (u, v) for uvuv outputs / weights), loops
  (runtime ``for``) over the reduced channel indices, loads the source
  components it needs (loads are hoisted to the outermost loop they depend on),
  and adds ``W * sum_{nonzero C} coef * a * b``: the Clebsch-Gordan tensor is
  unrolled, only its nonzero entries become code, as literals with the path
  weight folded in, factored so that sums over operands that do not depend on
  the channel tile are done on [BLOCK_B, 1] vectors;
* when the target block has multiplicity 1 (nothing to tile over, e.g. the
  gradient of single-channel spherical harmonics in a uvu convolution), tiles
  the path's longest reduced index instead, into lane-wise partial sums shared
  by all the block's paths, summed across lanes (``tl.sum``) once at the end;
* stores each accumulator once (rows and channels masked).  Target blocks no
  path writes get zeros, so outputs can be allocated with ``torch.empty``.

Layout: e3nn's ``mul_ir`` ([rows, dim], block (u, m) at ``offset + u*(2l+1) + m``),
contiguous rows; weights flat per row ([rows, weight_numel]) or shared
([weight_numel]), each path's slice row-major in ``path.weight_shape``.  With
shared weights each program of the "w" kernel loops over ``SHARED_W_ROW_BLOCKS`` row blocks and writes
one partial sum ([row groups, weight_numel]); the caller sums them (deterministic, no atomics).

The fused backward (dx1, dx2, dW in one pass) is ``backward_codegen``; the pieces every generator writes
with, ``emit``.  Loading and caching the sources: ``kernel_cache.py``.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from eqdsl.reps.tp import TensorProductDescriptor

from . import backward_codegen
from .emit import (CONV_INDEX, CONV_ROWS, _Emitter, _lin, _next_pow2, _PathInfo, _split, _sum_expr, channel_tiles,
                   SHARED_W_ROW_BLOCKS, emit_fixup, emit_piece, emit_piece_loop, emit_row_group_loop, kernel_header,
                   segment_target)

CODEGEN_VERSION = 14  # 5: N not specialized on; 6: blocks split by paths; 7: the whole conv family; 8: shared lane
# sums; 9: the fused backward (backward_codegen); 10: shared-weight gradients over SHARED_W_ROW_BLOCKS row blocks;
# 11: the fused backward for uvw paths; 12: channel-tile loops named after their tile variable (emit.channel_tiles);
# 13: fused targets on nodes summed per piece of sorted edges (segments.py), no atomics; 14: the fused backward
# for shared weights (per row)
DTYPES = ("float32", "float64")
WEIGHT_MODES = ("none", "row", "shared")
TARGETS = ("g", "x1", "x2", "w")
SLOTS = ("x1", "x2", "g", "w")  # canonical order of kernel arguments


def kernel_slots(target: str, weighted: bool) -> tuple[str, ...]:
    """The source slots a target's kernel reads, in argument order."""
    return tuple(s for s in SLOTS if s != target and (weighted or s != "w"))


@dataclass(frozen=True)
class KernelKey:
    desc: TensorProductDescriptor
    dtype: str  # "float32" | "float64"
    weights: str  # "none" | "row" | "shared"
    block_c: int = 16  # largest channel tile (a power of two)
    # True: the fused message-passing family ``tp_conv_*`` (rows are edges; x1 rows live on the nodes SRC
    # points to, g rows on the nodes DST points to: gathered when read, summed per piece of sorted edges
    # when written);
    # see ``generate``.  False: the per-row family tp_target_*.
    fused: bool = False

    prefix = "tp"  # source files: <cache>/tp_<hash>.py (kernel_cache)
    generator = "codegen"

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.weights not in WEIGHT_MODES:
            raise ValueError(f"weights must be one of {WEIGHT_MODES}, got {self.weights!r}")
        if self.block_c < 1 or self.block_c & (self.block_c - 1):
            raise ValueError(f"block_c must be a power of two, got {self.block_c}")
        if (self.weights == "none") != (self.desc.weight_numel == 0):
            raise ValueError("weights='none' exactly when the descriptor has no weights")

    def canonical(self) -> str:
        """Everything the generated source depends on, as text (hashed for the disk cache)."""
        d = self.desc
        lines = [f"eqdsl-triton-tp v{CODEGEN_VERSION}", f"triton {_triton_version()}",
                 f"dtype {self.dtype}", f"weights {self.weights}", f"block_c {self.block_c}",
                 f"max_terms {max_terms()}",
                 *(["fused conv: x1 rows through SRC, g rows through DST (gathered / summed per piece)"]
                   if self.fused else []),
                 "in1 " + ",".join(f"{b.mul}:{b.ir.l}:{b.ir}" for b in d.irreps_in1),
                 "in2 " + ",".join(f"{b.mul}:{b.ir.l}:{b.ir}" for b in d.irreps_in2),
                 "out " + ",".join(f"{b.mul}:{b.ir.l}:{b.ir}" for b in d.irreps_out)]
        for p in d.paths:
            lines.append(f"path {p.i_in1} {p.i_in2} {p.i_out} {p.mode} {int(p.has_weight)} "
                         f"{p.path_weight!r} {p.weight_shape}")
        return "\n".join(lines) + "\n"

    def digest(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()

    def source(self) -> str:
        return generate(self)


def _triton_version() -> str:
    try:
        import triton
        return triton.__version__
    except ImportError:  # generating source does not need triton; loading it does
        return "none"


# -----------------------------------------------------------------------------
# the per-path index algebra
# -----------------------------------------------------------------------------

# -----------------------------------------------------------------------------
# source emission
# -----------------------------------------------------------------------------

_ROLE = {"x1": 0, "x2": 1, "g": 2}  # position of a slot's component in a CG entry (i, j, k)


def _emit_block(e: _Emitter, key: KernelKey, target: str, bname: str, mul: int, dim: int, off: int,
                stride: int, paths: list[_PathInfo], title: str, d0: int, accumulate: bool = False) -> None:
    """One target block (or, with `accumulate`, a later piece of one: its paths are added to what an
    earlier kernel stored): channel-tile loop, every contributing path, the store."""
    bc = min(_next_pow2(mul), key.block_c)
    dt = f"tl.{key.dtype}"
    shared_w_target = target == "w" and key.weights == "shared"
    e(d0, f"# ---- {title}" + (f", {len(paths)} more paths added to the stored sum" if accumulate else ""))
    c = f"c_{bname}"
    d = channel_tiles(e, c, mul, bc, d0)
    e(d, f"cm_{bname} = {c} < {mul}")
    ncomp = 1 if target == "w" else dim
    for t in range(ncomp):
        e(d, f"acc_{bname}_{t} = tl.zeros([BLOCK_B, {bc}], dtype={dt})")
    tiles: dict = {}  # multiplicity-1 targets: lane-wise partial sums shared by the paths, reduced once
    dp = d
    if segment_target(key, target):  # the piece's edges, BLOCK_B at a time, summed into the accumulators
        dp = emit_piece_loop(e, [s for s in CONV_ROWS if s != target], d)
    if shared_w_target:  # one partial sum per SHARED_W_ROW_BLOCKS row blocks, accumulated in registers
        dp = emit_row_group_loop(e, d)
        if key.fused:
            for slot in ("x1", "g"):  # both are sources of the weight gradient
                e(dp, f"{CONV_ROWS[slot]} = tl.load({CONV_INDEX[slot]} + rows, mask=rmask, other=0).to(tl.int64)")
    for pi in paths:
        _emit_path(e, key, target, pi, bname, c, dp, tiles)
    for (t, _), tile in tiles.items():  # zeroed at depth dp: reduced there (per row block of a row loop)
        e(dp, f"acc_{bname}_{t} += tl.sum({tile}, axis=1, keep_dims=True)")
    if target == "w":
        if shared_w_target:
            e(d, f"tl.store(T + rb * {stride} + ({_lin(off, c)}), tl.sum(acc_{bname}_0, axis=0, keep_dims=True), "
                 f"mask=cm_{bname})")
        else:
            e(d, f"tl.store(T + rows * {stride} + ({_lin(off, c)}), acc_{bname}_0, mask=rmask & cm_{bname})")
    else:
        for t in range(ncomp):
            if segment_target(key, target):  # the piece's sum, stored once into its row
                ptr = f"T + orow * {stride} + ({_lin(off + t, c, dim)})"
                e(d, f"acc_{bname}_{t} = tl.sum(acc_{bname}_{t}, axis=0, keep_dims=True)")
                if accumulate:
                    e(d, f"acc_{bname}_{t} += tl.load({ptr}, mask=cm_{bname}, other=0.0)")
                e(d, f"tl.store({ptr}, acc_{bname}_{t}, mask=cm_{bname})")
            else:
                ptr = f"T + rows * {stride} + ({_lin(off + t, c, dim)})"
                if accumulate:  # an earlier kernel stored this block's other paths
                    e(d, f"acc_{bname}_{t} += tl.load({ptr}, mask=rmask & cm_{bname}, other=0.0)")
                e(d, f"tl.store({ptr}, acc_{bname}_{t}, mask=rmask & cm_{bname})")


def _emit_path(e: _Emitter, key: KernelKey, target: str, pi: _PathInfo, bname: str, c: str, d0: int,
               tiles: dict) -> None:
    """One path's contribution to the accumulators of a target block (see the module docstring)."""
    pre = f"p{pi.n}"
    p = pi.p
    e(d0, f"# path {pi.n}: {p.mode} l=({pi.l[0]},{pi.l[1]})->{pi.l[2]} muls=({pi.m1},{pi.m2},{pi.mo})"
          f" weighted={p.has_weight} pw={p.path_weight:.6g}")
    # decode the free channel indices from the tile, row-major over the target's channel
    free = pi.chan[target]
    exts = [pi.ext[nm] for nm in free]
    idx: dict[str, str] = {}
    vmask: dict[str, str] = {}  # indices that are [1, BLOCK] vectors -> the mask of their lanes
    for k, nm in enumerate(free):
        if exts[k] == 1:
            idx[nm] = "0"
            continue
        inner = 1
        for x in exts[k + 1:]:
            inner *= x
        expr = c if inner == 1 else f"({c} // {inner})"
        if k > 0:
            expr = f"{expr} % {exts[k]}"
        var = f"{pre}_i{nm}"
        e(d0, f"{var} = {expr}")
        idx[nm], vmask[nm] = var, f"cm_{bname}"
    # reduced indices: runtime loops (extent 1: the constant 0)
    loops = []
    for nm in pi.ext:
        if nm in free:
            continue
        if pi.ext[nm] == 1:
            idx[nm] = "0"
        else:
            idx[nm] = f"{pre}_i{nm}"
            loops.append(nm)
    # When nothing is tiled over the target's channels (a multiplicity-1 target block, e.g. the
    # gradient of the spherical harmonics in a uvu convolution), tile the longest reduction instead:
    # [BLOCK_B, BR] partial sums, reduced across lanes once at the end.
    rtile = None
    if not vmask and loops:
        rtile = max(loops, key=lambda nm: pi.ext[nm])
        loops.remove(rtile)
        loops.insert(0, rtile)

    sources = [s for s in ("x1", "x2", "g") if s != target]
    if pi.weighted and target != "w":
        sources.append("w")

    def depth_of(slot: str) -> int:
        return max((loops.index(nm) + 1 for nm in pi.chan[slot] if nm in loops), default=0)

    def mask_of(slot: str, rows: bool = True) -> str:
        ms = (["rmask"] if rows else []) + sorted({vmask[nm] for nm in pi.chan[slot] if nm in vmask})
        return " & ".join(ms)

    def is_vec(slot: str) -> bool:
        return any(nm in vmask for nm in pi.chan[slot])

    # which components of each source are used
    used: dict[str, set[int]] = {s: set() for s in ("x1", "x2", "g")}
    for ijk in pi.nnz:
        for s in used:
            used[s].add(ijk[_ROLE[s]])

    def emit_loads(slot: str, depth: int) -> None:
        ch = pi.flat(slot, idx)
        if slot == "w":
            addr = _lin(pi.woff, ch)
            if key.weights == "shared":
                if is_vec(slot):
                    e(depth, f"{pre}_w = tl.load(W + ({addr}), mask={mask_of(slot, False)}, other=0.0)")
                else:
                    e(depth, f"{pre}_w = tl.load(W + ({addr}))")
            else:
                e(depth, f"{pre}_w = tl.load(W + rows * {key.desc.weight_numel} + ({addr}), "
                         f"mask={mask_of(slot)}, other=0.0)")
            return
        base = {"x1": "X1", "x2": "X2", "g": "G"}[slot]
        stride = {"x1": key.desc.irreps_in1.dim, "x2": key.desc.irreps_in2.dim,
                  "g": key.desc.irreps_out.dim}[slot]
        dim, off = pi.dims[slot], pi.offs[slot]
        rws = CONV_ROWS.get(slot, "rows") if key.fused else "rows"  # fused: node rows gathered through an index
        for comp in sorted(used[slot]):
            e(depth, f"{pre}_{slot}_{comp} = tl.load({base} + {rws} * {stride} + ({_lin(off + comp, ch, dim)}), "
                     f"mask={mask_of(slot)}, other=0.0)")

    dt = f"tl.{key.dtype}"
    comps = [0] if target == "w" else sorted({ijk[_ROLE[target]] for ijk in pi.nnz})
    acc = {t: f"acc_{bname}_{t}" for t in comps}
    depth = d0
    for level in range(len(loops) + 1):
        for s in sources:
            if depth_of(s) == level:
                emit_loads(s, depth)
        if level == len(loops):
            break
        nm = loops[level]
        if nm == rtile:
            br = min(_next_pow2(pi.ext[nm]), key.block_c)
            for t in comps:  # [BLOCK_B, br] partial sums, one per component, shared with the block's other paths
                if (t, br) not in tiles:
                    tiles[(t, br)] = f"acc_{bname}_{t}_lanes{br}"
                    e(depth, f"{tiles[(t, br)]} = tl.zeros([BLOCK_B, {br}], dtype={dt})")
                acc[t] = tiles[(t, br)]
            if pi.ext[nm] > br:
                e(depth, f"for {pre}_r0 in range(0, {pi.ext[nm]}, {br}):")
                depth += 1
                e(depth, f"{idx[nm]} = {pre}_r0 + tl.arange(0, {br})[None, :]")
            else:
                e(depth, f"{idx[nm]} = tl.arange(0, {br})[None, :]")
            e(depth, f"{pre}_rm = {idx[nm]} < {pi.ext[nm]}")
            vmask[nm] = f"{pre}_rm"
        else:
            e(depth, f"for {idx[nm]} in range({pi.ext[nm]}):")
            depth += 1

    # the unrolled Clebsch-Gordan contraction
    cg_sources = [s for s in ("x1", "x2", "g") if s != target]
    order = sorted(cg_sources, key=lambda s: (not is_vec(s), _ROLE[s]))  # tiled operands outermost
    names = [f"{pre}_{s}" for s in order]
    wmul = f"{pre}_w * " if pi.weighted and target != "w" else ""
    by_comp: dict[int, list] = {}
    for ijk in pi.nnz:
        t = 0 if target == "w" else ijk[_ROLE[target]]
        by_comp.setdefault(t, []).append((tuple(ijk[_ROLE[s]] for s in order), ijk[3]))
    for t in comps:
        e(depth, f"{acc[t]} += {wmul}({_sum_expr(by_comp[t], names)})")


# Unrolled CG products per kernel before an operation is split across kernels (by target blocks, then by
# paths).  Chosen on compile time and static registers, sm_90, offline (no GPU timing yet): at 1200 the
# uvu-L6 kernels took 264 s of compiler time for the forward alone and the nequip-toluene x2 gradient
# spilled 96 bytes; at 200 all four uvu-L6 operations compile in 188 s (3 s at most per kernel, 44-45
# kernels per operation) and no suite kernel spills.  The cost: launches, and for a block split by paths
# one more read and write of it per piece (uvu-L6 forward+backward: +36% of its memory floor; the other
# suite problems: under 0.1%).  EQDSL_TRITON_MAX_TERMS overrides it (for measuring the trade-off).
MAX_TERMS_PER_KERNEL = 200


def positive_int_env(name: str, default: int) -> int:
    """The positive integer in environment variable `name`, or `default` when it is unset or empty."""
    env = os.environ.get(name)
    if not env:
        return default
    try:
        value = int(env)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {env!r}")
    return value


def max_terms() -> int:
    return positive_int_env("EQDSL_TRITON_MAX_TERMS", MAX_TERMS_PER_KERNEL)


def generate(key: KernelKey) -> str:
    """The Triton source (a Python module) for one kernel key.

    ``key.fused``: instead of the per-row family, the same operations for a message-passing
    convolution, ``tp_conv_{g,x1,x2,w}`` (and ``_weighted``): rows are edges; the x1 slot lives on
    the nodes ``SRC`` names and the g slot (the output) on the nodes ``DST`` names.  An operation
    reads x1 row e from ``X1[SRC[e]]`` and g row e from ``G[DST[e]]`` (gathered in the kernel).  When
    its target is x1 or g, a program owns one piece of the edges sorted by that node (``PERM``,
    ``PIECES``: ``segments.py``), loops over them BLOCK_B at a time, and stores their sum once into the
    piece's row of T; ``tp_conv_fixup_{g,x1}`` sums the partial rows of nodes split into several
    pieces.  No atomics: the sums are deterministic.  x2 and w stay per edge.  So the forward
    never materializes the per-edge messages, and the gradients (and their derivatives, which are
    operations of the same family) never materialize gathered node features or per-edge gradients
    of them.  The unrolled CG code is the per-row family's; only row addresses and stores differ.
    """
    desc = key.desc
    woffs = [s.start if s is not None else None for s in desc.weight_slices()]
    infos = [_PathInfo(n, desc, p, woffs[n]) for n, p in enumerate(desc.paths)]
    infos = [pi for pi in infos if not pi.empty]
    weighted = key.weights != "none"
    out = _Emitter()
    out(0, '"""Generated by eqdsl.backends.triton.codegen -- do not edit.')
    out(0)
    for line in key.canonical().splitlines():
        out(0, line)
    out(0, '"""')
    out(0, "import triton")
    out(0, "import triton.language as tl")
    irreps = {"x1": desc.irreps_in1, "x2": desc.irreps_in2, "g": desc.irreps_out}
    # Kernels for the weighted paths only: when some paths carry no weights, T is affine (not linear)
    # in W, and the derivatives of the weight gradient by x1 / x2 / g see only the weighted paths.
    partial = weighted and any(not pi.weighted for pi in infos)
    variants = [(t, "") for t in TARGETS if t != "w" or weighted]
    if partial:
        variants += [(t, "_weighted") for t in ("g", "x1", "x2")]
    kernels: dict[str, list[tuple[str, int]]] = {}
    for target, suffix in variants:
        args = [s.upper() if s != "g" else "G" for s in kernel_slots(target, weighted)]
        if key.fused:
            args += ["SRC", "DST"] + (["PERM", "PIECES"] if segment_target(key, target) else [])
        chosen = [pi for pi in infos if pi.weighted or not suffix]
        if target == "w":
            blocks = [(f"w{pi.n}", pi.wnumel, 1, pi.woff, desc.weight_numel, [pi],
                       f"weights of path {pi.n} ({pi.mode}, shape {pi.p.weight_shape})")
                      for pi in chosen if pi.weighted and pi.wnumel > 0]
        else:
            slices = irreps[target].slices()
            blocks = []
            for bi, blk in enumerate(irreps[target]):
                if blk.dim == 0:
                    continue
                paths = [pi for pi in chosen if pi.blocks[target] == bi]
                blocks.append((f"b{bi}", blk.mul, blk.ir.dim, slices[bi].start, irreps[target].dim, paths,
                               f"{target} block {bi}: {blk} ({len(paths)} paths)"))
        name = f"tp_{'conv' if key.fused else 'target'}_{target}{suffix}"
        kernels[name] = []
        for gi, group in enumerate(_split(blocks, max_terms())):
            fname = f"{name}__{gi}"
            nb = max(len(group), 1)
            kernels[name].append((fname, nb))
            shared_w_target = target == "w" and key.weights == "shared"
            segmented = segment_target(key, target)
            gathered = [s for s in CONV_ROWS if s in kernel_slots(target, weighted)]
            kernel_header(out, fname, ", ".join(args) + ", T", nb, "pieces" if segmented else "target blocks",
                          not (shared_w_target or segmented), gathered if key.fused else [],
                          "Only the weighted paths (the derivatives of tp_target_w)." if suffix else None)
            if segmented:
                emit_piece(out)
            if shared_w_target:
                out(1, f"# rb: a group of {SHARED_W_ROW_BLOCKS} row blocks (those below N), looped over in each block")
            for k, (blk, accumulate) in enumerate(group):
                if nb > 1:
                    out(1, f"if blk == {k}:")
                _emit_block(out, key, target, *blk, d0=2 if nb > 1 else 1, accumulate=accumulate)
            out(1, "return")
    if key.fused:  # split nodes: their partial rows summed (segments.py)
        for slot in CONV_ROWS:
            if irreps[slot].dim:
                emit_fixup(out, f"tp_conv_fixup_{slot}", irreps[slot].dim, key.dtype)
                kernels[f"tp_conv_fixup_{slot}"] = [(f"tp_conv_fixup_{slot}", 1)]
    backward_columns = None
    if backward_codegen.applies(key, infos):
        backward_columns = backward_codegen.emit(out, key, infos, kernels, max_terms())
    if not partial:
        family = "conv" if key.fused else "target"
        for t in ("g", "x1", "x2"):  # every path is weighted (or none is): the same kernels
            kernels[f"tp_{family}_{t}_weighted"] = kernels[f"tp_{family}_{t}"]
    out(0)
    out(0)
    out(0, "# for the launcher: each operation is one or more kernels, (name, programs per row block)")
    out(0, "KERNELS = {")
    for name, ks in kernels.items():
        out(1, f"{name!r}: {ks!r},")
    out(0, "}")
    out(0, f"SHARED_W_ROW_BLOCKS = {SHARED_W_ROW_BLOCKS}  # row blocks per program of a shared-weight gradient")
    if backward_columns is not None:
        out(0, "# the fused backward's dx2 partials: the x2 column each column of P adds to (backward_codegen)")
        out(0, f"BACKWARD_COLUMNS = {backward_columns!r}")
    return "\n".join(out.lines) + "\n"
