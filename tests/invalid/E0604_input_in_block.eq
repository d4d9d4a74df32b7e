group O3

block layer(h) {
    input extra : 4x0e @node
    return linear(h) -> 8x0e
}

model Net {
    input x : 8x0e @node
    output y = layer(x)
}
