group O3

model Net {
    input x : 8x0e @node
    h = linear(x) -> 2x0e
}
