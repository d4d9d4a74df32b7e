group O3

model Net {
    input x : 8x1o @node
    input v : 1x1o @node
    m = tensor_product(x, v, mode = uvw) -> 8x1o
    output y = linear(x) -> 2x1o
}
