group G = matrix_group(discrete = [[[1, 0], [0, 0]]])

model Net {
    input x : V @graph
    output y = x
}
