group C4 = cyclic(4)

model Net {
    input z : 2 @node
    O = orientations(n = 8, approximate = true)
    output y : 1 @node = from_orientations(mlp(to_orientations(z, O), 8) -> 1, O) -> 1
}
