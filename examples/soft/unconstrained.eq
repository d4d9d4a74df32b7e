# Particles under gravity, modelled without rotational symmetry: MLPs on the raw edge vectors
# (approximate = true: unconstrained layers), translation and permutation equivariant only.
group O3

model UnconstrainedGravity {
    input pos   : position @node
    input mass  : 1x0e @node
    input edges : graph

    r = pos[dst] - pos[src]
    m = mlp(concat(r, mass[src], mass[dst]), 64, 64, act = silu, approximate = true) -> 16x0e
    output force : 1x1o @node = linear(scatter_sum(m, dst), approximate = true) -> 1x1o + linear(mass, approximate = true) -> 1x1o
}
