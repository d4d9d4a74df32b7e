group Lorentz

model Tagger {
    input p : V @node
    output m = norm(p)
}
