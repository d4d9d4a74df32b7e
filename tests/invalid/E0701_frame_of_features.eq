group O3

model Net {
    input pos : position @node
    input v : 1x1o @node
    f = frame(v)
    output e : 1x0e @graph = from_frame(sum_nodes(mlp(to_frame(pos, f), 8) -> 1x0e), f) -> 1x0e
}
