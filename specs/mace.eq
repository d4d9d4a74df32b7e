# MACE-style potential: each interaction builds an atomic basis A from neighbour features and
# edge harmonics, then raises the body order with products of A with itself (correlation
# order 3), as MACE's product basis does. MACE symmetrises a channelwise version of these
# products; here they are fully connected (uvw) tensor products with shared weights.
group O3

const L = 3
rep Species = 3x0e
rep Basis   = 16x0e + 16x1o + 16x2e
rep GateIn  = 16x0e + 32x0e + 16x1o + 16x2e

block interaction(h, Y, d, cutoff, avg_neighbors) {
    R  = mlp(bessel(d, n = 8, cutoff = cutoff) * envelope(d, cutoff = cutoff), 32, 32, act = silu)
    m  = tensor_product(h[src], Y, weights = R, mode = uvu, filter = Basis)
    A  = linear(scatter_sum(m, dst) / avg_neighbors) -> Basis
    A2 = tensor_product(A, A, mode = uvw) -> Basis            # body order 3
    A3 = tensor_product(A2, A, mode = uvw) -> Basis           # body order 4
    B  = A + A2 + A3
    return gate(linear(B) -> GateIn, act = silu) -> Basis
}

model MACE(cutoff = 5.0, layers = 2, avg_neighbors = 10.0) {
    input  species : Species  @node
    input  pos     : position @node
    input  edges   : graph
    input  shift   : 1x1o     @edge                # periodic image of each dst, S @ cell (zeros for molecules)

    r = pos[dst] - pos[src] + shift
    d = norm(r)
    Y = spherical_harmonics(r, lmax = L)

    h = linear(species) -> 16x0e
    h = interaction(h, Y, d, cutoff, avg_neighbors)
    energy_terms = linear(h) -> 1x0e                                  # readout after every layer
    repeat layers - 1 {
        h = linear(h) -> Basis + interaction(h, Y, d, cutoff, avg_neighbors)
        energy_terms = energy_terms + linear(h) -> 1x0e
    }
    output energy : 0e @graph = sum_nodes(energy_terms)
    output forces : 1o @node  = -grad(energy, pos)
}
