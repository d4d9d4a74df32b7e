group O3

model Net {
    input x : 16x0e + 8x1o @node
    h = linear(x) -> 16x0e + 8x1o
    output y = linear(x) -> 2x0e
}
