group C4
model Net {
    input a : regular @node
    output y : regular @node = tensor_product(a, a) -> regular
}
