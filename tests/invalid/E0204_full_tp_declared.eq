group O3

model Net {
    input x : 2x0e + 2x1o @node
    input v : 1x1o @node
    m = tensor_product(x, v, mode = full) -> (2x1o + 2x0e + 2x2e)
    output y = linear(x) -> 2x0e
}
