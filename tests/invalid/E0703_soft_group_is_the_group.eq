group O3
soft group O3

model Net {
    input h : 4x0e @node
    output y : 1x0e @node = linear(h) -> 1x0e
}
