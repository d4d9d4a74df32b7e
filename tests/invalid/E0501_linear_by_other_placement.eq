group O3
model Net {
    input species : 4x0e @node
    input pos : position @node
    input edges : graph
    r = pos[dst] - pos[src]
    output y : 1x1o @edge = linear(r, by = species) -> 1x1o
}
