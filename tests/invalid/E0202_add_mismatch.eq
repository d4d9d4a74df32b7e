group O3

model Net {
    input x : 16x0e + 8x1o @node
    a = linear(x) -> (16x0e + 8x1o)
    b = linear(x) -> 16x0e
    s = a + b
    output y = linear(x) -> 4x0e
}
