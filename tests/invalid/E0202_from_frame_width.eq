group O3

model Net {
    input pos : position @node
    f = frame(pos)
    y = mlp(to_frame(pos, f), 16) -> 2x0e
    output v : 1x1o @node = from_frame(y, f) -> 1x1o
}
