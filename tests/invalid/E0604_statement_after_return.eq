group O3

block layer(h) {
    return linear(h) -> 8x0e
    h = silu(h)
}

model Net {
    input x : 8x0e @node
    output y = layer(x)
}
