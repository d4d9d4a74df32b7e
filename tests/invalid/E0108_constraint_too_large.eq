group G = SO(5)

model Net {
    input x : V**4 @graph
    output s = inner(x, x)
}
