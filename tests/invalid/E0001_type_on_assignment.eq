group O3

model Net {
    input x : 8x0e @node
    h : 4x0e = linear(x) -> 4x0e
    output y = h
}
