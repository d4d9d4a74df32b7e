group O3
model Net {
    input a : 4x1o @node
    output y : 4x0e @node = inner(a, a)
}
