group O3

model Net {
    input x : 8x0e @node
    h = mlp(x, 16, 0) -> 4x0e
    output y = linear(x) -> 4x0e
}
