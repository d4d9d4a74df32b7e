group O3
model Net {
    input species : 4x0e @node
    input h : 8x0e + 4x1o @node
    s = linear(h, by = h) -> 8x0e
    output y : 8x0e @node = s
}
