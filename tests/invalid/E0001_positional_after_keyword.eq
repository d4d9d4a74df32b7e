group O3

model Net {
    input x : 8x0e @node
    output y = mlp(x, act = silu, 16) -> 4x0e
}
