# NequIP-style interatomic potential: E(3)-equivariant message passing on a radius graph.
# Energies are invariant (0e), forces are their negative gradient with respect to positions (1o).
group O3

const L = 2
rep Species = 4x0e                                   # one-hot chemical species
rep Hidden  = 32x0e + 32x1o + 32x2e
rep GateIn  = 32x0e + 64x0e + 32x1o + 32x2e          # scalars, one gate per gated irrep, gated irreps

# One interaction: convolve neighbour features with the edge harmonics, weights from the distance.
block interaction(h, Y, d, cutoff, avg_neighbors) {
    R = mlp(bessel(d, n = 8, cutoff = cutoff) * envelope(d, cutoff = cutoff), 64, 64, act = silu)
    m = tensor_product(h[src], Y, weights = R, mode = uvu, filter = Hidden)
    a = scatter_sum(m, dst) / avg_neighbors
    return gate(linear(a) -> GateIn, act = silu) -> Hidden
}

model NequIP(cutoff = 5.0, layers = 3, avg_neighbors = 12.0) {
    input  species : Species   @node
    input  pos     : position  @node             # a point: only differences are vectors
    input  edges   : graph                       # src/dst index pairs from the caller
    input  shift   : 1x1o      @edge             # periodic image of each dst, S @ cell (zeros for molecules)

    r = pos[dst] - pos[src] + shift              # 1x1o, translation invariant by construction
    d = norm(r)
    Y = spherical_harmonics(r, lmax = L)         # 0e + 1o + 2e

    h = linear(species) -> 32x0e
    h = interaction(h, Y, d, cutoff, avg_neighbors)
    repeat layers - 1 {
        h = linear(h) -> Hidden + interaction(h, Y, d, cutoff, avg_neighbors)
    }
    e = mlp(linear(h) -> 16x0e, 16, act = silu) -> 1x0e    # per-atom energy
    output energy : 0e @graph = sum_nodes(e)
    output forces : 1o @node  = -grad(energy, pos)
}
