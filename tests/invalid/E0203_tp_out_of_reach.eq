group O3

model Net {
    input x : 8x0e + 8x1o @node
    input v : 1x1o @node
    m = tensor_product(x, v) -> 8x3o
    output y = linear(x) -> 2x1o
}
