group L = lorentz()

model Net {
    input p : position @node
    f = frame(p)
    output e : 1 @graph = from_frame(sum_nodes(mlp(to_frame(p, f), 8) -> 1), f) -> 1
}
