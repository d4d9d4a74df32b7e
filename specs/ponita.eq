# PONITA (Bekkers et al., 2024) as an interatomic potential: features live on positions x a grid of
# directions on the sphere, f(x_i, o_k), one copy per direction.  Invariants of (position, orientation)
# pairs let every kernel be a plain MLP (weight sharing), and the convolution is separable: over space,
# per direction and depthwise, then over the sphere of directions.  Equivariant up to the grid's
# resolution (declared: `approximate = true`); eqc check reports the error as the grid grows.
group O3
rep Hidden = 32x0e                                  # channels per direction

block interaction(h, a, radial, O, avg_neighbors) {
    k = mlp(concat(a, radial), 64, act = silu) -> Hidden          # spatial kernel of (o . r, |r - (o . r) o|, |r|)
    m = scatter_sum(k * h[src], dst) / avg_neighbors                 # spatial convolution, per direction
    m = linear(orientation_conv(m, O, basis = 16), bias = true) -> Hidden   # over the sphere, then across channels
    return h + mlp(m, 128, act = silu) -> Hidden                   # widening MLP and residual (ConvNeXt-style)
}

model Ponita(cutoff = 5.0, avg_neighbors = 12.0, layers = 2, grid = 16) {
    input  species : 4x0e     @node
    input  pos     : position @node
    input  edges   : graph
    input  shift   : 1x1o     @edge                 # periodic image of each dst (zeros for molecules)
    r = pos[src] - (pos[dst] + shift)
    O = orientations(n = grid, approximate = true)  # a Fibonacci grid of `grid` directions
    a = pair_invariants(r, O)                       # per edge and direction: o . r, |r - (o . r) o|
    radial = bessel(norm(r), n = 8, cutoff = cutoff) * envelope(norm(r), cutoff = cutoff, p = 6)
    h = to_orientations(linear(species) -> Hidden, O)   # the type embedding, the same in every direction
    repeat layers {
        h = interaction(h, a, radial, O, avg_neighbors)
    }
    e = from_orientations(mlp(h, 32, act = silu) -> 1x0e, O) -> 1x0e   # the mean over directions
    e = linear(e, by = species, bias = true) -> 1x0e                    # per-type scale and shift
    output energy : 0e @graph = sum_nodes(e)
    output forces : 1o @node  = -grad(energy, pos)
}
