# NequIP with Gaunt tensor products (Luo, Chen and Zhang, 2024): specs/nequip.eq with every message product
# `mode = gaunt`, the product of the neighbour's features and the edge harmonics as functions on the sphere.
# Its paths are the symmetric ones (l1 + l2 + l3 even): 1o x 1o -> 1o and 2e x 1o -> 2e, which the
# Clebsch-Gordan model has, are out of its reach; the weights are per channel and degree, not per path.
group O3

const L = 2
rep Types = 4x0e        # one-hot over the types, in order (the source's type_names: H, C, N, O)
rep Embed = 32x0e
rep GateIn = 32x0e+64x0e+32x1o+32x2e
rep Features = 32x0e+32x1o+32x2e

block interaction1(h, Y, radial, avg_neighbors) {
    x = linear(h) -> Embed
    m = tensor_product(x[src], Y, weights = mlp(radial, 128, act = silu), mode = gaunt) -> Features
    y = linear(scatter_sum(m, dst) / avg_neighbors ** 0.5) -> GateIn
    return gate(y, act = silu, odd_act = tanh, gate_act = silu) -> Features
}

block interaction2(h, z, Y, radial, avg_neighbors) {
    x = linear(h) -> Features
    m = tensor_product(x[src], Y, weights = mlp(radial, 128, act = silu), mode = gaunt) -> Features
    y = linear(scatter_sum(m, dst) / avg_neighbors ** 0.5) -> GateIn
    y = y + tensor_product(h, z, mode = uvw) -> GateIn        # self-connection
    return gate(y, act = silu, odd_act = tanh, gate_act = silu) -> Features
}

block interaction3(h, z, Y, radial, avg_neighbors) {
    x = linear(h) -> Features
    m = tensor_product(x[src], Y, weights = mlp(radial, 128, act = silu), mode = gaunt) -> Embed
    y = linear(scatter_sum(m, dst) / avg_neighbors ** 0.5) -> Embed
    y = y + tensor_product(h, z, mode = uvw) -> Embed        # self-connection
    return gate(y, act = silu, odd_act = tanh, gate_act = silu) -> Embed
}

model GauntNequIP(cutoff = 5.0, avg_neighbors = 12.0, layers = 3) {
    input  species : Types    @node
    input  pos     : position @node
    input  edges   : graph                       # src/dst index pairs from the caller
    input  shift   : 1x1o     @edge              # periodic image of each dst, S @ cell (zeros for molecules)

    r = pos[src] - (pos[dst] + shift)            # NequIP's edge vector: receiving atom to sending atom
    d = norm(r)
    Y = spherical_harmonics(r, lmax = L)
    radial = bessel(d, n = 8, cutoff = cutoff) * envelope(d, cutoff = cutoff, p = 6)

    z = linear(species) -> Embed                 # the type embedding: first features and self-connection attributes
    h = z
    h = interaction1(h, Y, radial, avg_neighbors)
    repeat layers - 2 {
        h = interaction2(h, z, Y, radial, avg_neighbors)
    }
    h = interaction3(h, z, Y, radial, avg_neighbors)
    e = linear(linear(h) -> 1x0e, by = species, bias = true) -> 1x0e    # per-type scale and shift
    output energy : 0e @graph = sum_nodes(e)
    output forces : 1o @node  = -grad(energy, pos)
}
