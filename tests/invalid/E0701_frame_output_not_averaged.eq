group O3

model Net {
    input pos : position @node
    f = frame(pos)
    h = mlp(to_frame(pos, f), 16) -> 4x0e
    output e : 4x0e @graph = sum_nodes(h)
}
