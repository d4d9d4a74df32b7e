group O3

model Net {
    input x : 16x0e + 8x1o @node
    v = linear(x, bias = true) -> 8x1o
    output y = linear(x) -> 4x0e
}
