group O3

model Net {
    input pos : position @node
    input v : 1x1o @node
    input h : 8x0e @node
    f = grad(v, pos)
    e = sum_nodes(linear(h) -> 1x0e)
    output forces = -grad(e, pos)
}
