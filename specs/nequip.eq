# NequIP as the nequip package (0.19) builds it (nequip.model.NequIPGNNModel); written by
# eqdsl.interop.nequip.nequip_spec, which eqdsl.interop.nequip.from_nequip compiles to import a
# trained model's weights.
group O3

const L = 2
rep Types = 4x0e        # one-hot over the types, in order (the source's type_names: H, C, N, O)
rep Embed = 32x0e
rep GateIn = 32x0e+64x0e+32x1o+32x2e
rep Features = 32x0e+32x1o+32x2e

block interaction1(h, Y, radial, avg_neighbors) {
    x = linear(h) -> Embed
    m = tensor_product(x[src], Y, weights = mlp(radial, 128, act = silu), mode = uvu, filter = GateIn)
    y = linear(scatter_sum(m, dst) / avg_neighbors ** 0.5) -> GateIn
    return gate(y, act = silu, odd_act = tanh, gate_act = silu) -> Features
}

block interaction2(h, z, Y, radial, avg_neighbors) {
    x = linear(h) -> Features
    m = tensor_product(x[src], Y, weights = mlp(radial, 128, act = silu), mode = uvu, filter = GateIn)
    y = linear(scatter_sum(m, dst) / avg_neighbors ** 0.5) -> GateIn
    y = y + tensor_product(h, z, mode = uvw) -> GateIn        # self-connection
    return gate(y, act = silu, odd_act = tanh, gate_act = silu) -> Features
}

block interaction3(h, z, Y, radial, avg_neighbors) {
    x = linear(h) -> Features
    m = tensor_product(x[src], Y, weights = mlp(radial, 128, act = silu), mode = uvu, filter = Embed)
    y = linear(scatter_sum(m, dst) / avg_neighbors ** 0.5) -> Embed
    y = y + tensor_product(h, z, mode = uvw) -> Embed        # self-connection
    return gate(y, act = silu, odd_act = tanh, gate_act = silu) -> Embed
}

model NequIP(cutoff = 5.0, avg_neighbors = 12.0, layers = 3) {
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
