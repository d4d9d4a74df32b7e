group O3

model Net {
    input x : 16x0e @node
    input v : 16x0 + 8x1o @node
    output y = linear(x) -> 2x0e
}
