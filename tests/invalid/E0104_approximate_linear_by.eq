group O3

model Net {
    input z : 4x0e @node
    input h : 8x0e @node
    output y : 1x1o @node = linear(h, by = z, approximate = true) -> 1x1o
}
