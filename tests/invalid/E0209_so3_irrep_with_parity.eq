group SO3

model Net {
    input x : 16x0 + 8x1 @node
    h = linear(x) -> 8x1o
    output y = linear(x) -> 2x0
}
