group O3

model Net {
    input v : 8x0o + 8x1e @node
    output y : 8x0e @node = sphere_mlp(v, 16, approximate = true) -> 8x0e
}
