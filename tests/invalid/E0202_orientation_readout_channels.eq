group O3

model Net {
    input z : 4x0e @node
    O = orientations(n = 8, approximate = true)
    h = to_orientations(z, O)
    output v : 2x1o @node = from_orientations(mlp(h, 16) -> 3x0e, O) -> 2x1o
}
