group O3
model Net {
    input pos : position @node
    input edges : graph
    r = pos[dst] - pos[src]
    output y : 1x0e @edge = linear(spline(norm(r), n = 0, cutoff = 3.0)) -> 1x0e
}
