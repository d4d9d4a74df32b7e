# Lorentz-equivariant jet tagger over particle four-momenta (LorentzNet-style, Gong et al. 2022).
#
# Each jet is a graph of its particles (edges: all pairs within a jet). Messages are built from
# Minkowski invariants only, and the four-vectors are updated by invariant-weighted sums of
# neighbours' four-vectors, so the logits are invariant under boosts and rotations.
group Lorentz                         # SO+(1,3); inner(...) contracts with diag(1, -1, -1, -1)

const Width = 32

block lgeb(h, x, scale) {
    xi = x[dst]
    xj = x[src]
    m2 = inner(xi - xj, xi - xj)                       # squared Minkowski distance
    dot = inner(xi, xj)                                # Minkowski product
    e = mlp(concat(h[dst], h[src], m2, dot), Width, act = silu) -> Width
    w = mlp(e, Width, act = silu) -> 1                 # invariant weight of the neighbour's momentum
    x = x + scale * scatter_mean(w * xj, dst)
    h = h + mlp(concat(h, scatter_sum(e, dst)), Width, act = silu) -> Width
    return concat(h, x)
}

model JetTagger(layers = 3, scale = 0.005) {
    input p : V @node                                  # four-momentum (E, px, py, pz) per particle
    input attrs : 2 @node                              # invariant particle attributes (charge, id score)
    input edges : graph

    h = mlp(concat(attrs, inner(p, p)), Width, act = silu) -> Width
    x = p
    repeat layers {
        hx = lgeb(h, x, scale)
        h = linear(hx) -> Width
        x = linear(hx) -> V
    }
    output logits : 2 @graph = mlp(mean_nodes(h), Width, act = silu) -> 2
    output momenta : V @node = x                        # updated four-vectors: equivariant, not invariant
}
