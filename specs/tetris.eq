# Tetris-style shape classifier (after e3nn's example): an O(3)-equivariant point-cloud network
# whose six invariant logits (0e) name the shape and whose pseudoscalar (0o) tells mirror images apart.
# Parity-odd features appear layer by layer: 1o (x) 1o reaches 1e, then 1e (x) 1o reaches 0o.
group O3

rep H1 = 16x0e + 8x1o + 4x2e
rep H2 = 16x0e + 8x1o + 8x1e + 4x2e + 4x2o
rep H3 = 16x0e + 16x0o + 8x1o + 8x1e + 4x2e + 4x2o
rep G1 = 16x0e + 12x0e + 8x1o + 4x2e                          # gate inputs: scalars, gates, gated
rep G2 = 16x0e + 24x0e + 8x1o + 8x1e + 4x2e + 4x2o
rep G3 = 16x0e + 16x0o + 24x0e + 8x1o + 8x1e + 4x2e + 4x2o

block conv(h, Y, d, target, gate_in) {
    R = mlp(gaussian(d, n = 8, cutoff = 1.5), 32, act = silu)
    m = tensor_product(h[src], Y, weights = R, mode = uvu, filter = target)
    return gate(linear(scatter_mean(m, dst)) -> gate_in, act = silu, odd_act = tanh) -> target
}

model Tetris {
    input pos   : position @node              # voxel centres
    input edges : graph                       # neighbouring voxels
    input ones  : 1x0e @node                  # constant node feature (pass ones)

    r = pos[dst] - pos[src]
    d = norm(r)
    Y = spherical_harmonics(r, lmax = 2)
    h = conv(ones, Y, d, H1, G1)
    h = conv(h, Y, d, H2, G2)
    h = conv(h, Y, d, H3, G3)
    output logits : 6x0e + 1x0o @graph = linear(mean_nodes(h)) -> (6x0e + 1x0o)
}
