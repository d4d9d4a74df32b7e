# The baselines of examples/train_pose.py: an MLP on raw edge vectors (approximate = true: no rotational
# symmetry), summed over the cloud to 6 numbers, read as a quaternion (the first 4) or as two vectors (6D).
group O3

model PoseBaseline {
    input species : 4x0e @node
    input pos     : position @node
    input edges   : graph

    r = pos[dst] - pos[src]
    m = mlp(concat(r, species[src], species[dst]), 64, 64, act = silu, approximate = true) -> 32x0e
    output numbers : 6x0e @graph = mlp(sum_nodes(scatter_sum(m, dst)), 64, act = silu) -> 6x0e
}
