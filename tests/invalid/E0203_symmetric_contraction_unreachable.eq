group O3
model Net {
    input v : 8x1o @node
    output y : 8x1e @node = symmetric_contraction(v, correlation = 2) -> 8x1e
}
