# Particles under gravity: pair forces are symmetric under every rotation and reflection, gravity only
# under rotations about the vertical axis and reflections in vertical planes. The model is built exactly
# equivariant under the rotations about z (Axial) and pulled toward O(3) and toward the mirror x -> -x by
# equivariance_penalty(), whose learned strengths say how far the data keep each (examples/train_soft.py).
group Axial = matrix_group(lie = [[[0, -1, 0], [1, 0, 0], [0, 0, 0]]])   # rotations about z
soft group O3
soft group Mirror = matrix_group(discrete = [[[-1, 0, 0], [0, 1, 0], [0, 0, 1]]])

model SoftGravity(cutoff = 4.0) {
    input pos   : position @node
    input mass  : 1 @node
    input edges : graph

    r = pos[dst] - pos[src]
    height = linear(r) -> 1                       # the vertical part of r: invariant under Axial only
    w = mlp(concat(gaussian(norm(r), n = 8, cutoff = cutoff), height, mass[src], mass[dst]), 32, 32, act = silu) -> 1
    output force : V @node = scatter_sum(r * w, dst) + linear(mass) -> V
}
