group O3

rep Hidden = 16x0e + 8x1o

model Net {
    input x : Hidden @node
    h = x + Hidden
    output y = linear(x) -> 2x0e
}
