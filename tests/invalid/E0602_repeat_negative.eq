group O3

model Net(layers = 1) {
    input x : 8x0e @node
    h = linear(x) -> 8x0e
    repeat layers - 2 {
        h = linear(h) -> 8x0e
    }
    output y = h
}
