group O3

model Net {
    input x : 8x0e @node
    output y = concat(x, x]
}
