group O3

model Net {
    input pos : position @node
    input other : position @node
    f = frame(pos)
    g = frame(other)
    a = to_frame(pos, f)
    b = to_frame(other, g)
    output e : 1x0e @graph = from_frame(sum_nodes(mlp(a + b, 8) -> 1x0e), f) -> 1x0e
}
