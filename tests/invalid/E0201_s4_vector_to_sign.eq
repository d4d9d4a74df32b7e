group S4

model Net {
    input x : V @graph
    output y = linear(x) -> (det + V)
}
