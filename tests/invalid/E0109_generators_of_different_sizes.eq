group G = matrix_group(
    lie = [[[0, -1], [1, 0]]],
    discrete = [[[1, 0, 0], [0, 1, 0], [0, 0, -1]]],
)

model Net {
    input x : V @graph
    output y = x
}
