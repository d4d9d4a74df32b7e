group O3

model Net {
    input x : 8x0e + 8x1o @node
    input v : 1x1o @node
    input s : 4x0e @node
    w = mlp(s, 16) -> 32x0e
    m = tensor_product(x, v, weights = w, mode = uvu) -> (8x1o + 8x0e)
    output y = linear(x) -> 2x0e
}
