group O3
model Net {
    input a : 8x0e + 8x1o + 8x2e + 8x3o @node
    output y : 8x1o @node = symmetric_contraction(a, correlation = 4) -> 8x1o
}
