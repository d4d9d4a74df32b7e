group G = dihedrl(4)

model Net {
    input x : V @graph
    output y = x
}
