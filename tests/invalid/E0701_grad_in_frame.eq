group O3

model Net {
    input pos : position @node
    f = frame(pos)
    e = sum_nodes(mlp(to_frame(pos, f), 16) -> 1x0e)
    output forces : 1x1o @node = -grad(e, pos)
}
