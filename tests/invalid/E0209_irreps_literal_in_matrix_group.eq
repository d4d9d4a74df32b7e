group S5 = symmetric(5)

model Net {
    input x : 8x0e @graph
    output y = x
}
