group O3

model Net {
    input x : 8x0e @node
    output y = linear(x)) -> 4x0e
}
