group O3

model Net {
    input pos : position @node
    input h : 8x0e @node
    f = frame(pos)
    output e : 1x0e @node = from_frame(linear(h) -> 1x0e, f) -> 1x0e
}
