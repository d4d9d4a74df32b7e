# Frame averaging (Puny et al., 2022): plain MLPs on raw coordinates, made exactly invariant (energy) and
# equivariant (forces) under rotations, reflections and translations by averaging over each structure's
# PCA frames. Inside the frame every value is an invariant scalar, so any layer on scalars may act on it.
group O3

model FrameAveragedMLP(cutoff = 3.0) {
    input z     : 4x0e @node                          # one-hot species
    input pos   : position @node
    input edges : graph

    f = frame(pos)                                    # 8 frames per structure: PCA axes, every choice of signs
    x = to_frame(pos, f)                              # each atom's coordinates in each frame: 3x0e per copy
    pair = concat(x[src], x[dst], z[src], z[dst], envelope(norm(pos[dst] - pos[src]), cutoff = cutoff))
    m = scatter_sum(mlp(pair, 64, act = silu) -> 32x0e, dst)
    h = mlp(concat(x, z, m), 64, 64, act = silu) -> 32x0e
    e = mlp(h, 32, act = silu) -> 1x0e
    output energy : 1x0e @graph = from_frame(sum_nodes(e), f) -> 1x0e
    output forces : 1x1o @node = from_frame(mlp(h, 32, act = silu) -> 3x0e, f) -> 1x1o
}
