group O3

model Net {
    input pos : position @node
    input edges : graph
    input h : 8x0e @node
    e = sum_nodes(linear(h) -> 1x0e)
    g = grad(e, edges)
    output forces = -grad(e, pos)
}
