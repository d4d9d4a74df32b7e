group O3

model Net {
    input x : 8x0e @node
    output y = 2.0 × x
}
