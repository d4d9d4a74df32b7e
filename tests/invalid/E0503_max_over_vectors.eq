group O3

model Net {
    input h : 8x0e + 4x1o @node
    input edges : graph
    m = scatter_max(h[src], dst)
    output y = scatter_sum(h[src], dst)
}
