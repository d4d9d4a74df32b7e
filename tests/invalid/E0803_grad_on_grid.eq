group O3

model Net {
    input pos : position @node
    input edges : graph
    O = orientations(n = 8, approximate = true)
    e = sum_nodes(scatter_sum(mlp(pair_invariants(pos[src] - pos[dst], O), 16) -> 1x0e, dst))
    output forces : 1x1o @node = -grad(e, pos)
}
