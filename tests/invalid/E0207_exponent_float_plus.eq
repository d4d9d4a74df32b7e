group O3

const eps = 1e+3

model Net {
    input x : 8x0e @node
    output y = eps * x
}
