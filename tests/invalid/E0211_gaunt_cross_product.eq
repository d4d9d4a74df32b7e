group O3

model Net {
    input v : 8x1o @node
    input w : 1x1o @node
    output c : 8x1e @node = tensor_product(v, w, mode = gaunt) -> 8x1e
}
