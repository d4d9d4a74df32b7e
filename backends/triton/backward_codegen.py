"""The fused backward: dx1, dx2 and dW of a channelwise product in one pass over x1, x2, g and the weights.

The per-slot operations (``codegen``) write one gradient each, so a backward launches three of them and
each re-reads its three operands: the output gradient g, the largest tensor of a NequIP or MACE
convolution, is read three times.  For descriptors whose paths are all ``uvu`` or ``uvw``, weighted (per
row; or shared, outside the convolution), with x2 of multiplicity one (spherical harmonics: every NequIP and
MACE convolution, DiffDock's fully connected products), this family,
``tp_target_backward`` (and ``tp_conv_backward`` for the fused convolution), does it in one pass.  One
program per (row block, x1 block): it loads x2 once, then per channel tile of the x1 block its x1
components once, and for every path of the block its slice of g and its weights once, and from those

* stores the path's weight gradient (each weight belongs to one path, hence to one program; a ``uvw``
  path loops over its output channels w, g's channel, with W[u, w] tiled over u); with shared weights a
  program loops over ``SHARED_W_ROW_BLOCKS`` row blocks and adds each one's sum over its rows into the
  program's own row of a zeroed partial (summed by the caller: deterministic, no atomics);
* adds into the tile's dx1 accumulators, stored once after the block's last path (a block split by
  paths across kernels adds to what the earlier kernel stored);
* adds into lane-wise partial sums of each x2 column it reaches (dx2 sums over channels and blocks).

In the convolution dx1 lives on the source nodes: one program per (piece of one source node's edges,
sorted once per graph: ``segments.py``; x1 block) loops over the piece's edges inside each channel tile,
sums dx1 in registers and stores it once into the piece's row, as every node target of the fused family
does (no atomics); each tile stores its own dx2 partials there (columns per x2 column and tile).

dx2 needs a reduction across programs.  Each program stores its reduced sums, one per x2 column it
reaches, into its own columns of a compact partial ``P`` ([rows, len(BACKWARD_COLUMNS)]), and one more
kernel, ``..._backward_dx2``, sums each x2 column's partials in a fixed order (deterministic: no atomics,
and no matrix product that TF32 could round).  Only reached columns are stored, so P is small beside g
(NequIP: 54 columns against g's 6528).
Second derivatives keep the per-slot operations: their autograd graph is built from those.
"""
from __future__ import annotations

from .emit import (CONV_ROWS, SHARED_W_ROW_BLOCKS, _Emitter, _lin, _next_pow2, _PathInfo, _split, _sum_expr,
                   channel_tiles, emit_piece, emit_piece_loop, emit_row_group_loop, kernel_header)

COST_FACTOR = 3  # every nonzero Clebsch-Gordan entry is used three times (dW, dx1, dx2)


def applies(key, infos: list[_PathInfo]) -> bool:
    """Whether the descriptor gets the fused backward: every path uvu or uvw and weighted (per row, or shared
    outside the convolution: there its per-edge dx2 partials would outweigh what it saves, 2.86x the floor
    against 1.92x modelled on fc-shared-L2), x2 of multiplicity one."""
    return ((key.weights == "row" or (key.weights == "shared" and not key.fused)) and bool(infos)
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
        blocks.append((f"b{bi}", blk.mul, blk.ir.dim, slices[bi].start, irreps1.dim, paths,
                       f"x1 block {bi}: {blk} ({len(paths)} paths)"))
    name = f"tp_{'conv' if key.fused else 'target'}_backward"
    kernels[name] = []
    columns: list[int] = []
    params = "X1, X2, G, W, " + ("SRC, DST, PERM, PIECES, " if key.fused else "") + "DX1, P, DW"
    groups = _split(blocks, max(1, limit // COST_FACTOR))
    pstride = sum(len(_reached(blk[5])) * _tiles(key, blk[1]) for group in groups for blk, _ in group)
    emit_block = _emit_piece_block if key.fused else _emit_block  # convolution: pieces of the source nodes' edges
    shared = key.weights == "shared"
    for gi, group in enumerate(groups):
        fname = f"{name}__{gi}"
        nb = max(len(group), 1)
        kernels[name].append((fname, nb))
        kernel_header(out, fname, params, nb, "x1 blocks", rows=not (key.fused or shared))
        d = 1
        if key.fused:
            emit_piece(out)
        if shared:  # dW summed over SHARED_W_ROW_BLOCKS row blocks into this program's partial row
            out(1, f"# rb: a group of {SHARED_W_ROW_BLOCKS} row blocks (those below N), looped over; DW[rb] its "
                   "weight gradient's partial sum (zeroed by the caller)")
            d = emit_row_group_loop(out, 1)
        for k, (blk, accumulate) in enumerate(group):
            if nb > 1:
                out(d, f"if blk == {k}:")
            emit_block(out, key, *blk, d0=d + 1 if nb > 1 else d, accumulate=accumulate, columns=columns,
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


def _tiles(key, mul: int) -> int:
    """Channel tiles of an x1 block: in the convolution each tile writes its own dx2 partials (the tile loop is
    outside the loop over a piece's edges)."""
    return -(-mul // min(_next_pow2(mul), key.block_c)) if key.fused else 1


def _emit_block(e: _Emitter, key, bname: str, mul: int, dim: int, off: int, stride: int, paths: list,
                title: str, d0: int, accumulate: bool, columns: list[int], pstride: int) -> None:
    """One x1 block, per row: x2 once, then per channel tile x1 once, the paths, dx1 stored; dx2's partials
    summed over the tiles, stored once."""
    dt = f"tl.{key.dtype}"
    bc = min(_next_pow2(mul), key.block_c)
    e(d0, f"# ---- {title}" + (", added to the dx1 an earlier kernel stored" if accumulate else ""))
    reached = _reached(paths)
    _emit_x2(e, key, reached, bc, d0)
    d = channel_tiles(e, "c", mul, bc, d0)
    e(d, f"cmc = c < {mul}")
    e(d, "cm = rmask & cmc")
    for i in range(dim):
        e(d, f"dx1_{i} = tl.zeros([BLOCK_B, {bc}], dtype={dt})")
    _emit_paths(e, key, paths, off, dim, stride, "rows", "rows", d)
    for i in range(dim):
        ptr = f"DX1 + rows * {stride} + ({_lin(off + i, 'c', dim)})"
        if accumulate:
            e(d, f"dx1_{i} += tl.load({ptr}, mask=cm, other=0.0)")
        e(d, f"tl.store({ptr}, dx1_{i}, mask=cm)")
    for col in reached:
        e(d0, f"tl.store(P + rows * {pstride} + {len(columns)}, tl.sum(dx2_{col}, axis=1, keep_dims=True), mask=rmask)")
        columns.append(col)


def _emit_piece_block(e: _Emitter, key, bname: str, mul: int, dim: int, off: int, stride: int, paths: list,
                      title: str, d0: int, accumulate: bool, columns: list[int], pstride: int) -> None:
    """One x1 block in the convolution, for one piece (the edges of one source node): per channel tile, the
    loop over the piece's edges sums dx1 in registers (stored once, into the piece's row) while each edge's
    dW and its dx2 partials of the tile are stored."""
    dt = f"tl.{key.dtype}"
    bc = min(_next_pow2(mul), key.block_c)
    e(d0, f"# ---- {title}" + (", added to the dx1 an earlier kernel stored" if accumulate else ""))
    reached = _reached(paths)
    ntiles = _tiles(key, mul)
    d = channel_tiles(e, "c", mul, bc, d0)
    e(d, f"cmc = c < {mul}")
    for i in range(dim):
        e(d, f"dx1_{i} = tl.zeros([BLOCK_B, {bc}], dtype={dt})")
    dl = emit_piece_loop(e, CONV_ROWS, d)
    e(dl, "cm = rmask & cmc")
    _emit_x2(e, key, reached, bc, dl)
    _emit_paths(e, key, paths, off, dim, stride, CONV_ROWS["x1"], CONV_ROWS["g"], dl)
    tile = "" if ntiles == 1 else f" + c0_c // {bc}"
    for n, col in enumerate(reached):
        e(dl, f"tl.store(P + rows * {pstride} + {len(columns) + n * ntiles}{tile}, "
              f"tl.sum(dx2_{col}, axis=1, keep_dims=True), mask=rmask)")
    for col in reached:
        columns.extend([col] * ntiles)
    for i in range(dim):
        ptr = f"DX1 + orow * {stride} + ({_lin(off + i, 'c', dim)})"
        e(d, f"dx1_{i} = tl.sum(dx1_{i}, axis=0, keep_dims=True)")
        if accumulate:
            e(d, f"dx1_{i} += tl.load({ptr}, mask=cmc, other=0.0)")
        e(d, f"tl.store({ptr}, dx1_{i}, mask=cmc)")


def _emit_x2(e: _Emitter, key, reached: list[int], bc: int, d: int) -> None:
    """x2 (one channel): every column the block's paths read, [BLOCK_B, 1], and its dx2 lane sums."""
    d2 = key.desc.irreps_in2.dim
    for col in reached:
        e(d, f"x2_{col} = tl.load(X2 + rows * {d2} + {col}, mask=rmask, other=0.0)")
        e(d, f"dx2_{col} = tl.zeros([BLOCK_B, {bc}], dtype=tl.{key.dtype})")


def _emit_paths(e: _Emitter, key, paths: list, off: int, dim: int, stride: int, r1: str, rg: str, d: int) -> None:
    """The block's x1 components of the channel tile (rows `r1`), then per path its g slice (rows `rg`) and
    weights: dW stored, dx1 and dx2 added to."""
    desc = key.desc
    do, wn = desc.irreps_out.dim, desc.weight_numel
    used1 = sorted({i for pi in paths for (i, _, _, _) in pi.nnz})
    for i in used1:
        e(d, f"x1_{i} = tl.load(X1 + {r1} * {stride} + ({_lin(off + i, 'c', dim)}), mask=cm, other=0.0)")
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
        j0 = pi.offs["x2"]
        dw = _sum_expr([((i, k, j0 + j), c) for (i, j, k, c) in pi.nnz], ["x1", f"{pre}_g", "x2"])
        if key.weights == "shared":  # one weight vector: dW summed over the rows into this program's partial
            e(dd, f"{pre}_w = tl.load(W + ({_lin(pi.woff, wch)}), mask=cmc, other=0.0)")
            ptr = f"DW + rb * {wn} + ({_lin(pi.woff, wch)})"
            e(dd, f"tl.store({ptr}, tl.load({ptr}, mask=cmc, other=0.0) + tl.sum({dw}, axis=0, keep_dims=True), "
                  "mask=cmc)")
        else:
            e(dd, f"{pre}_w = tl.load(W + rows * {wn} + ({_lin(pi.woff, wch)}), mask=cm, other=0.0)")
            e(dd, f"tl.store(DW + rows * {wn} + ({_lin(pi.woff, wch)}), {dw}, mask=cm)")
        for i in sorted({i for (i, _, _, _) in pi.nnz}):
            terms = [((k, j0 + j), c) for (ii, j, k, c) in pi.nnz if ii == i]
            e(dd, f"dx1_{i} += {pre}_w * ({_sum_expr(terms, [f'{pre}_g', 'x2'])})")
        for j in sorted({j for (_, j, _, _) in pi.nnz}):
            terms = [((i, k), c) for (i, jj, k, c) in pi.nnz if jj == j]
            e(dd, f"dx2_{j0 + j} += {pre}_w * ({_sum_expr(terms, ['x1', f'{pre}_g'])})")
