group Lorentz

model Tagger {
    input p : V @node
    output q = relu(p)
}
