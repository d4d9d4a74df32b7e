group O3

model Net {
    input v : 8x0e + 8x1e @node
    input y : 1x0e + 1x1o @node
    output c : 8x0e @node = tensor_product(v, y, mode = gaunt) -> 8x0e
}
