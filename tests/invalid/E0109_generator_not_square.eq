group G = matrix_group(discrete = [[[0, -1, 0], [1, 0]]])

model Net {
    input x : V @graph
    output y = x
}
