# Particles under gravity, modelled exactly O(3)-equivariant: it cannot represent gravity's fixed direction.
group O3

model ExactGravity(cutoff = 4.0) {
    input pos   : position @node
    input mass  : 1x0e @node
    input edges : graph

    r = pos[dst] - pos[src]
    w = mlp(concat(gaussian(norm(r), n = 8, cutoff = cutoff), mass[src], mass[dst]), 32, 32, act = silu) -> 1x0e
    output force : 1x1o @node = scatter_sum(r * w, dst)
}
