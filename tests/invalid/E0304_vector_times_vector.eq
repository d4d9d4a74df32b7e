group O3

model Net {
    input x : 8x1o @node
    input v : 8x1o @node
    h = x * v
    output y = linear(x) -> 2x1o
}
