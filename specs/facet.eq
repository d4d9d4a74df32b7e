# A Facet-style potential (2025): equivariant node updates by a plain MLP on each node's features sampled on a
# grid of the sphere (sphere_mlp), messages by Gaunt products, and cubic B-splines for the radial basis in
# place of an MLP.  sphere_mlp is equivariant up to its grid's resolution (declared: `approximate = true`);
# eqc check reports the error as the grid grows.
group O3

rep Types = 4x0e
rep F = 32x0e + 32x1o + 32x2e

block message(x, Y, radial, avg_neighbors) {
    m = tensor_product(x[src], Y, weights = mlp(radial), mode = gaunt) -> F   # splines -> weights: one linear map
    return linear(scatter_sum(m, dst) / avg_neighbors ** 0.5) -> F
}

block update(h, y) {
    return h + y + sphere_mlp(y, 64, act = silu, grid = 6, approximate = true) -> F
}

model Facet(cutoff = 5.0, avg_neighbors = 12.0, layers = 2) {
    input  species : Types    @node
    input  pos     : position @node
    input  edges   : graph
    input  shift   : 1x1o     @edge                  # periodic image of each dst (zeros for molecules)
    r = pos[src] - (pos[dst] + shift)
    Y = spherical_harmonics(r, lmax = 2)
    radial = spline(norm(r), n = 8, cutoff = cutoff)  # exactly zero, with two zero derivatives, at the cutoff
    z = linear(species) -> 32x0e
    y = message(z, Y, radial, avg_neighbors)
    h = y + sphere_mlp(y, 64, act = silu, grid = 6, approximate = true) -> F
    repeat layers - 1 {
        h = update(h, message(linear(h) -> F, Y, radial, avg_neighbors))
    }
    e = linear(linear(h) -> 1x0e, by = species, bias = true) -> 1x0e
    output energy : 0e @graph = sum_nodes(e)
    output forces : 1o @node  = -grad(energy, pos)
}
