# EGNN-style model (Satorras et al.): invariant messages from scalars and squared distances,
# coordinates updated along edge vectors weighted by invariant scalars. E(3)-equivariant.
group O3

rep Scalars = 32x0e

model EGNN(layers = 4) {
    input  h0    : 16x0e @node                # node attributes (species, charges...)
    input  pos   : position @node
    input  edges : graph

    h = linear(h0) -> Scalars
    x = pos
    repeat layers {
        r  = x[dst] - x[src]                  # a vector from two points
        d2 = dot(r, r)                        # invariant
        m  = mlp(concat(h[src], h[dst], d2), 64, act = silu) -> 64x0e
        w  = mlp(m, 32, act = silu) -> 1x0e
        x  = x + scatter_mean(r * w, dst)     # point + vector is a point
        h  = h + mlp(concat(h, scatter_sum(m, dst)), 64, act = silu) -> Scalars
    }
    output features : Scalars @node = h
    output coords   : position    = x
}
