group O3

model Net {
    input h : 8x0e @node
    m = h[src]
    output y = linear(h) -> 2x0e
}
