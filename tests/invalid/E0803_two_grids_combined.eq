group O3

model Net {
    input z : 4x0e @node
    O = orientations(n = 8, approximate = true)
    P = orientations(n = 12, approximate = true)
    h = to_orientations(z, O) + to_orientations(z, P)
    output e : 1x0e @node = from_orientations(mlp(h, 16) -> 1x0e, O) -> 1x0e
}
