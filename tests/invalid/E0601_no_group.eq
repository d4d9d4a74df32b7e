model Net {
    input x : 8x0e @node
    output y = linear(x) -> 2x0e
}
