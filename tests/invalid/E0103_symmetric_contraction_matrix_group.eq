group C4
model Net {
    input a : 2 * regular @node
    output y : regular @node = symmetric_contraction(a, correlation = 2) -> regular
}
