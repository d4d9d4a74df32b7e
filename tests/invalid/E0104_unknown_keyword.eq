group O3

model Net {
    input x : 8x0e + 4x1o @node
    input v : 1x1o @node
    m = tensor_product(x, v, mod = uvu) -> (8x1o + 8x0e)
    output y = norm(x)
}
