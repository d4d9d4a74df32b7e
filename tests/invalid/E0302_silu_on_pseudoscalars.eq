group O3

model Net {
    input x : 16x0e + 4x0o @node
    h = silu(x)
    output y = linear(x) -> 2x0e
}
