group L = lorentz()

model Net {
    input p : V @graph
    output R : rotation @graph = orthonormalize(p)
}
