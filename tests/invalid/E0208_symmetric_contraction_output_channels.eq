group O3
model Net {
    input a : 8x0e + 8x1o @node
    output y : 4x0e @node = symmetric_contraction(a, correlation = 2) -> 4x0e
}
