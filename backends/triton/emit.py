"""What every Triton source generator writes with: an indenting line emitter, exact float literals, the
index algebra of one tensor-product path, factored Clebsch-Gordan sums, the kernel prologue, and the
split of an operation's blocks into kernels of bounded size (``codegen`` for the per-slot operations,
``backward_codegen`` for the fused backward, ``contraction_codegen`` for the symmetric contraction).
"""
from __future__ import annotations

from typing import Optional

from eqdsl.reps.so3 import wigner_3j
from eqdsl.reps.tp import TensorProductDescriptor

CG_EPS = 1e-12  # |C| below this is a structural zero (the real-basis 3j come out exact to ~1e-16)


# Row blocks one program of a shared-weight gradient covers (the "w" operation and the fused backward): one
# partial sum per group instead of per row block (fc-shared-L2 at 50,000 rows: 98 partials of 11264 weights,
# 4.4 MB written and read back, instead of 3125, 141 MB), while a large batch still has programs enough for
# every SM.
SHARED_W_ROW_BLOCKS = 32

# The fused convolution family: the slots whose rows are nodes, the row variable the kernels use for them,
# and the index tensor that maps an edge to that node.
CONV_ROWS = {"x1": "srows", "g": "drows"}
CONV_INDEX = {"x1": "SRC", "g": "DST"}


def _fmt(x: float) -> str:
    """A float literal that round-trips exactly (so float64 kernels lose nothing)."""
    r = repr(float(x))
    return r if "e" in r or "." in r or "inf" in r or "nan" in r else r + ".0"


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


class _PathInfo:
    """Static facts about one path: extents, channel expressions of each slot, nonzero CG entries."""

    def __init__(self, n: int, desc: TensorProductDescriptor, p, woff: Optional[int]):
        a, b, c = desc.irreps_in1[p.i_in1], desc.irreps_in2[p.i_in2], desc.irreps_out[p.i_out]
        self.n, self.p, self.mode = n, p, p.mode
        self.m1, self.m2, self.mo = a.mul, b.mul, c.mul
        self.l = (a.ir.l, b.ir.l, c.ir.l)
        self.dims = {"x1": a.ir.dim, "x2": b.ir.dim, "g": c.ir.dim}
        self.offs = {"x1": desc.irreps_in1.slices()[p.i_in1].start,
                     "x2": desc.irreps_in2.slices()[p.i_in2].start,
                     "g": desc.irreps_out.slices()[p.i_out].start}
        self.blocks = {"x1": p.i_in1, "x2": p.i_in2, "g": p.i_out}
        self.weighted = p.has_weight
        self.woff = woff
        self.wnumel = p.weight_numel
        # extents of the path's channel indices
        self.ext = {"u": self.m1, "v": self.m2}
        if self.mode == "uvw":
            self.ext["w"] = self.mo
        # which channel indices each slot's channel depends on (row-major flattening order)
        self.chan = {"x1": ("u",), "x2": ("v",),
                     "g": {"uvu": ("u",), "uvw": ("w",), "uvuv": ("u", "v")}[self.mode],
                     "w": ("u", "v", "w") if self.mode == "uvw" else ("u", "v")}
        cg = wigner_3j(*self.l)
        self.nnz = [(i, j, k, float(p.path_weight * cg[i, j, k]))
                    for i in range(cg.shape[0]) for j in range(cg.shape[1]) for k in range(cg.shape[2])
                    if abs(cg[i, j, k]) > CG_EPS]

    @property
    def empty(self) -> bool:
        return self.m1 * self.m2 * self.mo == 0

    def flat(self, slot: str, idx: dict[str, str]) -> str:
        """Channel expression of `slot` (row-major over its indices) given expressions for the indices."""
        terms, stride = [], 1
        for nm in reversed(self.chan[slot]):
            if idx[nm] != "0":
                terms.append(idx[nm] if stride == 1 else f"{idx[nm]} * {stride}")
            stride *= self.ext[nm]
        return " + ".join(reversed(terms)) or "0"


def _lin(const: int, expr: str, scale: int = 1) -> str:
    """const + expr * scale, tidy (expr is a sum of products of names and integers)."""
    if expr == "0":
        return str(const)
    if scale != 1:
        expr = f"({expr}) * {scale}" if "+" in expr else f"{expr} * {scale}"
    return expr if const == 0 else f"{const} + {expr}"


class _Emitter:
    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, depth: int, text: str = "") -> None:
        self.lines.append("    " * depth + text if text else "")


def _sum_expr(terms: list[tuple[tuple[int, ...], float]], names: list[str]) -> str:
    """sum_t coef_t * prod_s names[s]_{idx_t[s]}, factored on the outer operands first.

    ``terms``: (component per operand, coefficient).  The last operand is innermost:
    callers order operands so that the ones without a channel tile ([BLOCK_B, 1])
    come last, and their sums stay cheap.
    """
    if len(names) == 1:
        out = ""
        for idx, c in terms:
            x = f"{names[0]}_{idx[0]}"
            if abs(c) == 1.0:
                out += (" - " if c < 0 else (" + " if out else "")) + x
            else:
                out += (" + " if out else "") + f"{_fmt(c)} * {x}"
        return out
    groups: dict[int, list] = {}
    for idx, c in terms:
        groups.setdefault(idx[0], []).append((idx[1:], c))
    parts = []
    for a in sorted(groups):
        parts.append(f"{names[0]}_{a} * ({_sum_expr(groups[a], names[1:])})")
    return " + ".join(parts)


def channel_tiles(e: _Emitter, c: str, mul: int, bc: int, d0: int) -> int:
    """Open the channel tiles of a block of multiplicity `mul`: `c` ([1, bc] lanes, masked by the caller),
    a runtime loop when `mul` exceeds the tile `bc`; returns the depth of the tile's code."""
    if mul <= bc:
        e(d0, f"{c} = tl.arange(0, {bc})[None, :]")
        return d0
    e(d0, f"for c0_{c} in range(0, {mul}, {bc}):")
    e(d0 + 1, f"{c} = c0_{c} + tl.arange(0, {bc})[None, :]")
    return d0 + 1


def kernel_header(out: _Emitter, fname: str, params: str, nb: int, units: str, rows: bool = True,
                  gathered: tuple = (), doc: Optional[str] = None) -> None:
    """A kernel's signature and prologue: program -> (row block rb, unit blk), the rows and their mask
    (unless `rows` is False: the kernel loops over rows itself), and the node rows of the `gathered` slots
    (fused convolution: x1 through SRC, g through DST)."""
    out(0)
    out(0)
    # N only bounds the row mask: specializing on it (N % 16 == 0, N == 1) would compile each
    # kernel again whenever a batch's size changes class, and buys nothing
    out(0, '@triton.jit(do_not_specialize=["N"])')
    out(0, f"def {fname}({params}, N, BLOCK_B: tl.constexpr):")
    if doc:
        out(1, f'"""{doc}"""')
    out(1, f"# grid: one program per ({nb} {units}) x (row block of BLOCK_B rows), blocks fastest")
    out(1, "pid = tl.program_id(0)")
    out(1, f"rb = pid // {nb}" if nb > 1 else "rb = pid")
    if nb > 1:
        out(1, f"blk = pid % {nb}")
    if rows:
        out(1, "rows = (rb * BLOCK_B + tl.arange(0, BLOCK_B)[:, None]).to(tl.int64)")
        out(1, "rmask = rows < N")
        if gathered:
            out(1, "# rows are edges; x1 rows are the nodes SRC names, g rows the nodes DST names")
        for slot in gathered:
            out(1, f"{CONV_ROWS[slot]} = tl.load({CONV_INDEX[slot]} + rows, mask=rmask, other=0).to(tl.int64)")


def emit_row_group_loop(e: _Emitter, d0: int) -> int:
    """Open a shared-weight gradient's loop over its program's group of SHARED_W_ROW_BLOCKS row blocks (those
    below N), with their rows and mask; returns the depth of the loop's body."""
    e(d0, f"for rblk in range(rb * {SHARED_W_ROW_BLOCKS}, tl.minimum(rb * {SHARED_W_ROW_BLOCKS} + "
          f"{SHARED_W_ROW_BLOCKS}, tl.cdiv(N, BLOCK_B))):")
    e(d0 + 1, "rows = (rblk * BLOCK_B + tl.arange(0, BLOCK_B)[:, None]).to(tl.int64)")
    e(d0 + 1, "rmask = rows < N")
    return d0 + 1


def segment_target(key, target: str) -> bool:
    """Whether `target` is summed over pieces of sorted edges: a fused-convolution target on nodes."""
    return key.fused and target in CONV_ROWS


def emit_piece(out: _Emitter) -> None:
    """A piece kernel's prologue: its piece (``segments.py``), positions lo..hi of PERM and its output row."""
    out(1, "# rb: one piece, PERM[lo:hi]: edges of one node (sorted once per graph), summed into row orow of T")
    out(1, "lo = tl.load(PIECES + rb * 3)")
    out(1, "hi = tl.load(PIECES + rb * 3 + 1)")
    out(1, "orow = tl.load(PIECES + rb * 3 + 2)")


def emit_piece_loop(e: _Emitter, gathered, d0: int) -> int:
    """Open the loop over a piece's edges, BLOCK_B at a time (``rows``: edge ids), with the node rows of the
    `gathered` slots; returns the depth of the loop's body."""
    e(d0, "for e0 in range(lo, hi, BLOCK_B):")
    e(d0 + 1, "pos = e0 + tl.arange(0, BLOCK_B)[:, None]")
    e(d0 + 1, "rmask = pos < hi")
    e(d0 + 1, "rows = tl.load(PERM + pos, mask=rmask, other=0)")
    for slot in gathered:
        e(d0 + 1, f"{CONV_ROWS[slot]} = tl.load({CONV_INDEX[slot]} + rows, mask=rmask, other=0).to(tl.int64)")
    return d0 + 1


FIXUP_COLUMNS = 128  # columns one fixup program sums at a time


def emit_fixup(out: _Emitter, name: str, dim: int, dtype: str) -> None:
    """``name``: each split node's row of T, the sum of its partial rows in order (``segments.py``'s fixups;
    a padding slot sums nothing into the scratch row)."""
    out(0)
    out(0)
    out(0, '@triton.jit(do_not_specialize=["N"])')
    out(0, f"def {name}(T, FIXUPS, N, BLOCK_B: tl.constexpr):")
    out(1, f'"""T[node] = T[first] + ... + T[first + count - 1] for FIXUPS[pid] = (node, first, count); rows of {dim}."""')
    out(1, "pid = tl.program_id(0)")
    out(1, "node = tl.load(FIXUPS + pid * 3)")
    out(1, "first = tl.load(FIXUPS + pid * 3 + 1)")
    out(1, "count = tl.load(FIXUPS + pid * 3 + 2)")
    cols = min(FIXUP_COLUMNS, _next_pow2(dim))
    out(1, f"for c0 in range(0, {dim}, {cols}):")
    out(2, f"cols = c0 + tl.arange(0, {cols})")
    out(2, f"cm = cols < {dim}")
    out(2, f"acc = tl.zeros([{cols}], dtype=tl.{dtype})")
    out(2, "for i in range(count):")
    out(3, f"acc += tl.load(T + (first + i) * {dim} + cols, mask=cm, other=0.0)")
    out(2, f"tl.store(T + node * {dim} + cols, acc, mask=cm)")


def _cost(paths) -> int:
    return sum(len(pi.nnz) + 4 for pi in paths)


def _split(blocks: list, limit: int) -> list[list]:
    """Kernels for one operation: greedy groups of at most `limit` CG products each (``codegen.max_terms``), as
    lists of ``(block, accumulate)``.

    Triton's GPU pass pipeline is superlinear in the size of one function: the uvu-L6 forward
    (6460 products in one kernel) did not compile in 15 minutes, while its blocks compiled
    alone take seconds each (and split at 300 products instead of 1200, its forward compiled in
    62 s of compiler time instead of 264 s, sm_90, offline; see MAX_TERMS_PER_KERNEL).  A block whose paths alone exceed the
    limit is split by paths into pieces: the first piece stores its sum, each later piece
    (``accumulate``) adds its own to what the earlier kernels stored.  Pieces of one block go to
    different kernels, launched in order on one stream, so no two programs touch one element at
    once.  A single path is never split.
    """
    pieces = []
    for blk in blocks:
        chunks = [[]]
        for pi in blk[5]:
            if chunks[-1] and _cost(chunks[-1] + [pi]) > limit:
                chunks.append([])
            chunks[-1].append(pi)
        pieces += [(blk[:5] + (chunk,) + blk[6:], i > 0) for i, chunk in enumerate(chunks)]
    groups, cur, cost = [], [], 0
    for piece in pieces:
        c = _cost(piece[0][5])
        same_block = any(p[0][0] == piece[0][0] for p in cur)
        if cur and (cost + c > limit or same_block):
            groups.append(cur)
            cur, cost = [], 0
        cur.append(piece)
        cost += c
    if cur or not groups:
        groups.append(cur)
    return groups
