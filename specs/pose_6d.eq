# The orientation of a point cloud as a rotation matrix, continuous in its inputs (Zhou et al., 2019):
# two equivariant vectors, orthonormalised by Gram-Schmidt. Under O(3) the first two columns are vectors
# and the third, their cross product, a pseudovector, so R(g x) = g R(x) diag(1, 1, det g): a rotation
# for every input, rotating with the cloud.
group O3

model Pose6D(cutoff = 3.0) {
    input species : 4x0e @node
    input pos     : position @node
    input edges   : graph

    r = pos[dst] - pos[src]
    radial = gaussian(norm(r), n = 8, cutoff = cutoff)
    h = mlp(concat(species[src], species[dst], radial), 32, act = silu) -> 16x0e
    first = mlp(h, 16, act = silu) -> 1x0e
    second = mlp(h, 16, act = silu) -> 1x0e
    a = sum_nodes(scatter_sum(r * first, dst))        # two weighted sums of edge vectors
    b = sum_nodes(scatter_sum(r * second, dst))
    output orientation : rotation @graph = orthonormalize(a, b)
}
