group O3

model Net {
    input x : 8x0e @node
    repeat = 3
    output y = linear(x) -> 4x0e
}
