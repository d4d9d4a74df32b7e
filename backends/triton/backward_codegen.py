"""The fused backward: dx1, dx2 and dW of a channelwise product in one pass over x1, x2, g and the weights.

The per-slot operations (``codegen``) write one gradient each, so a backward launches three of them and
each re-reads its three operands: the output gradient g, the largest tensor of a NequIP or MACE
convolution, is read three times.  For descriptors whose paths are all ``uvu`` or ``uvw``, weighted per
row, with x2 of multiplicity one (spherical harmonics: every NequIP and MACE convolution, DiffDock's
fully connected products), this family,
``tp_target_backward`` (and ``tp_conv_backward`` for the fused convolution), does it in one pass.  One
program per (row block, x1 block): it loads x2 once, then per channel tile of the x1 block its x1
components once, and for every path of the block its slice of g and its weights once, and from those

* stores the path's weight gradient (each weight belongs to one path, hence to one program; a ``uvw``
  path loops over its output channels w, g's channel, with W[u, w] tiled over u);
* adds into the tile's dx1 accumulators, stored once after the block's last path (a block split by
  paths across kernels adds to what the earlier kernel stored; in the convolution dx1 lives on the
  source nodes and is added atomically, like every x1 target of the fused family);
* adds into lane-wise partial sums of each x2 column it reaches (dx2 sums over channels and blocks).

dx2 needs a reduction across programs.  Each program stores its reduced sums, one per x2 column it
reaches, into its own columns of a compact partial ``P`` ([rows, len(BACKWARD_COLUMNS)]), and one more
kernel, ``..._backward_dx2``, sums each x2 column's partials in a fixed order (deterministic: no atomics,
and no matrix product that TF32 could round).  Only reached columns are stored, so P is small beside g
(NequIP: 54 columns against g's 6528).
Second derivatives keep the per-slot operations: their autograd graph is built from those.
"""
from __future__ import annotations

from .emit import (CONV_ROWS, _Emitter, _lin, _next_pow2, _PathInfo, _split, _sum_expr, channel_tiles,
                   kernel_header)

COST_FACTOR = 3  # every nonzero Clebsch-Gordan entry is used three times (dW, dx1, dx2)


def applies(key, infos: list[_PathInfo]) -> bool:
    """Whether the descriptor gets the fused backward: every path uvu or uvw and weighted per row, x2 of
    multiplicity one."""
    return (key.weights == "row" and bool(infos)
            and all(pi.mode in ("uvu", "uvw") and pi.weighted and pi.m2 == 1 for pi in infos))


def emit(out: _Emitter, key, infos: list[_PathInfo], kernels: dict, limit: int) -> list[int]:
    """Emit ``tp_{target|conv}_backward__k`` into `out` (kernels of at most `limit` / COST_FACTOR products),
    list them in `kernels`; returns BACKWARD_COLUMNS."""
    desc = key.desc
    irreps1 = desc.irreps_in1
    slices = irreps1.slices()
    blocks = []
    for bi, blk in enumerate(irreps1):
        if blk.dim == 0:
            continue
        paths = [pi for pi in infos if pi.blocks["x1"] == bi]
        if key.fused and not paths:
            continue  # node rows are zero-initialised and added to
        blocks.append((f"b{bi}", blk.mul, blk.ir.dim, slices[bi].start, irreps1.dim, paths,
                       f"x1 block {bi}: {blk} ({len(paths)} paths)"))
    name = f"tp_{'conv' if key.fused else 'target'}_backward"
    kernels[name] = []
    columns: list[int] = []
    params = "X1, X2, G, W, " + ("SRC, DST, " if key.fused else "") + "DX1, P, DW"
    groups = _split(blocks, max(1, limit // COST_FACTOR))
    pstride = sum(len(_reached(blk[5])) for group in groups for blk, _ in group)
    for gi, group in enumerate(groups):
        fname = f"{name}__{gi}"
        nb = max(len(group), 1)
        kernels[name].append((fname, nb))
        kernel_header(out, fname, params, nb, "x1 blocks", gathered=("x1", "g") if key.fused else ())
        for k, (blk, accumulate) in enumerate(group):
            if nb > 1:
                out(1, f"if blk == {k}:")
            _emit_block(out, key, *blk, d0=2 if nb > 1 else 1, accumulate=accumulate, columns=columns,
                        pstride=pstride)
        out(1, "return")
    _emit_dx2_sum(out, key, name, columns, pstride)
    kernels[f"{name}_dx2"] = [(f"{name}_dx2", 1)]
    return columns


def _emit_dx2_sum(out: _Emitter, key, name: str, columns: list[int], pstride: int) -> None:
    """``<name>_dx2``: dx2 from the partials, each x2 column the sum of its columns of P in a fixed order
    (deterministic; zero where no path reaches)."""
    d2 = key.desc.irreps_in2.dim
    kernel_header(out, f"{name}_dx2", "P, DX2", 1, "x2 gradient")
    for col in range(d2):
        parts = [t for t, c in enumerate(columns) if c == col]
        for t in parts:
            out(1, f"p_{t} = tl.load(P + rows * {pstride} + {t}, mask=rmask, other=0.0)")
        total = " + ".join(f"p_{t}" for t in parts) if parts else f"tl.zeros([BLOCK_B, 1], dtype=tl.{key.dtype})"
        out(1, f"tl.store(DX2 + rows * {d2} + {col}, {total}, mask=rmask)")
    out(1, "return")


def _reached(paths: list) -> list[int]:
    """The x2 columns a block's paths read (and whose dx2 they add to)."""
    return sorted({pi.offs["x2"] + j for pi in paths for (_, j, _, _) in pi.nnz})


def _emit_block(e: _Emitter, key, bname: str, mul: int, dim: int, off: int, stride: int, paths: list,
                title: str, d0: int, accumulate: bool, columns: list[int], pstride: int) -> None:
    desc = key.desc
    d2, do, wn = desc.irreps_in2.dim, desc.irreps_out.dim, desc.weight_numel
    r1 = CONV_ROWS["x1"] if key.fused else "rows"
    rg = CONV_ROWS["g"] if key.fused else "rows"
    dt = f"tl.{key.dtype}"
    bc = min(_next_pow2(mul), key.block_c)
    e(d0, f"# ---- {title}" + (", added to the dx1 an earlier kernel stored" if accumulate else ""))
    # x2 (one channel): every column the block's paths read, once per program, [BLOCK_B, 1]
    reached = _reached(paths)
    for col in reached:
        e(d0, f"x2_{col} = tl.load(X2 + rows * {d2} + {col}, mask=rmask, other=0.0)")
        e(d0, f"dx2_{col} = tl.zeros([BLOCK_B, {bc}], dtype={dt})")
    d = channel_tiles(e, "c", mul, bc, d0)
    e(d, f"cm = rmask & (c < {mul})")
    used1 = sorted({i for pi in paths for (i, _, _, _) in pi.nnz})
    for i in used1:
        e(d, f"x1_{i} = tl.load(X1 + {r1} * {stride} + ({_lin(off + i, 'c', dim)}), mask=cm, other=0.0)")
    for i in range(dim):
        e(d, f"dx1_{i} = tl.zeros([BLOCK_B, {bc}], dtype={dt})")
    for pi in paths:
        p, pre = pi.p, f"p{pi.n}"
        e(d, f"# path {pi.n}: {pi.mode} l=({pi.l[0]},{pi.l[1]})->{pi.l[2]} muls=({pi.m1},1,{pi.mo}) "
             f"pw={p.path_weight:.6g}")
        dd = d
        if pi.mode == "uvu":  # g channel u: a tile like x1's; weights W[u]
            gch, gmask, wch = "c", "cm", "c"
        else:  # uvw: g channel w, looped over ([BLOCK_B, 1] loads); weights W[u, w]
            e(d, f"for {pre}_iw in range({pi.mo}):")
            dd = d + 1
            gch, gmask, wch = f"{pre}_iw", "rmask", f"c * {pi.mo} + {pre}_iw"
        for k in sorted({k for (_, _, k, _) in pi.nnz}):
            e(dd, f"{pre}_g_{k} = tl.load(G + {rg} * {do} + ({_lin(pi.offs['g'] + k, gch, pi.dims['g'])}), "
                  f"mask={gmask}, other=0.0)")
        e(dd, f"{pre}_w = tl.load(W + rows * {wn} + ({_lin(pi.woff, wch)}), mask=cm, other=0.0)")
        j0 = pi.offs["x2"]
        dw = _sum_expr([((i, k, j0 + j), c) for (i, j, k, c) in pi.nnz], ["x1", f"{pre}_g", "x2"])
        e(dd, f"tl.store(DW + rows * {wn} + ({_lin(pi.woff, wch)}), {dw}, mask=cm)")
        for i in sorted({i for (i, _, _, _) in pi.nnz}):
            terms = [((k, j0 + j), c) for (ii, j, k, c) in pi.nnz if ii == i]
            e(dd, f"dx1_{i} += {pre}_w * ({_sum_expr(terms, [f'{pre}_g', 'x2'])})")
        for j in sorted({j for (_, j, _, _) in pi.nnz}):
            terms = [((i, k), c) for (i, jj, k, c) in pi.nnz if jj == j]
            e(dd, f"dx2_{j0 + j} += {pre}_w * ({_sum_expr(terms, ['x1', f'{pre}_g'])})")
    for i in range(dim):
        ptr = f"DX1 + {r1} * {stride} + ({_lin(off + i, 'c', dim)})"
        if key.fused:  # source nodes: every edge of the node adds
            e(d, f"tl.atomic_add({ptr}, dx1_{i}, mask=cm, sem=\"relaxed\")")
        else:
            if accumulate:
                e(d, f"dx1_{i} += tl.load({ptr}, mask=cm, other=0.0)")
            e(d, f"tl.store({ptr}, dx1_{i}, mask=cm)")
    for col in reached:
        e(d0, f"tl.store(P + rows * {pstride} + {len(columns)}, tl.sum(dx2_{col}, axis=1, keep_dims=True), mask=rmask)")
        columns.append(col)

