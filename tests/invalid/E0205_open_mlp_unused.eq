group O3

model Net {
    input x : 8x0e @node
    w = mlp(x, 16)
    output y = linear(x) -> 2x0e
}
