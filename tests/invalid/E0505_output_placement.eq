group O3

model Net {
    input h : 8x0e @node
    output y = linear(h) -> 2x0e
    output e : 1x0e @graph = linear(h) -> 1x0e
}
