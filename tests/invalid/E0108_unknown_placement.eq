group O3

model Net {
    input x : 8x0e @node
    input c : 4x0e @nodes
    output y = linear(x) -> 4x0e
}
