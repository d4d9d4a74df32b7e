group O3

model Net {
    input pos : position @node
    f = frame(pos)
    output e : 1x0e @graph = linear(f) -> 1x0e
}
