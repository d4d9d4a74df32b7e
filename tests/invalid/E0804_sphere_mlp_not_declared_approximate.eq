group O3

model Net {
    input v : 8x0e + 8x1o @node
    output y : 8x0e + 8x1o @node = sphere_mlp(v, 16, grid = 6) -> (8x0e + 8x1o)
}
