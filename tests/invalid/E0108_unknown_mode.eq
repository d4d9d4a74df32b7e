group O3

model Net {
    input x : 8x0e + 4x1o @node
    input v : 1x1o @node
    m = tensor_product(x, v, mode = uvv) -> 8x1o
    output y = norm(x)
}
