group S4

model Net {
    input x : V @graph
    input d : det @graph
    h = linear(x) -> (2 * regular)
    g = linear(d) -> (2 * regular)
    output m = group_pool(relu(g), reduce = mean) + group_pool(h, reduce = mean) + group_pool(g, reduce = mean)
}
