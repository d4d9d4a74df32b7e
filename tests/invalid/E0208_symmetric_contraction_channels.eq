group O3
model Net {
    input a : 8x0e + 4x1o @node
    output y : 8x0e @node = symmetric_contraction(a, correlation = 2) -> 8x0e
}
