group O3

model Net {
    input z : 4x0e @node
    O = orientations(n = 16)
    output e : 1x0e @node = from_orientations(mlp(to_orientations(z, O), 16) -> 1x0e, O) -> 1x0e
}
