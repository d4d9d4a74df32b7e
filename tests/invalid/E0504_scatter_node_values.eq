group O3

model Net {
    input h : 8x0e @node
    input edges : graph
    m = scatter_sum(h, dst)
    output y = sum_nodes(h)
}
