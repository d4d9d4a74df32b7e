group O3

model Net {
    input pos : position @node
    input edges : graph
    mid = pos[src] + pos[dst]
    output r = pos[dst] - pos[src]
}
