group O3

model Net {
    input x : 16x0e @node
    h = mlp(x, 32) -> 8x1o
    output y = linear(x) -> 2x0e
}
