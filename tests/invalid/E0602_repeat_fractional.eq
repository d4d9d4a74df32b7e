group O3

model Net(layers = 2.5) {
    input x : 8x0e @node
    h = linear(x) -> 8x0e
    repeat layers {
        h = linear(h) -> 8x0e
    }
    output y = linear(x) -> 2x0e
}
