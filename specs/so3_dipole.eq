# Molecular dipole under rotations only (SO(3): no parity, irreps written by degree).
# Each atom collects edge vectors weighted by an invariant MLP of species and distance.
group SO3

model Dipole(cutoff = 4.0) {
    input z     : 4x0 @node                   # one-hot species
    input pos   : position @node
    input edges : graph

    r = pos[dst] - pos[src]
    d = norm(r)
    w = mlp(concat(z[src], z[dst], gaussian(d, n = 8, cutoff = cutoff)), 32, act = silu) -> 1x0
    v = scatter_sum(r * w, dst)               # 1x1 per atom
    output dipole : 1x1 @graph = sum_nodes(v)
}
