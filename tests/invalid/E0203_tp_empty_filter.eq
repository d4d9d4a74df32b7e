group O3

model Net {
    input x : 8x0e @node
    input v : 1x1o @node
    m = tensor_product(x, v, mode = uvu, filter = 1e)
    output y = linear(x) -> 2x0e
}
