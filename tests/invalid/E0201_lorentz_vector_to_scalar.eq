group Lorentz

model Tagger {
    input p : V @node
    output mass = linear(p) -> 1
}
