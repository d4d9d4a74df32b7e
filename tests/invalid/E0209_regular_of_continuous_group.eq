group G = SO(2)

rep Field = 4 * regular

model Net {
    input x : Field @graph
    output y = x
}
