group O3

model Net {
    input lambda : 8x0e @node
    output y = linear(lambda) -> 4x0e
}
