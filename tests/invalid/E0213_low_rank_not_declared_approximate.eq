group O3

model Net {
    input a : 8x0e + 8x1o @node
    input y : 1x0e + 1x1o @node
    output c : 8x0e + 8x1o @node = tensor_product(a, y, mode = uvu, rank = 4) -> (8x0e + 8x1o)
}
