group O3

model Net {
    input h : 8x0e @node
    input edges : graph
    m = h[src]
    mm = m[dst]
    output y = scatter_sum(m, dst)
}
