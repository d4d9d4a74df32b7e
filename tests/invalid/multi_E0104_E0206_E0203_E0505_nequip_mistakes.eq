# A NequIP-style model with four typical mistakes, each in its own statement.
group O3

const L = 2
rep Species = 4x0e
rep Hidden  = 32x0e + 32x1o + 32x2e
rep GateIn  = 32x0e + 64x0e + 32x1o + 32x2e
rep BadGate = 32x0e + 32x0e + 32x1o + 32x2e      # one gate per gated irrep: needs 64, not 32

block interaction(h, Y, d) {
    R = mlp(bessel(d, n = 8, cutoff = 5.0), 64)
    m = tensor_product(h[src], Y, weights = R, mode = uvu, filter = Hidden)
    a = scatter_sum(m, dst)
    return gate(linear(a) -> GateIn) -> Hidden
}

model NequIP {
    input  species : Species   @node
    input  pos     : position  @node
    input  edges   : graph

    r = pos[dst] - pos[src]
    d = norm(r)
    Y = spherical_harmonics(r, lmax = L)
    Y2 = spherical_harmonics(r)
    h = linear(species) -> 32x0e
    h = interaction(h, Y, d)
    g = gate(linear(h) -> BadGate) -> Hidden
    t = tensor_product(h[src], Y) -> 32x5e
    e = mlp(linear(h) -> 16x0e, 16) -> 1x0e
    output energy : 0e @graph = e
    output forces : 1o @node  = -grad(sum_nodes(e), pos)
}
