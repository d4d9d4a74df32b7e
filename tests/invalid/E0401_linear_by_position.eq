group C4
model Net {
    input pos : position
    input h : regular @node
    output y : regular @node = linear(h, by = pos) -> regular
}
