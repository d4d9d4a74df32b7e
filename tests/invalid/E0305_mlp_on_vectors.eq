group O3

model Net {
    input x : 16x0e + 8x1o @node
    h = mlp(x, 32) -> 8x0e
    output y = linear(x) -> 2x0e
}
