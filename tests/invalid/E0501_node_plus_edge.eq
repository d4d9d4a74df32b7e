group O3

model Net {
    input h : 8x0e @node
    input pos : position @node
    input edges : graph
    d = norm(pos[dst] - pos[src])
    s = linear(h) -> 1x0e
    bad = s + d
    output y = scatter_sum(d, dst)
}
