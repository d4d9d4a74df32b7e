group G = SO(3)

model Net {
    input x : 4 + V**2 @graph
    output y = tanh(x)
}
