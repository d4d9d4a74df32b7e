group O3

model Net {
    input x : 16x0e + 8x1o @node
    h = x + 1.0
    output y = linear(x) -> 2x0e
}
