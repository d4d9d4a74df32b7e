group O3

model Net {
    input x : 16x0e + 8x1o @node
    output e = linear(x) -> 2x0e
    output y : 4x0e @node = linear(x) -> (4x0e + 2x1o)
}
