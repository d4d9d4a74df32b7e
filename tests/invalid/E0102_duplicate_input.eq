group O3

model Net {
    input x : 8x0e @node
    input c : 4x0e @node
    input c : 4x1o @node
    output y = linear(x) -> 4x0e
}
