group O3

block deep(h) {
    return deep(linear(h) -> 8x0e)
}

model Net {
    input x : 8x0e @node
    output y = deep(x)
}
