group C4

model Net {
    input v : V @graph
    output s = inner(v, v)
}
