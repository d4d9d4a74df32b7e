group O3

model Net {
    input z : 4x0e @node
    input spin : 1x1e @node
    O = orientations(n = 8, approximate = true)
    h = to_orientations(concat(z, spin), O)
    output e : 1x0e @node = from_orientations(mlp(h, 16) -> 1x0e, O) -> 1x0e
}
