group O3

model Net {
    input x : 8x0e @node
    position = linear(x) -> 4x0e
    output y = linear(x) -> 4x0e
}
