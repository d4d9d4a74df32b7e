group G = O(2)

model Net {
    input s : 2 @graph
    input v : V @graph
    t = linear(s) -> (V**2)
    u = bilinear(t, s) -> (freq(2) + V**2)
    output y = linear(u) -> (scalar + det) + bilinear(v, v) -> (scalar + det)
}
